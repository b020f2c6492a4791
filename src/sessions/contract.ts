import type { CommandResult } from "../command-result.js";
import type { CommandTenant, Phase } from "../executor.js";

/**
 * The contract of sessions and of running one command, shared by `POST /execute`, the
 * session routes, the MCP endpoint and the console. Implementations: `session-registry.ts`
 * (sessions) and `execute-command.ts` (one command, buffered or streamed).
 */

/** A governed session as its owner sees it (`GET /sessions/:id`). */
export interface SessionInfo {
  /** `s-<instance tag>-<24 hex>`: the tag names the instance that holds the session. */
  id: string;
  createdAt: string;
  lastUsedAt: string;
  /** When it expires unless used again (idle timeout). */
  expiresAt: string;
  /** The session's own directory; its commands start here the first time. */
  workspace: string;
  /** The working directory its next command starts in (after the last `cd`). */
  cwd: string;
  /** Names of the exported variables carried into its next command. */
  env: string[];
  /** Commands run in it so far. */
  commands: number;
  /** Whether a command is running in it now (a second one is refused with 409). */
  busy: boolean;
  /**
   * Other sessions' and other keys' commands can neither read nor write its directory or its
   * scratch HOME/TMPDIR: the launcher's Landlock file rules grant each command only its own
   * (and, where commands drop to unprivileged uids, the session has a uid of its own too).
   * False only without the launcher.
   */
  isolated: boolean;
}

/** Who is asking: sessions belong to the API key that created them. */
export interface Caller {
  /** A fingerprint of the caller's API key (`anonymous` when the service has no key). */
  owner: string;
  /** The caller's tenant (with a tenants file): its workspace, policy and slot share. */
  tenant?: CommandTenant;
  requestId: string;
  /** Fires when the caller goes away: the command is killed. */
  signal?: AbortSignal;
  /** Told agentsh's ids for the command (for the request's log line). */
  noteAgentshIds?: (ids: { sessionId: string | null; commandId: string | null }) => void;
  /** Told how long each phase of the command took (the answer's Server-Timing header). */
  onPhase?: (phase: Phase, ms: number) => void;
  /**
   * Told while the command runs that agentsh's proxy holds one of its connections for a person's
   * decision (NETWORK_APPROVALS): the stream's `approval_required` event.
   */
  onApproval?: (note: ApprovalNote) => void;
}

export interface ExecuteInput {
  command: string;
  timeoutMs?: number | undefined;
  sessionId?: string | undefined;
  /** Run this command as approved (POST /approvals/:id): same key, session and text, once. */
  approvalId?: string | undefined;
}

/**
 * An approval a person may now decide (POST /approvals/:id). `command`: agentsh blocked the
 * command on an approval-class rule; once approved, resubmit it with `approvalId`. `network`:
 * agentsh's proxy holds a connection of the running command to `target` until the decision.
 */
export interface ApprovalNote {
  id: string;
  kind: "command" | "network";
  status: "pending";
  rule: string;
  /** Network: the destination (host:port) held. */
  target?: string;
  expiresAt: string;
}

/** The body of a buffered `POST /execute` answer (and of the stream's final `result` event). */
export interface ExecuteBody {
  command: string;
  result: CommandResult;
  requestId: string;
  /**
   * Present when agentsh blocked the command on an approval-class rule: once a person approves,
   * resubmit the same command (same key and session) with `approvalId`.
   */
  approval?: ApprovalNote;
  /** Present when the command ran under an approval (it is now used). */
  approvedBy?: { id: string; decidedBy: string; reason: string | null };
  /** Present when the command ran in a session: where the next one starts. */
  session?: {
    id: string;
    cwd: string;
    env: string[];
    /** Exported names not carried to the next command (the policy's env_policy denies them). */
    envNotCarried?: string[];
  };
}

/** One piece of output as it arrives (already DLP-redacted). */
export interface OutputChunk {
  stream: "stdout" | "stderr";
  text: string;
}

/**
 * Runs one command for a caller. Refusals (validation, unknown session, busy, degraded…) are
 * thrown as `ApiError`s; with `onOutput` the output is also delivered as it arrives.
 */
export type ExecuteCommand = (
  input: ExecuteInput,
  caller: Caller,
  onOutput?: (chunk: OutputChunk) => void,
) => Promise<ExecuteBody>;

/** A tenant's say in its sessions: their agentsh policy and how many it may hold. */
export interface SessionTenant {
  policy: string;
  quota: number | undefined;
}

export interface SessionRegistry {
  /** Throws ApiError `session_limit` when the owner holds the maximum already. */
  create(owner: string, tenant?: SessionTenant): Promise<SessionInfo>;
  /** Throws ApiError `session_not_found` (also for another owner's session). */
  get(owner: string, id: string): SessionInfo;
  list(owner: string): SessionInfo[];
  /** Ends it: a running command is killed, its workspace removed. */
  delete(owner: string, id: string): Promise<SessionInfo>;
}
