import type { AnsweredCommand, CommandTrail } from "./audit/command-trail.js";
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
  /** The caller's session (`s-…`) it runs in, for the audit trail. */
  callerSession?: string;
}

/** The error code of the envelope each refusal is answered with (src/http/errors.ts). */
export const REFUSAL_CODES = {
  degraded: "enforcement_degraded",
  busy: "busy",
  canceled: "canceled",
  unavailable: "agentsh_unavailable",
  unenforced: "enforcement_failed",
} as const satisfies Record<Refusal["outcome"], string>;

export type RunCommand = (request: RunRequest) => Promise<RunOutcome>;

export function createRunCommand(
  executor: Executor,
  redact: Redactor,
  enforcement: Pick<EnforcementMonitor, "gate" | "markLost">,
  trail?: CommandTrail,
): RunCommand {
  // A tenant with DLP patterns of its own has its own redactor (its patterns, then these).
  const redactFor = (request: GovernedCommand): Redactor => request.tenant?.redact ?? redact;
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
        result: toCommandResult(result, redactFor(request)),
        agentsh: { sessionId: result.sessionId ?? null, commandId: result.commandId ?? null },
        ...(result.sessionState !== undefined ? { sessionState: result.sessionState } : {}),
      },
      result,
    };
  };

  // The answer waits for the entry: once the caller has it, the trail has it too.
  return async ({ requestId, callerSession, ...request }) => {
    const startedAt = Date.now();
    const who = { requestId, owner: request.owner, callerSession };
    let ran: Awaited<ReturnType<typeof run>>;
    try {
      ran = await run(request);
    } catch (error) {
      // A bug (the caller gets internal_error): recorded all the same.
      await trail?.record(
        rejectedEntry(request.command, "internal_error", who, redactFor(request)),
        startedAt,
      );
      throw error;
    }
    await trail?.record(
      auditEntry(request.command, ran.outcome, ran.result, who, redactFor(request)),
      startedAt,
    );
    return ran.outcome;
  };
}

interface Asker {
  requestId: string | undefined;
  owner: string | undefined;
  callerSession: string | undefined;
}

/** The entry of a command the service refused before it reached the runner or agentsh. */
export function rejectedEntry(
  command: string,
  errorCode: string,
  who: Asker,
  redact: Redactor,
): AnsweredCommand {
  return {
    ...nothingDecided,
    caller: who.owner ?? null,
    session: who.callerSession ?? null,
    requestId: who.requestId ?? null,
    command: redact(command).text,
    outcome: "rejected",
    errorCode,
  };
}

const nothingDecided = {
  rule: null,
  layer: null,
  kind: null,
  operation: null,
  target: null,
  exitCode: null,
  durationMs: null,
  sessionId: null,
  commandId: null,
} as const;

/** One audit record; the command text passes the same DLP redaction as the output. */
function auditEntry(
  command: string,
  outcome: RunOutcome,
  result: GovernedResult | undefined,
  who: Asker,
  redact: Redactor,
): AnsweredCommand {
  const decision = result?.decision ?? null;
  return {
    caller: who.owner ?? null,
    session: who.callerSession ?? null,
    requestId: who.requestId ?? null,
    command: redact(command).text,
    outcome: outcome.outcome === "result" ? outcome.result.outcome : outcome.outcome,
    errorCode: outcome.outcome === "result" ? null : REFUSAL_CODES[outcome.outcome],
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
