import { access, constants, readFile } from "node:fs/promises";
import path from "node:path";
import { serve } from "@hono/node-server";
import { getConnInfo } from "@hono/node-server/conninfo";
import { createAgentshExecutor } from "./agentsh/executor.js";
import { createAgentshServerApi } from "./agentsh/server-api.js";
import { SessionPool } from "./agentsh/session-pool.js";
import { createApp } from "./app.js";
import { loadPolicyBundle, type PolicyBundle } from "./bundle/load-bundle.js";
import { createRedactor } from "./bundle/redactor.js";
import { type Config, parseConfig } from "./config.js";
import { createJsonLogger, type Logger } from "./logger.js";
import { createServiceStatus, type EnforcementReport } from "./service-status.js";

/**
 * Node entry: the only place that reads the process environment, listens, and handles signals.
 */
async function main(): Promise<void> {
  const config = parseConfig(process.env);
  const logger = createJsonLogger(config.logLevel);
  const bundle = await loadPolicyBundle(config.agentsh.bundleDir, stringEnv(process.env));
  for (const warning of bundle.warnings) logger.warn("policy bundle", { warning });

  const agentshBin = await locateExecutable(config.agentsh.bin);
  const enforcement = await assessEnforcement(bundle, agentshBin, process.env.ENFORCEMENT_REPORT);
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
  });
  const status = createServiceStatus({
    server,
    serverUrl: config.agentsh.serverUrl,
    enforcement,
    allowDegraded: config.allowDegraded,
    bundle: { digest: bundle.digest, policy: bundle.policy.name },
    pool,
  });
  const app = createApp({
    config,
    executor,
    status,
    redact: createRedactor(bundle.redactionPatterns),
    logger,
    socketAddressOf: (c) => getConnInfo(c).remote.address,
  });

  await prepareSessions(pool.sessionIds, server.ensureSession, logger);
  const httpServer = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, (info) =>
    logStartup(logger, config, bundle, enforcement, agentshBin, info.port),
  );

  const shutdown = (signal: string) => {
    logger.info("shutting down", { signal });
    const deadline = setTimeout(() => process.exit(1), 10_000);
    deadline.unref();
    httpServer.close(() => process.exit(0));
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

async function prepareSessions(
  ids: readonly string[],
  ensure: (id: string) => Promise<void>,
  logger: Logger,
): Promise<void> {
  const results = await Promise.allSettled(ids.map((id) => ensure(id)));
  const failed = results.filter((r) => r.status === "rejected");
  if (failed.length > 0) {
    logger.warn("agentsh sessions not created yet; they are created on first use", {
      failed: failed.length,
      reason: String((failed[0] as PromiseRejectedResult).reason),
    });
  }
}

/** Static checks of what the bundle turns on, plus the boot self-test when it ran. */
async function assessEnforcement(
  bundle: PolicyBundle,
  agentshBin: string | undefined,
  selfTestFile: string | undefined,
): Promise<EnforcementReport> {
  const helper = await locateExecutable("agentsh-unixwrap");
  const checks: Record<string, boolean> = {
    "agentsh CLI installed": agentshBin !== undefined,
    "seccomp helper agentsh-unixwrap installed": helper !== undefined,
    "landlock enabled in bundle": bundle.enforcement.landlock,
    "seccomp helper enabled in bundle": bundle.enforcement.seccompHelper,
    "nested execve interception enabled": bundle.enforcement.execveInterception,
    "seccomp file monitor enabled": bundle.enforcement.fileMonitor,
  };
  let verified = false;
  if (selfTestFile) {
    const report = JSON.parse(await readFile(selfTestFile, "utf8")) as {
      checks?: Record<string, boolean>;
    };
    Object.assign(checks, report.checks ?? {});
    verified = true;
  }
  const problems = Object.entries(checks)
    .filter(([, passed]) => !passed)
    .map(([name]) => `failed: ${name}`);
  return {
    mode: problems.length > 0 ? "degraded" : verified ? "enforced" : "unverified",
    checks,
    problems,
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
  enforcement: EnforcementReport,
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
  });
  if (enforcement.mode !== "enforced") {
    logger.warn(
      config.allowDegraded
        ? "ENFORCEMENT NOT VERIFIED — ALLOW_DEGRADED=true, commands run anyway"
        : "enforcement not verified — commands are refused until it is (see GET /health)",
      { mode: enforcement.mode, problems: enforcement.problems },
    );
  }
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
