import type { Executor } from "../executor.js";
import type { Limits } from "../limits/limits.js";
import { createAgentshExecutor } from "./executor.js";
import { collectInstallationReport, type InstallationReport } from "./installation-report.js";
import type { LauncherSettings } from "./launcher.js";
import { type Canary, runSelfTest, type SelfTestReport } from "./self-test.js";
import { type AgentshServerApi, createAgentshServerApi } from "./server-api.js";
import { SessionPool } from "./session-pool.js";

/**
 * The one entry point to agentsh (and the only code that runs its CLI). Commands go through the `agentsh exec` CLI (the only path in
 * v0.16.9 that applies the same pre-check, seccomp wrapper and JSON result as an operator's own
 * `agentsh exec`); the server's HTTP API is used for what the CLI cannot do cheaply: health
 * probes, creating sessions up front (first-use auto-create races between two commands), and
 * reading denials that only its event store keeps (nested execve, file and socket denials).
 */
export interface Agentsh {
  executor: Executor;
  /** null when the server answers, else what is wrong. */
  probe(): Promise<string | null>;
  /** Creates every slot's session (idempotent), e.g. after agentsh restarted. */
  ensureSessions(): Promise<void>;
  /** Sessions, then the canary commands that prove enforcement. */
  prove(): Promise<SelfTestReport>;
  stats(): { slots: number; inFlight: number; queued: number };
  /** `agentsh --version` and `agentsh detect`, run by the service itself (never governed). */
  installationReport(): Promise<InstallationReport>;
  /** agentsh's own verdict on one operation (its policy-test API), for `/explain`'s cross-check. */
  policyTest: AgentshServerApi["policyTest"];
}

export interface AgentshOptions {
  /** Absolute path of the agentsh CLI. */
  bin: string;
  serverUrl: string;
  apiKey: string | undefined;
  workspace: string;
  outputLimitBytes: number;
  sessionPrefix: string;
  /** Concurrent commands (one agentsh session each). */
  slots: number;
  /** Requests that may wait for a slot before new ones are refused. */
  maxQueued: number;
  /** How long one may wait. */
  queueWaitMs: number;
  /** agentsh-launch between agentsh's sandbox and every command (kernel isolation layers). */
  launcher?: LauncherSettings;
  /** Run the agentsh CLI under this unprivileged uid (when the service itself is root). */
  cliUid?: number;
  /** Per-command resource limits (with the launcher). */
  limits?: Limits;
  /**
   * Commands of different API keys never run at once (where the kernel cannot keep concurrent
   * commands apart: all uid 0, no Landlock signal scope).
   */
  oneKeyAtATime?: boolean;
  /** The canary commands that prove enforcement (agentsh's layers and the launcher's). */
  canaries: readonly Canary[];
  /** NETWORK_APPROVALS: held connections that were refused count as denials. */
  networkApprovals?: boolean;
}

export function createAgentsh(options: AgentshOptions): Agentsh {
  const pool = new SessionPool(
    options.sessionPrefix,
    options.slots,
    options.maxQueued,
    options.queueWaitMs,
    options.oneKeyAtATime === true,
  );
  const api = createAgentshServerApi({
    serverUrl: options.serverUrl,
    apiKey: options.apiKey,
    workspace: options.workspace,
    heldDecisions: options.networkApprovals === true,
  });
  const executor = createAgentshExecutor({
    bin: options.bin,
    serverUrl: options.serverUrl,
    apiKey: options.apiKey,
    outputLimitBytes: options.outputLimitBytes,
    sessions: pool,
    recreateSession: (id, workspace, policy) => api.ensureSession(id, workspace, policy),
    destroySession: (id) => api.destroySession(id),
    recordedDenials: api.recordedDenials,
    workspace: options.workspace,
    ...(options.launcher ? { launcher: options.launcher } : {}),
    ...(options.cliUid !== undefined ? { cliUid: options.cliUid } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
  });
  const ensureSessions = async () => {
    await Promise.all(pool.sessionIds.map((id) => api.ensureSession(id)));
  };
  return {
    executor,
    probe: api.probe,
    ensureSessions,
    async prove() {
      await ensureSessions();
      return runSelfTest(executor, options.canaries);
    },
    stats: () => pool.stats,
    installationReport: () => collectInstallationReport(options.bin),
    policyTest: api.policyTest,
  };
}
