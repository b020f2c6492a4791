import { randomBytes } from "node:crypto";
import { approvedPolicyName } from "./policy-variants.js";

/**
 * Pending and decided approvals of one instance (in memory), of two kinds:
 * - `command`: asked for by the service when agentsh blocks a command on an approval-class rule;
 *   a person with an approver key decides it; the caller then resubmits the same command with
 *   the approval's id, which is consumed: it runs once, in an agentsh session whose policy allows
 *   that rule only.
 * - `network`: asked for by agentsh's proxy, which holds a running command's connection to an
 *   unlisted destination (NETWORK_APPROVALS); adopted here under agentsh's id by
 *   src/approvals/network-approvals.ts, which also passes the decision on to agentsh.
 */

export type ApprovalStatus = "pending" | "approved" | "denied" | "expired" | "used";

export interface Requester {
  /** The API key's fingerprint (key-…) or tenant of the agent that asked. */
  owner: string;
  /** The caller's session (s-…), or null for a command outside a session. */
  session: string | null;
  requestId: string | null;
}

export interface Approval {
  id: string;
  kind: "command" | "network";
  /** The exact command text the approval is for (network: the command that is waiting). */
  command: string;
  /** The approval-class rule agentsh blocked it on (network: the rule holding the connection). */
  rule: string;
  /** Network: the destination (host:port) the command is waiting to reach; else null. */
  target: string | null;
  requester: Requester;
  status: ApprovalStatus;
  createdAt: Date;
  /** Until when it can be decided (pending) or used (approved). */
  expiresAt: Date;
  decidedBy: string | null;
  decidedAt: Date | null;
  reason: string | null;
}

/** Why an approval cannot be used for a resubmitted command. */
export class ApprovalRefusedError extends Error {
  constructor(
    readonly approvalId: string,
    readonly why: string,
  ) {
    super(`approval ${approvalId} cannot be used: ${why}`);
    this.name = "ApprovalRefusedError";
  }
}

export interface ApprovalStoreOptions {
  /** How long a person has to decide, and then how long the caller has to use it. */
  ttlMs: number;
  now?: () => number;
  /** Told of every request, resolution, use and expiry (the audit trail, logs). */
  onChange?: (approval: Approval, change: "requested" | ApprovalStatus) => void;
}

/** Decided approvals are kept this long for answers that name them (then forgotten). */
const KEEP_DECIDED_MS = 60 * 60 * 1000;

export class ApprovalStore {
  private readonly approvals = new Map<string, Approval>();
  private readonly now: () => number;

  constructor(private readonly options: ApprovalStoreOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Asks for a person's decision on `command`, blocked on `rule`. */
  request(command: string, rule: string, requester: Requester): Approval {
    this.sweep();
    const created = this.now();
    return this.add({
      id: `apr-${randomBytes(12).toString("hex")}`,
      kind: "command",
      command,
      rule,
      target: null,
      requester,
      createdAt: new Date(created),
      expiresAt: new Date(created + this.options.ttlMs),
    });
  }

  /**
   * Adopts a network approval agentsh's proxy is holding a connection for (under agentsh's id
   * and times: agentsh decides when it runs out). Returns the existing one when already known.
   */
  adoptNetwork(
    held: { id: string; target: string; rule: string; createdAt: Date; expiresAt: Date },
    command: string,
    requester: Requester,
  ): Approval {
    return (
      this.approvals.get(held.id) ?? this.add({ ...held, kind: "network", command, requester })
    );
  }

  /** Records a new pending approval and tells `onChange`. */
  private add(asked: Omit<Approval, "status" | "decidedBy" | "decidedAt" | "reason">): Approval {
    const approval: Approval = {
      ...asked,
      status: "pending",
      decidedBy: null,
      decidedAt: null,
      reason: null,
    };
    this.approvals.set(approval.id, approval);
    this.options.onChange?.(approval, "requested");
    return approval;
  }

  /** A pending approval that can no longer be decided (agentsh let it go: timeout, command ended). */
  lapse(id: string): void {
    const approval = this.approvals.get(id);
    if (approval?.status !== "pending") return;
    approval.status = "expired";
    this.options.onChange?.(approval, "expired");
  }

  get(id: string): Approval | undefined {
    this.sweep();
    return this.approvals.get(id);
  }

  /** The approvals waiting for a decision, oldest first. */
  pending(): Approval[] {
    this.sweep();
    return [...this.approvals.values()].filter((a) => a.status === "pending");
  }

  /**
   * Records a person's decision. Returns the approval, or undefined when there is no pending
   * approval of that id (unknown, expired, already decided).
   */
  resolve(
    id: string,
    decision: "approve" | "deny",
    approver: string,
    reason: string | null,
  ): Approval | undefined {
    const approval = this.get(id);
    if (approval?.status !== "pending") return undefined;
    const at = this.now();
    approval.status = decision === "approve" ? "approved" : "denied";
    approval.decidedBy = approver;
    approval.decidedAt = new Date(at);
    approval.reason = reason;
    // An approval is used soon or not at all: the caller has one more ttl from the decision.
    // (A network approval is used as it is decided: agentsh lets the held connection through.)
    if (decision === "approve" && approval.kind === "command") {
      approval.expiresAt = new Date(at + this.options.ttlMs);
    }
    this.options.onChange?.(approval, approval.status);
    return approval;
  }

  /**
   * Uses an approved approval for a resubmitted command: the same requester (key and session)
   * and the same command text, once. Returns the agentsh policy to run it under; throws
   * ApprovalRefusedError otherwise.
   */
  consume(id: string, command: string, requester: Omit<Requester, "requestId">): string {
    const approval = this.get(id);
    if (!approval) throw new ApprovalRefusedError(id, "no such approval (unknown or expired)");
    if (approval.kind !== "command") {
      throw new ApprovalRefusedError(id, "it is a network approval (its command already went on)");
    }
    if (approval.requester.owner !== requester.owner) {
      throw new ApprovalRefusedError(id, "it was asked for by another API key");
    }
    if (approval.requester.session !== requester.session) {
      throw new ApprovalRefusedError(id, "it was asked for in another session");
    }
    if (approval.command !== command) {
      throw new ApprovalRefusedError(id, "it was given for a different command");
    }
    if (approval.status !== "approved") {
      throw new ApprovalRefusedError(id, `it is ${approval.status}`);
    }
    approval.status = "used";
    this.options.onChange?.(approval, "used");
    return approvedPolicyName(approval.rule);
  }

  /** Gives a used approval back when nothing ran (the service refused: busy, degraded…). */
  giveBack(id: string): void {
    const approval = this.approvals.get(id);
    if (approval?.status === "used") approval.status = "approved";
  }

  /** Marks pending/approved approvals past their time as expired; forgets old decided ones. */
  private sweep(): void {
    const now = this.now();
    for (const approval of this.approvals.values()) {
      if (
        (approval.status === "pending" ||
          (approval.status === "approved" && approval.kind === "command")) &&
        approval.expiresAt.getTime() <= now
      ) {
        approval.status = "expired";
        this.options.onChange?.(approval, "expired");
      }
      if (
        approval.status !== "pending" &&
        approval.status !== "approved" &&
        approval.expiresAt.getTime() + KEEP_DECIDED_MS <= now
      ) {
        this.approvals.delete(approval.id);
      }
    }
  }
}
