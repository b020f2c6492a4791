/**
 * What the rest of the service knows about a governed command. Nothing outside `src/agentsh/`
 * sees agentsh's wire format; routes only see these types.
 */

/**
 * - `ok`: ran, exit 0, nothing denied.
 * - `failed`: ran, non-zero exit, nothing denied.
 * - `blocked`: agentsh denied the command or an operation it attempted (see `decision`).
 * - `timed_out`: the command hit its time limit and was killed.
 * - `unavailable`: agentsh could not run it (server unreachable, session missing, bad reply).
 */
export type Outcome = "ok" | "failed" | "blocked" | "timed_out" | "unavailable";

export type DecisionKind = "command" | "file" | "network" | "other";

/** The policy decision that stopped a command, as agentsh reported it. */
export interface Decision {
  /** Name of the policy rule that matched, e.g. `deny-privilege-escalation`. */
  rule: string | null;
  kind: DecisionKind;
  /** What was attempted, e.g. `execve`, `file_open`, `net_connect`. */
  operation: string | null;
  /** What it was attempted on: a path, host, address or program. */
  target: string | null;
  message: string | null;
  /** Set when the service's own launcher (not agentsh) stopped the command. */
  layer?: "launcher";
}

export interface StreamOutput {
  text: string;
  truncated: boolean;
  /** Size of the full stream when known, in bytes. */
  totalBytes: number;
}

export interface GovernedResult {
  outcome: Outcome;
  /** The command's exit code; null when it never ran or the code is unknown. */
  exitCode: number | null;
  stdout: StreamOutput;
  stderr: StreamOutput;
  durationMs: number;
  /** The first (primary) denial; null unless outcome is `blocked`. */
  decision: Decision | null;
  /** Every denial agentsh reported for this command (bounded by agentsh's event summary). */
  denials: Decision[];
  /** Why agentsh could not run it or why it stopped; null for ok/failed/blocked. */
  problem: string | null;
  commandId: string | null;
  /**
   * Whether agentsh-unixwrap reported its Landlock + seccomp sandbox for this command (the
   * wrapper's first stderr line). null when no process was started (e.g. a pre-check denial).
   */
  sandboxed: boolean | null;
}

export interface GovernedCommand {
  command: string;
  timeoutMs: number;
  /** Fires when the caller goes away; the command is then abandoned and killed. */
  signal?: AbortSignal;
}

export interface Executor {
  run(request: GovernedCommand): Promise<GovernedResult>;
}

/** Looks up denials agentsh recorded in its event store (nested execve, file, unix socket). */
export type DenialLookup = (sessionId: string, since: Date, until: Date) => Promise<Decision[]>;
