import type { Logger } from "../logger.js";

/**
 * The enforcement lifecycle: whether governed commands may run right now. Enforcement is a
 * measurement (canary commands through the real executor), made at boot and again whenever
 * agentsh comes back after being unreachable (its supervisor restarted it and its sessions are
 * gone). A command that ran without the sandbox voids the measurement until restart.
 */

/** `enforced`: proven by canaries; `degraded`: a protection is missing; `unverified`: not proven. */
export type EnforcementMode = "enforced" | "degraded" | "unverified";

export interface EnforcementState {
  mode: EnforcementMode;
  /** Each check by name → passed. */
  checks: Record<string, boolean>;
  problems: string[];
}

/** The result of one round of canaries (after sessions were re-created). */
export interface Proof {
  checks: Record<string, boolean>;
  problems: string[];
}

/** The last round of canaries and when it ran. */
export interface ProofRecord extends Proof {
  /** ISO time the round finished. */
  at: string;
}

export interface EnforcementMonitorOptions {
  /** null when agentsh answers, else what is wrong. */
  probe: () => Promise<string | null>;
  /** Re-creates agentsh sessions and runs the canary commands. */
  prove: () => Promise<Proof>;
  /** What the bundle and the installation promise before anything runs. */
  staticChecks: Record<string, boolean>;
  allowDegraded: boolean;
  logger: Logger;
  /** How often agentsh is probed after boot. */
  pollMs?: number;
  /** The state before the first proof (default: unverified, agentsh not reached yet). */
  initial?: EnforcementState;
  /** What to tell the operator about a refused boot, given its problems (a likely cause). */
  bootHint?: (problems: string[]) => string | undefined;
  /** Re-run the canaries this often while agentsh answers (ms); 0 or unset = never. */
  reverifyMs?: number;
  now?: () => Date;
}

export interface EnforcementMonitor {
  state(): EnforcementState;
  /** Why commands must not run right now, or null when they may. */
  gate(): string | null;
  /** A command ran without the sandbox: degraded until restart, whatever canaries say later. */
  markLost(problem: string): void;
  /** Runs the canaries now and records the result (concurrent calls share one round). */
  verify(): Promise<EnforcementState>;
  /** The last round of canaries, or null before the first. */
  lastProof(): ProofRecord | null;
  /**
   * Boot: verifies when agentsh answers and throws when enforcement is missing (unless
   * degraded service is allowed); then watches agentsh. Returns the watcher's stop function.
   */
  start(): Promise<() => void>;
}

const DEFAULT_POLL_MS = 1_000;
const LOST_CHECK = "sandbox applied to every command";

export function createEnforcementMonitor(options: EnforcementMonitorOptions): EnforcementMonitor {
  const { logger, staticChecks } = options;
  let current: EnforcementState = options.initial ?? {
    mode: "unverified",
    checks: staticChecks,
    problems: ["agentsh not reached yet"],
  };
  let lost: string | null = null;
  let last: ProofRecord | null = null;
  let inFlight: Promise<EnforcementState> | null = null;
  const now = options.now ?? (() => new Date());

  const state = (): EnforcementState =>
    lost === null
      ? current
      : {
          mode: "degraded",
          checks: { ...current.checks, [LOST_CHECK]: false },
          problems: [...new Set([...current.problems, lost])],
        };

  const gate = (): string | null => {
    const { mode, problems } = state();
    if (mode === "enforced" || options.allowDegraded) return null;
    return `enforcement is ${mode}: ${problems.join("; ") || "not verified"}`;
  };

  const verify = (): Promise<EnforcementState> => {
    inFlight ??= runProof().finally(() => {
      inFlight = null;
    });
    return inFlight;
  };

  const runProof = async (): Promise<EnforcementState> => {
    const proof = await options.prove();
    last = { checks: proof.checks, problems: proof.problems, at: now().toISOString() };
    const checks = { ...staticChecks, ...proof.checks };
    const failed = Object.entries(checks)
      .filter(([, passed]) => !passed)
      .map(([name]) => `failed: ${name}`);
    current = {
      mode: failed.length > 0 ? "degraded" : "enforced",
      checks,
      problems: failed.length > 0 ? [...failed, ...proof.problems] : [],
    };
    return state();
  };

  /** Probes agentsh; on a change of reachability, marks it lost or re-verifies. */
  const watch = (reachableAtStart: boolean): (() => void) => {
    let wasReachable = reachableAtStart;
    let busy = false;
    const tick = async () => {
      if (busy) return;
      busy = true;
      try {
        const problem = await options.probe();
        const reachable = problem === null;
        if (reachable === wasReachable) return;
        if (!reachable) {
          logger.error("agentsh server lost", { problem });
          current = {
            mode: "unverified",
            checks: {},
            problems: ["agentsh server restarted; re-verifying enforcement"],
          };
          wasReachable = false;
          return;
        }
        const after = await verify();
        logger.info("agentsh reachable; enforcement re-verified", {
          mode: after.mode,
          problems: after.problems,
        });
        wasReachable = true;
      } catch (error) {
        logger.error("agentsh reachable but verification failed; will retry", {
          error: String(error),
        });
      } finally {
        busy = false;
      }
    };
    const timer = setInterval(() => void tick(), options.pollMs ?? DEFAULT_POLL_MS);
    timer.unref();
    return () => clearInterval(timer);
  };

  /**
   * Proof that holds over time: the canaries again on a schedule, so a protection that stops
   * working (a helper removed, a policy edited, a kernel feature gone) turns /health 503 within
   * one interval, and a fixed one turns it back.
   */
  const schedule = (everyMs: number): (() => void) => {
    const timer = setInterval(async () => {
      if (inFlight) return;
      const before = current.mode;
      try {
        if ((await options.probe()) !== null) return; // the watcher handles an absent agentsh
        const after = await verify();
        if (after.mode !== before) {
          const log = after.mode === "enforced" ? logger.info : logger.error;
          log("scheduled self-test changed the enforcement state", {
            from: before,
            to: after.mode,
            problems: after.problems,
          });
        }
      } catch (error) {
        logger.error("scheduled self-test failed to run; will retry", { error: String(error) });
      }
    }, everyMs);
    timer.unref();
    return () => clearInterval(timer);
  };

  return {
    state,
    gate,
    verify,
    lastProof: () => last,
    markLost(problem) {
      lost = problem;
    },
    async start() {
      const reachable = (await options.probe()) === null;
      if (reachable) {
        const after = await verify();
        if (after.mode !== "enforced" && !options.allowDegraded) {
          const hint = options.bootHint?.(after.problems);
          throw new Error(
            `Refusing to start: agentsh enforcement is not active.\n${after.problems.map((p) => `  - ${p}`).join("\n")}${hint ? `\n${hint}` : ""}\nFix the cause above, or set ALLOW_DEGRADED=true to serve anyway (not recommended).`,
          );
        }
      } else {
        logger.warn("agentsh server not reachable at boot; commands are refused until it is");
      }
      const stopWatching = watch(reachable);
      const stopSchedule = options.reverifyMs ? schedule(options.reverifyMs) : () => {};
      return () => {
        stopWatching();
        stopSchedule();
      };
    },
  };
}
