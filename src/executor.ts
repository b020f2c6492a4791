import type { Redactor } from "./bundle/redactor.js";
import type { TenantLimits } from "./limits/limits.js";

/**
 * The executor port: what the service needs from whatever governs a command. `src/agentsh/`
 * implements it with agentsh; request tests use a fake. Nothing outside `src/agentsh/` sees
 * agentsh's wire format.
 */

/**
 * How a command that agentsh accepted ended:
 * - `ok`: ran, exit 0, nothing denied.
 * - `failed`: ran, non-zero exit, nothing denied (including kernel refusals that leave no rule).
 * - `blocked`: agentsh denied the command or an operation it attempted (see `decision`).
 * - `timed_out`: the command hit its time limit and was killed.
 */
export type Outcome = "ok" | "failed" | "blocked" | "timed_out";

export type DecisionKind = "command" | "file" | "network" | "other";

/** The policy decision that stopped a command, as agentsh reported it. */
export interface Decision {
  /** Name of the policy rule that matched, e.g. `deny-privilege-escalation`. */
  rule: string | null;
  kind: DecisionKind;
  /**
   * Which layer decided when it was not agentsh itself: `launcher` (agentsh-launch refused to
   * start the command) or `limit` (a resource limit stopped it, on the kernel's evidence).
   */
  layer?: "launcher" | "limit";
  /** What was attempted, e.g. `execve`, `file_open`, `net_connect`. */
  operation: string | null;
  /** What it was attempted on: a path, host, address or program. */
  target: string | null;
  message: string | null;
}

export interface StreamOutput {
  text: string;
  truncated: boolean;
  /** Size of the full stream when known, in bytes. */
  totalBytes: number;
}

export interface GovernedResult {
  outcome: Outcome;
  /** The command's exit code; null when unknown (e.g. killed at its time limit). */
  exitCode: number | null;
  stdout: StreamOutput;
  stderr: StreamOutput;
  durationMs: number;
  /** The first (primary) denial; null unless outcome is `blocked`. */
  decision: Decision | null;
  /** Every denial agentsh reported for this command (bounded by agentsh's event summary). */
  denials: Decision[];
  /** Why it stopped (time limit); null otherwise. */
  problem: string | null;
  /**
   * Whether agentsh-unixwrap reported its Landlock + seccomp sandbox for this command (the
   * wrapper's first stderr line). null when no process was started (a pre-check denial).
   */
  sandboxed: boolean | null;
  /** The agentsh session the command ran in (for correlating logs with agentsh's events). */
  sessionId?: string;
  /** agentsh's id for this command (its events carry it as command_id). */
  commandId?: string;
  /**
   * For a command run in a session: where it ended and what it exported, as the session
   * wrapper recorded it. null when it left no record (it replaced the shell with `exec`, or
   * set its own EXIT trap); absent for commands without a session.
   */
  sessionState?: SessionState | null;
}

/** A session's carried state: the next command starts in `cwd` with `env` exported. */
export interface SessionState {
  cwd: string;
  /** The exported environment when the command ended. */
  exported: Record<string, string>;
  /** The exported environment when the command started (to tell its own changes apart). */
  initial: Record<string, string>;
}

/** The session a command runs in (`POST /execute` with a `sessionId`). */
export interface SessionContext {
  /** The agentsh session that belongs to it alone (its events carry this id). */
  agentshSessionId: string;
  /** The session's own directory. */
  workspace: string;
  /** Where the command starts (falls back to `workspace` if it no longer exists). */
  cwd: string;
  /** Variables the session's earlier commands exported. */
  env: Record<string, string>;
  /**
   * The unprivileged identity (isolation.yaml index) reserved for this session: its commands run
   * as that uid instead of the slot's, so no other session's command can touch its files.
   * Absent where commands keep the service's identity.
   */
  identity?: number;
}

/**
 * Why there is no result: `busy` (no command slot within the queue's bounds), `canceled` (the
 * caller went away), `unavailable` (agentsh could not run it: server unreachable, bad reply).
 */
export type NotRunReason = "busy" | "canceled" | "unavailable";

/** One explicit answer for "nothing ran": never an exception, never a null field. */
export type Execution =
  | { kind: "result"; result: GovernedResult }
  | { kind: "not_run"; reason: NotRunReason; detail: string };

/** What the executor needs of a tenant (src/tenants/). */
export interface CommandTenant {
  name: string;
  policy: string;
  workspaceRoot: string;
  /** Command slots it may hold at once. */
  slots: number | undefined;
  /** Its own cgroup limits per command (lower than the bundle's). */
  limits?: TenantLimits | undefined;
  /** Its own DLP (its patterns, then the service's); undefined: the service's. */
  redact?: Redactor | undefined;
}

export interface GovernedCommand {
  command: string;
  timeoutMs: number;
  /** Fires when the caller goes away; the command is then abandoned and killed. */
  signal?: AbortSignal;
  session?: SessionContext;
  /**
   * Who asked (the API key's fingerprint): commands without a session get a scratch
   * HOME/TMPDIR of their key's, which no other key's command can read.
   */
  owner?: string;
  /**
   * The caller's tenant (with a tenants file): a command without a session runs in the
   * tenant's workspace, in an agentsh session created with the tenant's policy.
   */
  tenant?: CommandTenant;
  /**
   * Receives output as agentsh streams it (raw, unredacted: the caller redacts). The result
   * still carries the output, bounded, as in a buffered run.
   */
  onOutput?: (stream: "stdout" | "stderr", text: string) => void;
  /** Told how long each phase took, in order (the answer's Server-Timing header). */
  onPhase?: (phase: Phase, ms: number) => void;
  /**
   * Called with the agentsh session the command is about to run in (network approvals: what
   * agentsh's proxy holds for that session is this command's). What it returns is awaited once
   * the command has ended, before the session serves another command.
   */
  onAgentshSession?: (sessionId: string) => (() => Promise<void>) | undefined;
  /**
   * An approved command: run it in a fresh agentsh session created with this policy (one that
   * allows the approved rule and nothing more), ended afterwards.
   */
  agentshPolicy?: string;
}

/**
 * The phases of one command: waiting for a slot, preparing its limits, agentsh's run (the CLI,
 * agentsh, the launcher and the command itself), looking up recorded denials, and reading what
 * the limits and the session recorded afterwards.
 */
export type Phase = "queue" | "limits" | "agentsh" | "evidence" | "after";

export interface Executor {
  run(request: GovernedCommand): Promise<Execution>;
  /** Creates the agentsh session of a caller's session, rooted in its workspace. */
  openSession(agentshSessionId: string, workspace: string, policy?: string): Promise<void>;
  /** Ends it in agentsh (best effort: agentsh also expires idle sessions). */
  closeSession(agentshSessionId: string): Promise<void>;
}
