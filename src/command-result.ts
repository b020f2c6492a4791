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
  /** Every denial when there was more than one. */
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
  if (result.outcome === "timed_out") return result.problem ?? undefined;
  return undefined;
}

function mergeCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const merged = { ...a };
  for (const [name, count] of Object.entries(b)) merged[name] = (merged[name] ?? 0) + count;
  return merged;
}
