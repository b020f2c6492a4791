import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { getConnInfo } from "@hono/node-server/conninfo";
import { collectDefaultMetrics } from "prom-client";
import { createAgentsh } from "./agentsh/index.js";
import {
  hasCapSysPtrace,
  isolationLayers,
  launcherBootHint,
  prepareLauncher,
  processesSharedBetweenKeys,
  slotUid,
} from "./agentsh/launcher.js";
import { locateExecutable } from "./agentsh/locate.js";
import { killProcessesOfUid } from "./agentsh/process-reaper.js";
import { CANARIES, launcherCanaries } from "./agentsh/self-test.js";
import { relayAgentshLog } from "./agentsh/server-log.js";
import { createApp } from "./app.js";
import { combinedApprovalsApi, createAgentshApprovalsApi } from "./approvals/network-approvals.js";
import {
  NETWORK_APPROVALS_POLICY,
  networkApprovalsPolicyName,
} from "./approvals/policy-variants.js";
import { startServiceAudit } from "./audit/service-audit.js";
import { staticEnforcementChecks } from "./bundle/checks.js";
import type { BindPorts } from "./bundle/isolation-schema.js";
import { loadPolicyBundle } from "./bundle/load-bundle.js";
import { createRedactor } from "./bundle/redactor.js";
import { parseConfig } from "./config.js";
import { createHealthCheck } from "./enforcement/health.js";
import { holdServicePorts } from "./enforcement/held-ports.js";
import { createEnforcementMonitor } from "./enforcement/monitor.js";
import { createProtectionReport } from "./enforcement/protections.js";
import { createExplainer } from "./explain/explain.js";
import { hostResolver, programResolver } from "./explain/resolve.js";
import { createPolicyMatcher } from "./explain/rules.js";
import { connectRedis, redisRateLimitStore } from "./http/redis-rate-limit-store.js";
import { detectCgroups } from "./limits/cgroups.js";
import { createLimits } from "./limits/limits.js";
import { listen } from "./listen.js";
import { createJsonLogger } from "./logger.js";
import { createServiceMetrics } from "./metrics/service-metrics.js";
import { createSessionRegistry, envPolicyDenies } from "./sessions/session-registry.js";
import { logStartup } from "./startup-log.js";
import { effectiveTenantPolicy } from "./tenants/explain.js";
import { policyServerProblem } from "./tenants/policy-servers.js";
import {
  loadTenantDirectory,
  readTenantPolicy,
  type Tenant,
  type TenantDirectory,
} from "./tenants/tenants.js";
import { prepareTenantWorkspaces } from "./tenants/workspaces.js";

/**
 * Node entry: the only place that reads the process environment; it wires the parts, proves
 * enforcement (the monitor refuses to start without it), listens, and handles signals.
 */
async function main(): Promise<void> {
  const config = parseConfig(process.env);
  const logger = createJsonLogger(config.logLevel);
  // Every line on stdout is JSON (docs/logging.md): Node's warnings (printed by default, off
  // with --no-warnings in scripts/boot), crashes and agentsh's output go through the logger.
  process.on("warning", (warning) =>
    logger.warn("node warning", { name: warning.name, warning: warning.message }),
  );
  process.on("uncaughtException", (error) => {
    logger.error("uncaught exception; exiting", { error: String(error), stack: error.stack });
    process.exit(1);
  });
  const stopRelay = config.agentsh.logPipe
    ? relayAgentshLog(
        config.agentsh.logPipe,
        createJsonLogger(config.logLevel, undefined, "agentsh"),
        logger,
      )
    : () => {};
  const agentshBin = await locateExecutable(config.agentsh.bin);
  // The values agentsh will expand in config.yaml; scripts/boot exports the same defaults.
  const policyVars = {
    AGENTSH_BUNDLE_DIR: path.resolve(config.agentsh.bundleDir),
    AGENTSH_STATE_DIR: "/var/lib/governed-executor",
    AGENTSH_BIN_DIR: path.dirname(agentshBin ?? "/usr/local/bin/agentsh"),
    // Set only for a tenant policy's own server (scripts/boot): the default server's is empty.
    AGENTSH_POLICY_NAME: "",
    ...stringEnv(process.env),
  };
  const bundle = await loadPolicyBundle(config.agentsh.bundleDir, policyVars);
  for (const warning of bundle.warnings) logger.warn("policy bundle", { warning });

  const { isolation } = bundle;
  const stateDir = process.env.AGENTSH_STATE_DIR ?? "/var/lib/governed-executor";
  // The policy the default agentsh server runs (config.yaml policies.default); tenants on
  // another one need its own server (scripts/boot starts them: AGENTSH_POLICY_SERVERS).
  const defaultPolicy = path.basename(bundle.policyFile).replace(/\.ya?ml$/, "");
  const { policyServers } = config.agentsh;
  const tenants = await loadTenants(config, bundle, stateDir, (policy) =>
    policyServerProblem(policy, defaultPolicy, policyServers),
  );
  if (tenants) {
    const gid = process.getuid?.() === 0 ? isolation.identities.gid : undefined;
    await prepareTenantWorkspaces(tenants.list(), gid);
    logger.info("tenants", {
      tenants: tenants
        .list()
        .map((t) => ({ name: t.name, policy: t.policy, operator: t.operator })),
      policyServers,
    });
    // Key rotation: edit the file (or the key variables of a restarted process) and send
    // SIGHUP. A broken file keeps the tenants in force and says why; so does a policy without
    // an agentsh server of its own (those start at boot only).
    process.on("SIGHUP", () => {
      void tenants.reload().then(async (result) => {
        if (!result.ok) {
          logger.error("tenants not reloaded", { error: result.error });
          return;
        }
        await prepareTenantWorkspaces(tenants.list(), gid);
        logger.info("tenants reloaded", { tenants: result.tenants, keys: result.keys });
      });
    });
  }
  // The app, agentsh's HTTP API, agentsh's gRPC, pprof and Redis defaults (as in the policy's
  // deny-agentsh-api and deny-service-ports): never a command's to listen on.
  const agentshPorts = [config.agentsh.serverUrl, ...Object.values(policyServers)].map((url) =>
    Number(new URL(url).port || 80),
  );
  const servicePorts = [config.port, ...agentshPorts, 9090, 6060, 6379];
  const {
    launcher,
    probe,
    uidDrop,
    stop: stopLauncher,
  } = await prepareLauncher({
    isolation,
    landlock: bundle.config.landlock ?? {},
    workspace: config.agentsh.workspace,
    maxAbi: config.launcherMaxAbi,
    servicePid: process.pid,
    slots: config.limits.maxConcurrent,
    servicePorts,
    agentshBin: agentshBin ?? "/usr/local/bin/agentsh",
    bestEffort: config.allowDegraded,
    capSysPtrace: await hasCapSysPtrace(),
    // The ruleset server needs root to run under its own uid (as in scripts/boot).
    // Beside the state dir, not in it: the server runs as another uid than the state dir's owner.
    rulesetDir: process.getuid?.() === 0 ? `${stateDir}.launcher` : undefined,
    logger,
  });
  // Commands may bind any unprivileged port: the service's own are held (EADDRINUSE).
  const heldPorts = launcher
    ? await holdServicePorts(servicePorts, { port: config.port, host: config.host }, logger)
    : null;
  const canaries = [
    ...CANARIES,
    ...launcherCanaries({
      loopbackPort: config.port,
      servicePid: process.pid,
      firstUid: isolation.identities.first_uid,
      uidCount: config.limits.maxConcurrent,
      udpAllowed: isolation.network.udp,
      uidDrop: uidDrop.enabled,
      limits: isolation.limits,
    }),
  ];
  // Per-command resource limits: a cgroup per command where this host lets the service make one.
  const cgroups = launcher
    ? await detectCgroups({
        name: `gexec-${createHash("sha256").update(stateDir).digest("hex").slice(0, 8)}`,
        v1Root: process.env.GEXEC_CGROUP_V1_ROOT || undefined,
      })
    : { unavailable: "no launcher" };
  const limits = createLimits({
    limits: isolation.limits,
    cgroups: "driver" in cgroups ? cgroups.driver : null,
    ...("unavailable" in cgroups ? { cgroupsUnavailable: cgroups.unavailable } : {}),
    uidDrop: uidDrop.enabled,
  });
  logger.info("resource limits", limits.report);
  const agentsh = createAgentsh({
    bin: agentshBin ?? config.agentsh.bin,
    serverUrl: config.agentsh.serverUrl,
    policyServers,
    defaultPolicy,
    apiKey: config.agentsh.apiKey,
    workspace: config.agentsh.workspace,
    outputLimitBytes: config.limits.outputLimitBytes,
    sessionPrefix: config.agentsh.sessionPrefix,
    networkApprovals: config.networkApprovals,
    slots: config.limits.maxConcurrent,
    maxQueued: config.limits.maxQueued,
    queueWaitMs: config.limits.queueWaitMs,
    ...(launcher ? { launcher, limits } : {}),
    // Where concurrent commands could reach each other's processes (all uid 0, no Landlock
    // signal scope: Render), commands of different API keys never run at once.
    oneKeyAtATime: processesSharedBetweenKeys(probe, uidDrop),
    // The CLI runs under its own unprivileged uid where the service can give it one (root).
    ...(process.getuid?.() === 0 ? { cliUid: isolation.identities.client_uid } : {}),
    canaries,
  });
  const staticChecks = {
    ...staticEnforcementChecks(bundle, {
      agentsh: agentshBin !== undefined,
      unixwrap: (await locateExecutable("agentsh-unixwrap")) !== undefined,
    }),
    "launcher agentsh-launch installed": probe !== null,
    "Landlock TCP rules available (ABI >= 4)": probe?.landlockNet === true,
  };
  const monitor = createEnforcementMonitor({
    probe: agentsh.probe,
    prove: agentsh.prove,
    staticChecks,
    reverifyMs: config.selftestIntervalMs,
    allowDegraded: config.allowDegraded,
    logger,
    bootHint: launcherBootHint,
  });
  const stopWatching = await monitor.start();
  const health = createHealthCheck({
    monitor,
    probe: agentsh.probeDefault,
    agentshUrl: config.agentsh.serverUrl,
    policyServers: agentsh.policyServers,
    allowDegraded: config.allowDegraded,
    bundle: { digest: bundle.digest, policy: bundle.policy.name },
    isolation: {
      landlockAbi: probe?.landlockAbi ?? null,
      layers: isolationLayers(probe, uidDrop),
      udp: isolation.network.udp,
      bindTcpPorts: bindPortsReport((launcher?.isolation ?? isolation).network.bind_tcp_ports),
      servicePorts: heldPorts?.report ?? {},
      privilegedPortsBelow: await unprivilegedPortStart(),
      limits: limits.report,
    },
    commandStats: agentsh.stats,
  });

  const audit = await startServiceAudit({
    config: config.audit,
    logger,
    stateDir,
    idle: () => agentsh.stats().inFlight === 0,
    // scripts/boot: AGENTSH_DATA_DIR of each tenant policy's server.
    moreEventsDbs: Object.keys(policyServers).map((policy) =>
      path.join(stateDir, `policy-${policy}`, "events.db"),
    ),
  });
  const redis = config.redisUrl ? await connectRedis(config.redisUrl) : undefined;
  // Run once by the service itself (never by a governed command), served by /demo/status.
  const defaultEnvDenied = envPolicyDenies(bundle.policy.env_policy?.deny ?? []);
  const envDeniedBy = new Map<string, (name: string) => boolean>();
  for (const policy of Object.keys(policyServers)) {
    const own = await readTenantPolicy(path.dirname(bundle.policyFile), policy);
    envDeniedBy.set(policy, envPolicyDenies(own.env_policy?.deny ?? []));
  }
  const sessions = createSessionRegistry({
    executor: agentsh.executor,
    root: isolation.filesystem.sessions_root,
    ...(launcher ? { scratchRoot: isolation.identities.scratch_root, isolated: true } : {}),
    instanceTag: config.sessions.instanceTag,
    maxPerKey: config.sessions.maxPerKey,
    max: config.sessions.max,
    idleMs: config.sessions.idleMs,
    // What a session carries to its next command passes its own policy's env_policy (agentsh
    // 0.16.9 applies none to streamed commands, so this filter is what holds there).
    envDenied: (name, policy) =>
      (policy !== undefined ? envDeniedBy.get(policy) : undefined)?.(name) ??
      defaultEnvDenied(name),
    logger,
    // Where commands drop to per-slot uids, each session gets a uid of its own: the identities
    // after the command slots.
    ...(launcher?.uidDrop
      ? {
          identities: {
            indices: Array.from(
              { length: isolation.identities.count - config.limits.maxConcurrent },
              (_, i) => config.limits.maxConcurrent + i,
            ),
            uidOf: (index: number) => slotUid(isolation, index),
            gid: isolation.identities.gid,
            endProcesses: async (index: number) => {
              await killProcessesOfUid(slotUid(isolation, index));
            },
          },
        }
      : {}),
  });
  const protections = createProtectionReport({
    canaries,
    staticChecks,
    lastProof: monitor.lastProof,
  });
  const metrics = createServiceMetrics({
    commandStats: agentsh.stats,
    enforcement: monitor.state,
    protections,
    sessions: () => sessions.size,
    auditPending: audit.store.pending,
  });
  collectDefaultMetrics({ register: metrics.registry, prefix: "gexec_" });
  // NETWORK_APPROVALS: agentsh runs policies/network-approvals.yaml as its default (scripts/boot),
  // and the service answers what its proxy holds with the approver key scripts/boot wrote.
  if (config.networkApprovals && !config.agentsh.approverKey) {
    throw new Error(
      "NETWORK_APPROVALS=true needs AGENTSH_APPROVER_KEY, agentsh's approver credential (scripts/boot writes and sets it)",
    );
  }
  const serverPolicy = config.networkApprovals
    ? await readTenantPolicy(path.dirname(bundle.policyFile), NETWORK_APPROVALS_POLICY)
    : bundle.policy;
  const app = createApp({
    config,
    sessions,
    ...(tenants ? { tenants } : {}),
    executor: agentsh.executor,
    enforcement: monitor,
    health,
    installation: await agentsh.installationReport(),
    redact: createRedactor(bundle.redactionPatterns),
    logger,
    socketAddressOf: (c) => getConnInfo(c).remote.address,
    ...(redis ? { rateLimitStore: redisRateLimitStore(redis) } : {}),
    audit: audit.store,
    metrics,
    protections,
    ...(config.networkApprovals && config.agentsh.approverKey
      ? {
          // Every agentsh server holds the connections of its own sessions: the default one and
          // each tenant policy's (which runs that policy's network-approvals variant).
          agentshApprovals: combinedApprovalsApi(
            [config.agentsh.serverUrl, ...Object.values(policyServers)].map((serverUrl) =>
              createAgentshApprovalsApi({
                serverUrl,
                approverKey: config.agentsh.approverKey ?? "",
              }),
            ),
          ),
        }
      : {}),
    explain: createExplainer({
      matcher: createPolicyMatcher(serverPolicy, policyVars),
      workspace: config.agentsh.workspace,
      wrapper: launcher ? "agentsh-launch" : "/bin/bash",
      // Commands get the agentsh server's PATH, which scripts/boot gives it from ours.
      resolveProgram: programResolver(process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin"),
      resolveHost: hostResolver(),
      // agentsh's own engine answers the same lookups; the response lists any difference.
      policyTest: agentsh.policyTest,
    }),
    ...(tenants
      ? {
          // A tenant's policy as agentsh applies it: whole on its policy's own server (whose
          // policy-test API cross-checks it), else merged with the server default's
          // (effectiveTenantPolicy).
          explainFor: cachedBy(
            (tenant: Tenant) => `${tenant.policy}\0${tenant.workspaceRoot}`,
            async (tenant: Tenant) => {
              // With network approvals its server runs the policy's network-approvals variant.
              const own = await readTenantPolicy(
                path.dirname(bundle.policyFile),
                config.networkApprovals ? networkApprovalsPolicyName(tenant.policy) : tenant.policy,
              );
              const policyTest = agentsh.policyTestFor(tenant.policy);
              return createExplainer({
                matcher: createPolicyMatcher(
                  policyTest ? own : effectiveTenantPolicy(own, serverPolicy),
                  policyVars,
                ),
                workspace: tenant.workspaceRoot,
                wrapper: launcher ? "agentsh-launch" : "/bin/bash",
                resolveProgram: programResolver(process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin"),
                resolveHost: hostResolver(),
                ...(policyTest ? { policyTest } : {}),
              });
            },
          ),
        }
      : {}),
  });
  const server = listen(app, { port: config.port, hostname: config.host }, (port) =>
    logStartup({ logger, config, bundle, agentshBin, port, enforcement: monitor.state() }),
  );

  const shutdown = (signal: string) => {
    logger.info("shutting down", { signal });
    stopWatching();
    stopLauncher();
    stopRelay();
    heldPorts?.close();
    const deadline = setTimeout(() => process.exit(1), 10_000);
    deadline.unref();
    // Sessions end with the process: their workspaces and agentsh sessions are removed. The
    // audit store closes last: answers still in flight wait for their entries.
    void sessions
      .close()
      .finally(() => server.close(() => void audit.stop().finally(() => process.exit(0))));
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

/** The tenants file (TENANTS_FILE, else <bundle>/tenants.yaml when present); undefined: none. */
async function loadTenants(
  config: ReturnType<typeof parseConfig>,
  bundle: Awaited<ReturnType<typeof loadPolicyBundle>>,
  stateDir: string,
  policyProblem: (policy: string) => string | null,
): Promise<TenantDirectory | undefined> {
  const inBundle = path.join(bundle.dir, "tenants.yaml");
  const file = config.agentsh.tenantsFile ?? (existsSync(inBundle) ? inBundle : undefined);
  if (file === undefined) return undefined;
  return loadTenantDirectory(file, {
    policyDir: path.dirname(bundle.policyFile),
    sessionsRoot: bundle.isolation.filesystem.sessions_root,
    reservedPaths: [config.agentsh.workspace, bundle.isolation.identities.scratch_root, stateDir],
    env: process.env,
    policyProblem,
    redactionPatterns: bundle.redactionPatterns,
  });
}

/** Memoises an async factory by key (a failed build is retried next time). */
function cachedBy<T, R>(key: (input: T) => string, build: (input: T) => Promise<R>) {
  const cache = new Map<string, Promise<R>>();
  return (input: T): Promise<R> => {
    const k = key(input);
    let found = cache.get(k);
    if (!found) {
      found = build(input);
      found.catch(() => cache.delete(k));
      cache.set(k, found);
    }
    return found;
  };
}

/** What commands may bind, as /health says it: "any" or the Landlock ranges. */
function bindPortsReport(ports: BindPorts): string[] {
  if (ports === "any") return ["any"];
  return ports.map((r) => (r.lo === r.hi ? `${r.lo}` : `${r.lo}-${r.hi}`));
}

/** Ports below this need CAP_NET_BIND_SERVICE, which commands never have (the kernel's sysctl). */
async function unprivilegedPortStart(): Promise<number | null> {
  const text = await readFile("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8").catch(
    () => null,
  );
  return text === null ? null : Number(text.trim());
}

function stringEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

main().catch((error: unknown) => {
  // Config and bundle errors already name every problem: their message, no stack.
  createJsonLogger("error").error("the service could not start", {
    error: error instanceof Error ? error.message : String(error),
  });
  process.exit(1);
});
