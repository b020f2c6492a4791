import type { EnforcementMonitor, EnforcementState } from "./monitor.js";

/** The launcher's kernel layers on this host. */
export interface IsolationReport {
  /** The kernel's Landlock ABI (0: none), null when the launcher is missing. */
  landlockAbi: number | null;
  /** Layer → "enforced", or why it is missing/unavailable. */
  layers: Record<string, string>;
  udp: boolean;
  /** What commands may bind: ["any"], or the Landlock ranges. */
  bindTcpPorts: string[];
  /** The service's ports and what holds each address family (src/enforcement/held-ports.ts). */
  servicePorts: Record<string, { ipv4: string; ipv6: string }>;
  /** Ports below this need a capability commands never have (null: unknown here). */
  privilegedPortsBelow: number | null;
  /** Each resource limit: its value and mechanism here, or "unavailable: …". */
  limits: Record<string, string>;
}

/** What `GET /health` (and `/demo/status`) report about the service's ability to govern. */
export interface HealthReport {
  status: "ok" | "unavailable";
  reason?: string;
  agentsh: {
    server: "reachable" | "unreachable";
    url: string;
    /** Each tenant policy's own agentsh server (docs/tenants.md); absent when there is none. */
    policies?: Record<string, { server: "reachable" | "unreachable"; url: string }>;
  };
  enforcement: EnforcementState & { allowDegraded: boolean };
  bundle: { digest: string; policy: string };
  isolation: IsolationReport;
  commands: { slots: number; inFlight: number; queued: number };
  uptimeSeconds: number;
}

export type HealthCheck = () => Promise<HealthReport>;

export function createHealthCheck(options: {
  monitor: Pick<EnforcementMonitor, "state" | "gate">;
  /** null when the default agentsh server answers, else what is wrong. */
  probe: () => Promise<string | null>;
  agentshUrl: string;
  /** Each tenant policy's own server and whether it answers. */
  policyServers?: () => Promise<NonNullable<HealthReport["agentsh"]["policies"]>>;
  allowDegraded: boolean;
  bundle: { digest: string; policy: string };
  isolation: IsolationReport;
  commandStats: () => HealthReport["commands"];
  now?: () => number;
}): HealthCheck {
  const now = options.now ?? Date.now;
  const started = now();
  return async () => {
    const [serverProblem, policies] = await Promise.all([
      options.probe(),
      options.policyServers?.() ??
        Promise.resolve({} as NonNullable<HealthReport["agentsh"]["policies"]>),
    ]);
    const policyDown = Object.entries(policies).find(([, p]) => p.server === "unreachable");
    const reason =
      serverProblem ??
      (policyDown
        ? `the agentsh server of policy ${policyDown[0]} at ${policyDown[1].url} is not reachable`
        : null) ??
      options.monitor.gate();
    return {
      status: reason ? "unavailable" : "ok",
      ...(reason ? { reason } : {}),
      agentsh: {
        server: serverProblem ? "unreachable" : "reachable",
        url: options.agentshUrl,
        ...(Object.keys(policies).length > 0 ? { policies } : {}),
      },
      enforcement: { ...options.monitor.state(), allowDegraded: options.allowDegraded },
      bundle: options.bundle,
      isolation: options.isolation,
      commands: options.commandStats(),
      uptimeSeconds: Math.round((now() - started) / 1000),
    };
  };
}
