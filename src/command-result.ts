import type { Redactor } from "./bundle/redactor.js";
import type { Decision, GovernedResult, Outcome } from "./executor.js";

/**
 * The JSON every route returns for one command. Version-0 compatibility (the response shape of
 * the Express service this one replaces, which clients already parse): `{success, stdout,
 * stderr, exitCode, blocked, message?}`. Everything after those fields is additive: what agentsh
 * decided and why.
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
  /**
   * Whether the command ran to its own end, so that exitCode is its own: false when it was
   * refused before it started (a top-level rule, the launcher) or killed at its time limit.
   * `blocked` with `completed` and exit 0 means a step was denied and the command went on.
   */
  completed: boolean;
  /** Every denial, each with its rule (present when anything was denied). */
  denials?: Decision[];
  durationMs: number;
  truncated?: { stdout: boolean; stderr: boolean; stdoutBytes: number; stderrBytes: number };
  /** Secrets replaced in the output, by pattern name. */
  redactions?: Record<string, number>;
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
    completed: completedOf(result),
    ...(result.denials.length > 0 ? { denials: result.denials } : {}),
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

/** Not refused before it started (no process, or the launcher refused) and not killed at its limit. */
function completedOf(result: GovernedResult): boolean {
  return (
    result.sandboxed !== null &&
    result.outcome !== "timed_out" &&
    result.decision?.layer !== "launcher"
  );
}

function describe(result: GovernedResult): string | undefined {
  if (result.outcome === "blocked") {
    const d = result.decision;
    const what = d?.target ? ` (${d.operation ?? d.kind} ${d.target})` : "";
    const blocked = d?.rule
      ? `Blocked by policy rule '${d.rule}'${what}`
      : `Blocked by agentsh policy${what}`;
    // A step was denied and the command went on: say so, so that "pip could not write a cache"
    // reads differently from "sudo was stopped".
    return completedOf(result) && result.exitCode === 0
      ? `${blocked}; the command went on and completed (exit 0)`
      : blocked;
  }
  if (result.outcome === "timed_out") return result.problem ?? undefined;
  return undefined;
}

function mergeCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const merged = { ...a };
  for (const [name, count] of Object.entries(b)) merged[name] = (merged[name] ?? 0) + count;
  return merged;
}
