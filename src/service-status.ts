import type { AgentshServerApi } from "./agentsh/server-api.js";
import type { SessionPool } from "./agentsh/session-pool.js";

/**
 * What the service knows about its own ability to govern commands: whether agentsh answers,
 * whether enforcement was verified at boot, and which bundle is loaded.
 */

export interface EnforcementReport {
  /** `enforced`: verified; `degraded`: a protection is missing; `unverified`: not checked. */
  mode: "enforced" | "degraded" | "unverified";
  /** Each check by name → passed. */
  checks: Record<string, boolean>;
  problems: string[];
}

/** The launcher's kernel layers on this host. */
export interface IsolationReport {
  /** The kernel's Landlock ABI (0: none), null when the launcher is missing. */
  landlockAbi: number | null;
  /** Layer → "enforced", or why it is missing/unavailable. */
  layers: Record<string, string>;
  udp: boolean;
  bindTcpPorts: string[];
}

export interface HealthReport {
  status: "ok" | "unavailable";
  reason?: string;
  agentsh: { server: "reachable" | "unreachable"; url: string };
  enforcement: EnforcementReport & { allowDegraded: boolean };
  bundle: { digest: string; policy: string };
  isolation: IsolationReport;
  commands: { slots: number; inFlight: number; queued: number };
  uptimeSeconds: number;
}

export interface ServiceStatus {
  check(): Promise<HealthReport>;
  /** Why commands must not run right now, or null when they may. */
  executionBlocker(): string | null;
  /** A command ran without the sandbox: degrade until restart (the boot check is void). */
  enforcementLost(problem: string): void;
  /** The result of a (re-)run of the self-test. */
  setEnforcement(report: EnforcementReport): void;
}

export function createServiceStatus(options: {
  server: AgentshServerApi;
  serverUrl: string;
  enforcement: EnforcementReport;
  allowDegraded: boolean;
  bundle: { digest: string; policy: string };
  isolation: IsolationReport;
  pool: SessionPool;
  now?: () => number;
}): ServiceStatus {
  const now = options.now ?? Date.now;
  const started = now();
  let enforcement = options.enforcement;
  const executionBlocker = () =>
    enforcement.mode === "enforced" || options.allowDegraded
      ? null
      : `enforcement is ${enforcement.mode}: ${enforcement.problems.join("; ") || "not verified"}`;

  return {
    executionBlocker,
    setEnforcement(report) {
      enforcement = report;
    },
    enforcementLost(problem) {
      enforcement = {
        mode: "degraded",
        checks: { ...enforcement.checks, "sandbox applied to every command": false },
        problems: [...new Set([...enforcement.problems, problem])],
      };
    },
    async check() {
      const serverProblem = await options.server.probe();
      const reason = serverProblem ?? executionBlocker();
      return {
        status: reason ? "unavailable" : "ok",
        ...(reason ? { reason } : {}),
        agentsh: { server: serverProblem ? "unreachable" : "reachable", url: options.serverUrl },
        enforcement: { ...enforcement, allowDegraded: options.allowDegraded },
        bundle: options.bundle,
        isolation: options.isolation,
        commands: options.pool.stats,
        uptimeSeconds: Math.round((now() - started) / 1000),
      };
    },
  };
}
