import type { Decision, Executor, GovernedResult, Outcome } from "./agentsh/governed-result.js";
import { PoolSaturatedError, WaitCanceledError } from "./agentsh/session-pool.js";
import type { Redactor } from "./bundle/redactor.js";
import { ApiError } from "./http/errors.js";
import type { ServiceStatus } from "./service-status.js";

/**
 * The JSON every route returns for one command: the seed's `{success, stdout, stderr, exitCode,
 * blocked, message?}` plus what agentsh decided and why.
 */
export interface CommandResult {
  success: boolean;
  stdout: string;
  stderr: string;
  exitCode: number | null;
  blocked: boolean;
  message?: string;
  outcome: Outcome;
  /** The rule that blocked the command, with what was denied; null when nothing was. */
  decision: Decision | null;
  /** Every denial when there was more than one. */
  denials?: Decision[];
  durationMs: number;
  truncated?: { stdout: boolean; stderr: boolean; stdoutBytes: number; stderrBytes: number };
  /** Secrets replaced in the output, by pattern name. */
  redactions?: Record<string, number>;
}

export interface CommandRunner {
  run(command: string, timeoutMs: number, signal?: AbortSignal): Promise<CommandResult>;
}

export function createCommandRunner(
  executor: Executor,
  redact: Redactor,
  status: Pick<ServiceStatus, "executionBlocker" | "enforcementLost">,
): CommandRunner {
  return {
    async run(command, timeoutMs, signal) {
      const blocker = status.executionBlocker();
      if (blocker) {
        throw new ApiError(503, {
          code: "enforcement_degraded",
          message: `The command was not run: ${blocker}.`,
          hint: "GET /health shows which protection is missing. ALLOW_DEGRADED=true overrides (not recommended).",
        });
      }
      let result: GovernedResult;
      try {
        result = await executor.run({ command, timeoutMs, ...(signal ? { signal } : {}) });
      } catch (error) {
        throw toApiError(error);
      }
      if (result.outcome === "unavailable") {
        throw new ApiError(
          503,
          {
            code: "agentsh_unavailable",
            message: `The command was not run: ${result.problem ?? "agentsh is unavailable"}.`,
            hint: "GET /health shows agentsh's state; retry once it reports ok.",
          },
          { "Retry-After": "5" },
        );
      }
      if (result.sandboxed === false) {
        // agentsh runs a command without seccomp/Landlock when its wrapper fails (fail-open);
        // we fail closed: the output is withheld and the service stops accepting commands.
        status.enforcementLost("a command ran without the agentsh sandbox (no Landlock line)");
        if (status.executionBlocker() !== null) {
          throw new ApiError(500, {
            code: "enforcement_failed",
            message:
              "agentsh ran the command without its seccomp/Landlock sandbox; its output is withheld and the service now refuses commands.",
            hint: "Check the agentsh server log and that agentsh-unixwrap is installed, then restart the service.",
          });
        }
      }
      return toCommandResult(result, redact);
    },
  };
}

export function toCommandResult(result: GovernedResult, redact: Redactor): CommandResult {
  const stdout = redact(result.stdout.text);
  const stderr = redact(result.stderr.text);
  const redactions = mergeCounts(stdout.counts, stderr.counts);
  const message = describe(result);
  const truncated = result.stdout.truncated || result.stderr.truncated;
  return {
    success: result.outcome === "ok",
    stdout: stdout.text,
    stderr: stderr.text,
    exitCode: result.exitCode,
    blocked: result.outcome === "blocked",
    ...(message ? { message } : {}),
    outcome: result.outcome,
    decision: result.decision,
    ...(result.denials.length > 1 ? { denials: result.denials } : {}),
    durationMs: result.durationMs,
    ...(truncated
      ? {
          truncated: {
            stdout: result.stdout.truncated,
            stderr: result.stderr.truncated,
            stdoutBytes: result.stdout.totalBytes,
            stderrBytes: result.stderr.totalBytes,
          },
        }
      : {}),
    ...(Object.keys(redactions).length > 0 ? { redactions } : {}),
  };
}

function describe(result: GovernedResult): string | undefined {
  if (result.outcome === "blocked") {
    const d = result.decision;
    const what = d?.target ? ` (${d.operation ?? d.kind} ${d.target})` : "";
    return d?.rule
      ? `Blocked by policy rule '${d.rule}'${what}`
      : `Blocked by agentsh policy${what}`;
  }
  if (result.outcome === "timed_out" || result.outcome === "unavailable") {
    return result.problem ?? undefined;
  }
  return undefined;
}

function mergeCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const merged = { ...a };
  for (const [name, count] of Object.entries(b)) merged[name] = (merged[name] ?? 0) + count;
  return merged;
}

function toApiError(error: unknown): unknown {
  if (error instanceof PoolSaturatedError) {
    return new ApiError(
      503,
      {
        code: "busy",
        message: `The service is at capacity: ${error.message}.`,
        hint: "Retry after a few seconds.",
      },
      { "Retry-After": "2" },
    );
  }
  if (error instanceof WaitCanceledError) {
    // 499-like: the client is gone; the status is for the logs only.
    return new ApiError(503, { code: "canceled", message: error.message });
  }
  return error;
}
