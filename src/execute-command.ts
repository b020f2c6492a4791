import { ApprovalRefusedError, type ApprovalStore } from "./approvals/approvals.js";
import type { NetworkApprovals } from "./approvals/network-approvals.js";
import { isApprovalRule } from "./approvals/policy-variants.js";
import type { CommandTrail } from "./audit/command-trail.js";
import { createStreamRedactor, type Redactor } from "./bundle/redactor.js";
import { ApiError, refusalError } from "./http/errors.js";
import { type RunCommand, rejectedEntry } from "./run-command.js";
import type {
  Caller,
  ExecuteBody,
  ExecuteCommand,
  ExecuteInput,
  OutputChunk,
} from "./sessions/contract.js";
import type { SessionRegistryControl } from "./sessions/session-registry.js";

/**
 * One command for one caller, as `POST /execute` and the MCP `run_command` tool run it:
 * in the caller's session when it names one, streamed when the caller wants the output as it
 * arrives, and answered with the same body either way.
 */

/** Live output passed on per stream and command (the final result is bounded separately). */
export const STREAM_LIMIT_BYTES = 1024 * 1024;

export function createExecuteCommand(options: {
  runCommand: RunCommand;
  sessions: Pick<SessionRegistryControl, "lease">;
  redact: Redactor;
  defaultTimeoutMs: number;
  /** Where refusals that never reach the runner (unknown or busy session) are recorded. */
  trail?: CommandTrail;
  /** Approvals: asked for on approval-class blocks, used by `approvalId` resubmissions. */
  approvals?: ApprovalStore;
  /** NETWORK_APPROVALS: the connections agentsh holds while the command runs. */
  networkApprovals?: Pick<NetworkApprovals, "watch">;
}): ExecuteCommand {
  return async (input: ExecuteInput, caller: Caller, onOutput?: (chunk: OutputChunk) => void) => {
    const startedAt = Date.now();
    // A tenant with DLP patterns of its own: its redactor (its patterns, then the service's).
    const redact = caller.tenant?.redact ?? options.redact;
    let lease: ReturnType<typeof options.sessions.lease> | null;
    try {
      lease = input.sessionId ? options.sessions.lease(caller.owner, input.sessionId) : null;
    } catch (error) {
      const who = {
        requestId: caller.requestId,
        owner: caller.owner,
        callerSession: input.sessionId,
      };
      const code = error instanceof ApiError ? error.body.code : "internal_error";
      await options.trail?.record(rejectedEntry(input.command, code, who, redact), startedAt);
      throw error;
    }
    // An approval is checked (and used up) before anything runs: same key, session and text.
    let approvedPolicy: string | undefined;
    if (input.approvalId !== undefined) {
      try {
        if (!options.approvals) throw new ApprovalRefusedError(input.approvalId, "no approvals");
        approvedPolicy = options.approvals.consume(input.approvalId, input.command, {
          owner: caller.owner,
          session: input.sessionId ?? null,
        });
      } catch (error) {
        lease?.finish({ ran: false });
        if (!(error instanceof ApprovalRefusedError)) throw error;
        const who = {
          requestId: caller.requestId,
          owner: caller.owner,
          callerSession: input.sessionId,
        };
        await options.trail?.record(
          rejectedEntry(input.command, "approval_refused", who, redact),
          startedAt,
        );
        throw new ApiError({
          code: "approval_refused",
          message: `The command was not run: ${error.message}.`,
          hint: "An approval runs the exact command it was given for, once, for the same API key and session. Send the command without approvalId to ask again.",
        });
      }
    }
    const signals = [caller.signal, lease?.signal].filter((s): s is AbortSignal => s !== undefined);
    const redactorFor = (stream: OutputChunk["stream"], emit: (chunk: OutputChunk) => void) =>
      createStreamRedactor(redact, (text) => emit({ stream, text }), STREAM_LIMIT_BYTES);
    const live = onOutput
      ? { stdout: redactorFor("stdout", onOutput), stderr: redactorFor("stderr", onOutput) }
      : null;
    // While it runs in agentsh, a connection agentsh's proxy holds for a person is this
    // command's: the approval names its requester, and a streaming caller is told.
    const watchNetwork = options.networkApprovals
      ? (agentshSession: string) =>
          options.networkApprovals?.watch(agentshSession, {
            command: input.command,
            requester: {
              owner: caller.owner,
              session: input.sessionId ?? null,
              requestId: caller.requestId,
            },
            onRequested: (approval) =>
              caller.onApproval?.({
                id: approval.id,
                kind: "network",
                status: "pending",
                rule: approval.rule,
                ...(approval.target ? { target: approval.target } : {}),
                expiresAt: approval.expiresAt.toISOString(),
              }),
          })
      : undefined;
    let run: Awaited<ReturnType<RunCommand>>;
    try {
      run = await options.runCommand({
        command: input.command,
        timeoutMs: input.timeoutMs ?? options.defaultTimeoutMs,
        ...(signals.length > 0 ? { signal: AbortSignal.any(signals) } : {}),
        requestId: caller.requestId,
        owner: caller.owner,
        ...(caller.tenant ? { tenant: caller.tenant } : {}),
        ...(approvedPolicy ? { agentshPolicy: approvedPolicy } : {}),
        ...(caller.onPhase ? { onPhase: caller.onPhase } : {}),
        ...(watchNetwork ? { onAgentshSession: watchNetwork } : {}),
        ...(lease && input.sessionId
          ? { session: lease.context, callerSession: input.sessionId }
          : {}),
        ...(live
          ? {
              onOutput: (stream: OutputChunk["stream"], text: string) => live[stream].feed(text),
            }
          : {}),
      });
    } catch (error) {
      lease?.finish({ ran: false });
      if (approvedPolicy && input.approvalId) options.approvals?.giveBack(input.approvalId);
      throw error;
    }
    live?.stdout.end();
    live?.stderr.end();
    const carried = lease?.finish(
      run.outcome === "result" ? { ran: true, state: run.sessionState } : { ran: false },
    );
    if (run.outcome !== "result") {
      // Refused before anything ran: the approval can still be used.
      const nothingRan = run.outcome === "busy" || run.outcome === "degraded";
      if (nothingRan && approvedPolicy && input.approvalId) {
        options.approvals?.giveBack(input.approvalId);
      }
      if (run.outcome === "canceled" && lease?.signal.aborted) {
        throw new ApiError({
          code: "session_not_found",
          message: `Session ${input.sessionId} ended while the command ran; the command was killed.`,
          hint: "Create a new session with POST /sessions.",
        });
      }
      throw refusalError(run);
    }
    caller.noteAgentshIds?.(run.agentsh);
    const body: ExecuteBody = {
      command: input.command,
      result: run.result,
      requestId: caller.requestId,
    };
    const rule = run.result.decision?.rule;
    if (
      run.result.outcome === "blocked" &&
      isApprovalRule(rule) &&
      input.approvalId === undefined &&
      options.approvals &&
      // An approved run's policy is the default one with that rule allowed: a tenant on another
      // policy would run it with less than its own rules, so it is not offered one.
      (caller.tenant === undefined || caller.tenant.policy === "default")
    ) {
      // agentsh blocked it on an approval-class rule (an enforced deny): a person may let this
      // exact command through once.
      const approval = options.approvals.request(input.command, rule, {
        owner: caller.owner,
        session: input.sessionId ?? null,
        requestId: caller.requestId,
      });
      body.approval = {
        id: approval.id,
        kind: "command",
        status: "pending",
        rule,
        expiresAt: approval.expiresAt.toISOString(),
      };
    }
    if (input.approvalId !== undefined && options.approvals) {
      const used = options.approvals.get(input.approvalId);
      if (used) {
        body.approvedBy = { id: used.id, decidedBy: used.decidedBy ?? "", reason: used.reason };
      }
    }
    if (carried && input.sessionId) {
      body.session = {
        id: input.sessionId,
        cwd: carried.cwd,
        env: carried.env,
        ...(carried.envNotCarried.length > 0 ? { envNotCarried: carried.envNotCarried } : {}),
      };
    }
    return body;
  };
}
