import { isolationLayers } from "../../src/agentsh/launcher.js";
import { SessionPool } from "../../src/agentsh/session-pool.js";
import { type AppDeps, createApp } from "../../src/app.js";
import { createRedactor } from "../../src/bundle/redactor.js";
import { parseConfig } from "../../src/config.js";
import type { Logger } from "../../src/logger.js";
import { createServiceStatus, type EnforcementReport } from "../../src/service-status.js";
import { FakeExecutor } from "./fake-executor.js";

export interface TestAppOptions {
  env?: Record<string, string>;
  executor?: FakeExecutor;
  /** null = agentsh answers its health probe. */
  agentshProblem?: string | null;
  enforcement?: EnforcementReport;
  socketAddress?: string;
  redact?: AppDeps["redact"];
  rateLimitStore?: AppDeps["rateLimitStore"];
}

export const ENFORCED: EnforcementReport = {
  mode: "enforced",
  checks: { "canary: sudo denied": true },
  problems: [],
};

/** The real app with fakes only at the process boundary (agentsh) and a capturing logger. */
export function buildTestApp(options: TestAppOptions = {}) {
  const config = parseConfig(options.env ?? {});
  const executor = options.executor ?? new FakeExecutor();
  const logLines: string[] = [];
  const capture = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    logLines.push(JSON.stringify({ level, message, ...fields }));
  };
  const logger: Logger = {
    debug: capture("debug"),
    info: capture("info"),
    warn: capture("warn"),
    error: capture("error"),
  };
  const pool = new SessionPool("test", config.limits.maxConcurrent, config.limits.maxQueued);
  const status = createServiceStatus({
    server: {
      probe: async () => options.agentshProblem ?? null,
      ensureSession: async () => {},
      recordedDenials: async () => [],
    },
    serverUrl: config.agentsh.serverUrl,
    enforcement: options.enforcement ?? ENFORCED,
    allowDegraded: config.allowDegraded,
    bundle: { digest: "sha256:test", policy: "test-policy" },
    isolation: {
      landlockAbi: 7,
      layers: isolationLayers({ landlockAbi: 7, landlockNet: true, signalScope: true }, true),
      udp: false,
      bindTcpPorts: ["8000-8099"],
    },
    pool,
  });
  const app = createApp({
    config,
    executor,
    status,
    redact: options.redact ?? createRedactor([]),
    logger,
    socketAddressOf: () => options.socketAddress ?? "192.0.2.10",
    ...(options.rateLimitStore ? { rateLimitStore: options.rateLimitStore } : {}),
  });
  return { app, executor, logLines, config };
}

export function postJson(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
}

/** Response bodies are asserted field by field, so they are read untyped. */
// biome-ignore lint/suspicious/noExplicitAny: see above
export const readJson = (res: Response): Promise<any> => res.json();
