import type { PolicyBundle } from "./bundle/load-bundle.js";
import type { Config } from "./config.js";
import type { EnforcementState } from "./enforcement/monitor.js";
import type { Logger } from "./logger.js";

/** The lines an operator reads first: where it listens, what it enforces, what is missing. */
export function logStartup(options: {
  logger: Logger;
  config: Config;
  bundle: PolicyBundle;
  agentshBin: string | undefined;
  port: number;
  enforcement: EnforcementState;
}): void {
  const { logger, config, bundle, enforcement } = options;
  logger.info("governed executor listening", {
    url: `http://${config.host}:${options.port}`,
    agentshServer: config.agentsh.serverUrl,
    agentshCli: options.agentshBin ?? `${config.agentsh.bin} (NOT FOUND on PATH)`,
    bundle: bundle.dir,
    bundleDigest: bundle.digest,
    policy: bundle.policy.name,
    commandSlots: config.limits.maxConcurrent,
    trustedProxyHops: config.trustedProxyHops,
    apiKeys: config.apiKeys.length,
    sessions: `up to ${config.sessions.max} (${config.sessions.maxPerKey} per key), idle expiry ${config.sessions.idleMs / 1000} s, instance tag ${config.sessions.instanceTag}`,
    rateLimitStore: config.redisUrl ? "redis" : "memory (this instance only)",
  });
  if (enforcement.mode === "enforced") {
    logger.info("enforcement verified by canary commands", { checks: enforcement.checks });
  } else {
    logger.warn(
      config.allowDegraded
        ? "ENFORCEMENT NOT VERIFIED — ALLOW_DEGRADED=true, commands run anyway"
        : "enforcement not verified — commands are refused until it is (see GET /health)",
      { mode: enforcement.mode, problems: enforcement.problems },
    );
  }
  if (config.apiKeys.length === 0) {
    logger.warn(
      "API_KEY is not set: POST /execute and /sessions are open to anyone who can reach this port",
    );
  }
}
