import { access, constants } from "node:fs/promises";
import path from "node:path";
import { serve } from "@hono/node-server";
import { getConnInfo } from "@hono/node-server/conninfo";
import { Redis } from "ioredis";
import { createAgentshExecutor } from "./agentsh/executor.js";
import {
  isolationLayers,
  type LauncherProbe,
  type LauncherSettings,
  probeLauncher,
} from "./agentsh/launcher.js";
import { CANARIES, launcherCanaries, runSelfTest } from "./agentsh/self-test.js";
import { type AgentshServerApi, createAgentshServerApi } from "./agentsh/server-api.js";
import { SessionPool } from "./agentsh/session-pool.js";
import { createApp } from "./app.js";
import { bindPortCount, conflictingBindPorts } from "./bundle/isolation-schema.js";
import { loadPolicyBundle, type PolicyBundle } from "./bundle/load-bundle.js";
import { createRedactor } from "./bundle/redactor.js";
import { type Config, parseConfig } from "./config.js";
import { redisRateLimitStore } from "./http/redis-rate-limit-store.js";
import { createJsonLogger, type Logger } from "./logger.js";
import {
  createServiceStatus,
  type EnforcementReport,
  type ServiceStatus,
} from "./service-status.js";

/**
 * Node entry: the only place that reads the process environment, listens, and handles signals.
 */
async function main(): Promise<void> {
  const config = parseConfig(process.env);
  const logger = createJsonLogger(config.logLevel);
  const agentshBin = await locateExecutable(config.agentsh.bin);
  // The values agentsh will expand in config.yaml; scripts/boot exports the same defaults.
  const bundle = await loadPolicyBundle(config.agentsh.bundleDir, {
    AGENTSH_BUNDLE_DIR: path.resolve(config.agentsh.bundleDir),
    AGENTSH_STATE_DIR: "/var/lib/governed-executor",
    AGENTSH_BIN_DIR: path.dirname(agentshBin ?? "/usr/local/bin/agentsh"),
    ...stringEnv(process.env),
  });
  for (const warning of bundle.warnings) logger.warn("policy bundle", { warning });

  const staticChecks = await bundleChecks(bundle, agentshBin);
  const { launcher, probe } = await setUpLauncher(config, bundle, agentshBin, logger);
  staticChecks["launcher agentsh-launch installed"] = probe !== null;
  staticChecks["Landlock TCP rules available (ABI >= 4)"] = probe?.landlockNet === true;
  const pool = new SessionPool(
    config.agentsh.sessionPrefix,
    config.limits.maxConcurrent,
    config.limits.maxQueued,
  );
  const server = createAgentshServerApi({
    serverUrl: config.agentsh.serverUrl,
    apiKey: config.agentsh.apiKey,
    workspace: config.agentsh.workspace,
  });
  const executor = createAgentshExecutor({
    bin: agentshBin ?? config.agentsh.bin,
    serverUrl: config.agentsh.serverUrl,
    apiKey: config.agentsh.apiKey,
    outputLimitBytes: config.limits.outputLimitBytes,
    sessions: pool,
    recreateSession: (id) => server.ensureSession(id),
    recordedDenials: server.recordedDenials,
    ...(launcher ? { launcher } : {}),
  });
  const canaries = [
    ...CANARIES,
    ...launcherCanaries({
      loopbackPort: config.port,
      servicePid: process.pid,
      firstUid: bundle.isolation.identities.first_uid,
      uidCount: config.limits.maxConcurrent,
      udpAllowed: bundle.isolation.network.udp,
      uidDrop: bundle.isolation.identities.uid_drop,
      signalScope: probe?.signalScope === true,
    }),
  ];
  const status = createServiceStatus({
    server,
    serverUrl: config.agentsh.serverUrl,
    enforcement: {
      mode: "unverified",
      checks: staticChecks,
      problems: ["agentsh not reached yet"],
    },
    allowDegraded: config.allowDegraded,
    bundle: { digest: bundle.digest, policy: bundle.policy.name },
    isolation: {
      landlockAbi: probe?.landlockAbi ?? null,
      layers: isolationLayers(probe, bundle.isolation.identities.uid_drop),
      udp: bundle.isolation.network.udp,
      bindTcpPorts: bundle.isolation.network.bind_tcp_ports.map((r) =>
        r.lo === r.hi ? `${r.lo}` : `${r.lo}-${r.hi}`,
      ),
    },
    pool,
  });

  /** Sessions + canaries; run at boot and again whenever agentsh comes back. */
  const verify = async (): Promise<EnforcementReport> => {
    await Promise.all(pool.sessionIds.map((id) => server.ensureSession(id)));
    const selfTest = await runSelfTest(executor, canaries);
    const checks = { ...staticChecks, ...selfTest.checks };
    const problems = Object.entries(checks)
      .filter(([, passed]) => !passed)
      .map(([name]) => `failed: ${name}`);
    const report: EnforcementReport = {
      mode: problems.length > 0 ? "degraded" : "enforced",
      checks,
      problems: problems.length > 0 ? [...problems, ...selfTest.problems] : [],
    };
    status.setEnforcement(report);
    return report;
  };

  const reachableAtBoot = (await server.probe()) === null;
  if (reachableAtBoot) {
    const report = await verify();
    if (report.mode !== "enforced" && !config.allowDegraded) {
      // Measured: with the uid drop, agentsh's seccomp supervisor must read another uid's
      // memory, which needs CAP_SYS_PTRACE; without it every exec is refused.
      const ptraceHint = report.problems.some((p) => p.includes("[exec: "))
        ? "\nA launcher exec refusal usually means the agentsh server lacks CAP_SYS_PTRACE, which the uid drop needs: grant it, or set identities.uid_drop: false in agentsh/isolation.yaml."
        : "";
      throw new Error(
        `Refusing to start: agentsh enforcement is not active.\n${report.problems.map((p) => `  - ${p}`).join("\n")}${ptraceHint}\nFix the cause above, or set ALLOW_DEGRADED=true to serve anyway (not recommended).`,
      );
    }
  } else {
    logger.warn("agentsh server not reachable at boot; commands are refused until it is", {
      url: config.agentsh.serverUrl,
    });
  }
  const watcher = watchAgentsh(server, verify, status, logger, reachableAtBoot);

  const redis = config.redisUrl ? await connectRedis(config.redisUrl) : undefined;
  const app = createApp({
    config,
    executor,
    status,
    redact: createRedactor(bundle.redactionPatterns),
    logger,
    socketAddressOf: (c) => getConnInfo(c).remote.address,
    ...(redis ? { rateLimitStore: redisRateLimitStore(redis) } : {}),
  });
  const httpServer = serve(
    {
      fetch: app.fetch,
      port: config.port,
      hostname: config.host,
      // Slow clients may not hold sockets open: headers within 10 s, the whole body within 30 s
      // (bodies are at most 16 KiB). Responses may take as long as the command.
      serverOptions: { headersTimeout: 10_000, requestTimeout: 30_000 },
    },
    (info) => logStartup(logger, config, bundle, status, agentshBin, info.port),
  );

  const shutdown = (signal: string) => {
    logger.info("shutting down", { signal });
    clearInterval(watcher);
    const deadline = setTimeout(() => process.exit(1), 10_000);
    deadline.unref();
    httpServer.close(() => process.exit(0));
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

/**
 * Finds agentsh-launch next to the agentsh CLI (scripts/install-agentsh installs them together),
 * asks it what the kernel supports, and checks isolation.yaml against this configuration.
 * Without Landlock TCP rules the canaries fail and boot stops, unless ALLOW_DEGRADED is set: the
 * launcher then runs best-effort and /health names the missing layer.
 */
async function setUpLauncher(
  config: Config,
  bundle: PolicyBundle,
  agentshBin: string | undefined,
  logger: Logger,
): Promise<{ launcher: LauncherSettings | undefined; probe: LauncherProbe | null }> {
  const { identities, network } = bundle.isolation;
  if (identities.count < config.limits.maxConcurrent) {
    throw new Error(
      `isolation.yaml: identities.count is ${identities.count}, fewer than MAX_CONCURRENT_COMMANDS=${config.limits.maxConcurrent} (one uid per slot)`,
    );
  }
  const reserved = [config.port, Number(new URL(config.agentsh.serverUrl).port || 80)];
  const conflicts = conflictingBindPorts(network.bind_tcp_ports, reserved);
  if (conflicts.length > 0) {
    throw new Error(
      `isolation.yaml: network.bind_tcp_ports includes the service's own port(s) ${conflicts.join(", ")}`,
    );
  }
  const launcherPath = path.join(
    path.dirname(agentshBin ?? "/usr/local/bin/agentsh"),
    "agentsh-launch",
  );
  let probe: LauncherProbe | null = null;
  try {
    probe = await probeLauncher(launcherPath);
  } catch (error) {
    logger.error("agentsh-launch is missing or does not run", {
      path: launcherPath,
      error: String(error),
    });
    return { launcher: undefined, probe: null };
  }
  logger.info("kernel isolation", {
    launcher: launcherPath,
    landlockAbi: probe.landlockAbi,
    bindPorts: bindPortCount(network.bind_tcp_ports),
  });
  return {
    launcher: { path: launcherPath, isolation: bundle.isolation, bestEffort: config.allowDegraded },
    probe,
  };
}

/** Fails boot when a configured Redis is unreachable, rather than serving without limits. */
async function connectRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    connectTimeout: 5_000,
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new Error(`REDIS_URL is set but Redis is not reachable: ${String(error)}`);
  }
  return redis;
}

/**
 * Polls agentsh. When it comes back after being unreachable (restarted by the boot script's
 * supervisor, which loses its in-memory sessions), sessions are re-created and the canaries run
 * again before commands are accepted.
 */
function watchAgentsh(
  server: AgentshServerApi,
  verify: () => Promise<EnforcementReport>,
  status: ServiceStatus,
  logger: Logger,
  reachableAtBoot: boolean,
): NodeJS.Timeout {
  let wasReachable = reachableAtBoot;
  let verifying = false;
  const timer = setInterval(async () => {
    if (verifying) return;
    const problem = await server.probe();
    const reachable = problem === null;
    if (reachable === wasReachable) return;
    if (!reachable) {
      logger.error("agentsh server lost", { problem });
      // Its sessions are gone and its sandbox unproven until the canaries pass again.
      status.setEnforcement({
        mode: "unverified",
        checks: {},
        problems: ["agentsh server restarted; re-verifying enforcement"],
      });
      wasReachable = false;
      return;
    }
    verifying = true;
    try {
      const report = await verify();
      logger.info("agentsh reachable; enforcement re-verified", {
        mode: report.mode,
        problems: report.problems,
      });
      wasReachable = true;
    } catch (error) {
      logger.error("agentsh reachable but verification failed; will retry", {
        error: String(error),
      });
    } finally {
      verifying = false;
    }
  }, 1_000);
  timer.unref();
  return timer;
}

/** What the bundle and the installation promise, before anything is run. */
async function bundleChecks(
  bundle: PolicyBundle,
  agentshBin: string | undefined,
): Promise<Record<string, boolean>> {
  return {
    "agentsh CLI installed": agentshBin !== undefined,
    "seccomp helper agentsh-unixwrap installed":
      (await locateExecutable("agentsh-unixwrap")) !== undefined,
    "landlock enabled in bundle": bundle.enforcement.landlock,
    "seccomp helper enabled in bundle": bundle.enforcement.seccompHelper,
    "nested execve interception enabled": bundle.enforcement.execveInterception,
    "seccomp file monitor enabled": bundle.enforcement.fileMonitor,
  };
}

async function locateExecutable(name: string): Promise<string | undefined> {
  const candidates = name.includes("/")
    ? [path.resolve(name)]
    : (process.env.PATH ?? "")
        .split(":")
        .filter(Boolean)
        .map((dir) => path.join(dir, name));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

function logStartup(
  logger: Logger,
  config: Config,
  bundle: PolicyBundle,
  status: ServiceStatus,
  agentshBin: string | undefined,
  port: number,
): void {
  logger.info("governed executor listening", {
    url: `http://${config.host}:${port}`,
    agentshServer: config.agentsh.serverUrl,
    agentshCli: agentshBin ?? `${config.agentsh.bin} (NOT FOUND on PATH)`,
    bundle: bundle.dir,
    bundleDigest: bundle.digest,
    policy: bundle.policy.name,
    commandSlots: config.limits.maxConcurrent,
    trustedProxyHops: config.trustedProxyHops,
    rateLimitStore: config.redisUrl ? "redis" : "memory (this instance only)",
  });
  void status.check().then((report) => {
    const { enforcement } = report;
    if (enforcement.mode === "enforced") {
      logger.info("enforcement verified by canary commands", { checks: enforcement.checks });
      return;
    }
    logger.warn(
      config.allowDegraded
        ? "ENFORCEMENT NOT VERIFIED — ALLOW_DEGRADED=true, commands run anyway"
        : "enforcement not verified — commands are refused until it is (see GET /health)",
      { mode: enforcement.mode, problems: enforcement.problems },
    );
  });
  if (!config.apiKey) {
    logger.warn("API_KEY is not set: POST /execute is open to anyone who can reach this port");
  }
}

function stringEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

main().catch((error: unknown) => {
  // Config and bundle errors already name every problem; print them plainly, no stack.
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
