import type { AnsweredCommand } from "../audit/command-trail.js";
import type { Redactor } from "../bundle/redactor.js";
import type { Approval, ApprovalStatus } from "./approvals.js";

/**
 * An approval's change as an audit entry (outcome `approval_<change>`): who asked (requested,
 * used: the agent's key, its session and request) or who decided (approved, denied: the
 * approver's key), the command and rule, and in `target` the approval id, the destination of a
 * network approval, and the reason given.
 */
export function approvalAuditEntry(
  approval: Approval,
  change: "requested" | ApprovalStatus,
  redact: Redactor,
): AnsweredCommand {
  const decided = change === "approved" || change === "denied";
  const outcome = `approval_${change === "pending" ? "requested" : change}` as const;
  return {
    caller: decided ? approval.decidedBy : change === "expired" ? null : approval.requester.owner,
    session: approval.requester.session,
    requestId: approval.requester.requestId,
    command: redact(approval.command).text,
    outcome,
    errorCode: null,
    rule: approval.rule,
    layer: null,
    kind: approval.kind,
    operation: "approval",
    target: redact(
      [
        approval.id,
        ...(approval.target ? [`to: ${approval.target}`] : []),
        ...(decided && approval.reason ? [`reason: ${approval.reason}`] : []),
      ].join(" "),
    ).text,
    exitCode: null,
    durationMs: null,
    sessionId: null,
    commandId: null,
  };
}
