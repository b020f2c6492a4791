import type { AuditEntry, AuditLog } from "./audit/audit-log.js";
import type { Redactor } from "./bundle/redactor.js";
import { type CommandResult, toCommandResult } from "./command-result.js";
import type { EnforcementMonitor } from "./enforcement/monitor.js";
import type { Executor, GovernedCommand, GovernedResult, SessionState } from "./executor.js";

/**
 * Runs one governed command and says how it ended. The fail-closed rules live here:
 * nothing runs while enforcement is not proven, and a command that agentsh ran without its
 * sandbox voids the proof and has its output withheld. HTTP is decided in `src/http/`.
 */

/** Why a command has no result for the caller. */
export type Refusal =
  /** Enforcement is not proven (agentsh lost, canaries failing): nothing was run. */
  | { outcome: "degraded"; detail: string }
  /** No command slot within the queue's bounds: nothing was run. */
  | { outcome: "busy"; detail: string }
  /** The caller went away; the command (if started) was killed. */
  | { outcome: "canceled"; detail: string }
  /** agentsh could not run it (unreachable, bad reply). */
  | { outcome: "unavailable"; detail: string }
  /** agentsh ran it without its seccomp/Landlock sandbox: output withheld, service degraded. */
  | { outcome: "unenforced"; detail: string };

export type RunOutcome =
  | {
      outcome: "result";
      result: CommandResult;
      /** agentsh's ids for it (session, command). */
      agentsh: { sessionId: string | null; commandId: string | null };
      /** Where a command run in a session left it (see GovernedResult.sessionState). */
      sessionState?: SessionState | null;
    }
  | Refusal;

/** One command to run: what the executor needs, and who asked (recorded in the audit log). */
export interface RunRequest extends GovernedCommand {
  requestId?: string;
}

export type RunCommand = (request: RunRequest) => Promise<RunOutcome>;

export function createRunCommand(
  executor: Executor,
  redact: Redactor,
  enforcement: Pick<EnforcementMonitor, "gate" | "markLost">,
  audit?: Pick<AuditLog, "record">,
): RunCommand {
  const run = async (
    request: GovernedCommand,
  ): Promise<{ outcome: RunOutcome; result?: GovernedResult }> => {
    const closed = enforcement.gate();
    if (closed) return { outcome: { outcome: "degraded", detail: closed } };
    const execution = await executor.run(request);
    if (execution.kind === "not_run") {
      return { outcome: { outcome: execution.reason, detail: execution.detail } };
    }
    const { result } = execution;
    if (result.sandboxed === false) {
      // agentsh runs a command without seccomp/Landlock when its wrapper fails (fail-open);
      // we fail closed: the output is withheld and the service stops accepting commands.
      enforcement.markLost("a command ran without the agentsh sandbox (no Landlock line)");
      if (enforcement.gate() !== null) {
        const detail = "agentsh ran the command without its seccomp/Landlock sandbox";
        return { outcome: { outcome: "unenforced", detail }, result };
      }
    }
    return {
      outcome: {
        outcome: "result",
        result: toCommandResult(result, redact),
        agentsh: { sessionId: result.sessionId ?? null, commandId: result.commandId ?? null },
        ...(result.sessionState !== undefined ? { sessionState: result.sessionState } : {}),
      },
      result,
    };
  };

  return async ({ requestId, ...request }) => {
    const { outcome, result } = await run(request);
    audit?.record(auditEntry(request.command, outcome, result, requestId, redact));
    return outcome;
  };
}

/** One audit record; the command text passes the same DLP redaction as the output. */
function auditEntry(
  command: string,
  outcome: RunOutcome,
  result: GovernedResult | undefined,
  requestId: string | undefined,
  redact: Redactor,
): AuditEntry {
  const decision = result?.decision ?? null;
  return {
    time: new Date().toISOString(),
    requestId: requestId ?? null,
    command: redact(command).text,
    outcome: outcome.outcome === "result" ? outcome.result.outcome : outcome.outcome,
    rule: decision?.rule ?? null,
    layer: decision ? (decision.layer ?? "agentsh") : null,
    kind: decision?.kind ?? null,
    operation: decision?.operation ?? null,
    target: decision?.target ? redact(decision.target).text : null,
    exitCode: result?.exitCode ?? null,
    durationMs: result?.durationMs ?? null,
    sessionId: result?.sessionId ?? null,
    commandId: result?.commandId ?? null,
  };
}
