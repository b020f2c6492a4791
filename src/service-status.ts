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

export interface HealthReport {
  status: "ok" | "unavailable";
  reason?: string;
  agentsh: { server: "reachable" | "unreachable"; url: string };
  enforcement: EnforcementReport & { allowDegraded: boolean };
  bundle: { digest: string; policy: string };
  commands: { slots: number; inFlight: number; queued: number };
  uptimeSeconds: number;
}

export interface ServiceStatus {
  check(): Promise<HealthReport>;
  /** Why commands must not run right now, or null when they may. */
  executionBlocker(): string | null;
}

export function createServiceStatus(options: {
  server: AgentshServerApi;
  serverUrl: string;
  enforcement: EnforcementReport;
  allowDegraded: boolean;
  bundle: { digest: string; policy: string };
  pool: SessionPool;
  now?: () => number;
}): ServiceStatus {
  const now = options.now ?? Date.now;
  const started = now();
  const executionBlocker = () =>
    options.enforcement.mode === "enforced" || options.allowDegraded
      ? null
      : `enforcement is ${options.enforcement.mode}: ${options.enforcement.problems.join("; ") || "not verified"}`;

  return {
    executionBlocker,
    async check() {
      const serverProblem = await options.server.probe();
      const reason = serverProblem ?? executionBlocker();
      return {
        status: reason ? "unavailable" : "ok",
        ...(reason ? { reason } : {}),
        agentsh: { server: serverProblem ? "unreachable" : "reachable", url: options.serverUrl },
        enforcement: { ...options.enforcement, allowDegraded: options.allowDegraded },
        bundle: options.bundle,
        commands: options.pool.stats,
        uptimeSeconds: Math.round((now() - started) / 1000),
      };
    },
  };
}
