import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type { InstallationReport } from "../../src/agentsh/installation-report.js";
import { isolationLayers } from "../../src/agentsh/launcher.js";
import { CANARIES } from "../../src/agentsh/self-test.js";
import { type AppDeps, createApp } from "../../src/app.js";
import { policySchema } from "../../src/bundle/policy-schema.js";
import { createRedactor } from "../../src/bundle/redactor.js";
import { parseConfig } from "../../src/config.js";
import { createHealthCheck } from "../../src/enforcement/health.js";
import { createEnforcementMonitor, type EnforcementState } from "../../src/enforcement/monitor.js";
import { createProtectionReport } from "../../src/enforcement/protections.js";
import { createExplainer } from "../../src/explain/explain.js";
import { createPolicyMatcher } from "../../src/explain/rules.js";
import type { Logger } from "../../src/logger.js";
import { createSessionRegistry, envPolicyDenies } from "../../src/sessions/session-registry.js";
import { FakeExecutor } from "./fake-executor.js";

export interface TestAppOptions {
  env?: Record<string, string>;
  executor?: FakeExecutor;
  /** null = agentsh answers its health probe. */
  agentshProblem?: string | null;
  /** The canaries' verdict at boot (default: every check passed). */
  enforcement?: EnforcementState;
  /** Set: a canary round fails with this error (agentsh cannot run them). */
  canaryError?: string;
  socketAddress?: string;
  redact?: AppDeps["redact"];
  installation?: InstallationReport;
  rateLimitStore?: AppDeps["rateLimitStore"];
  audit?: AppDeps["audit"];
  /** The sessions' clock (default: Date.now). */
  now?: () => number;
  /** What explain's DNS lookups answer (default: no name has an address). */
  hosts?: Record<string, string[]>;
  /** A tenants file's directory (src/tenants/). */
  tenants?: AppDeps["tenants"];
  explainFor?: AppDeps["explainFor"];
  /** NETWORK_APPROVALS: agentsh's approvals API (faked). */
  agentshApprovals?: AppDeps["agentshApprovals"];
}

/** The bundle's real policy (agentsh/policies/default.yaml), for explain. */
export const POLICY = policySchema.parse(
  parseYaml(readFileSync(new URL("../../agentsh/policies/default.yaml", import.meta.url), "utf8")),
);

/** Programs as explain finds them on PATH; python3 is a symlink, as on Debian. */
export const testProgramResolver = (name: string): string | null =>
  name === "missing-tool" ? null : name === "python3" ? "/usr/bin/python3.11" : `/usr/bin/${name}`;

/** What the service's boot-time run of `agentsh --version` / `agentsh detect` might report. */
export const INSTALLATION: InstallationReport = {
  collectedAt: "2026-01-01T00:00:00.000Z",
  entries: [
    ["agentsh --version", "agentsh 0.16.9\n", ""],
    ["agentsh detect", "", "Protection Score: 85/100\n\nFILE PROTECTION   25/25\n"],
  ].map(([command = "", stdout = "", stderr = ""]) => ({
    command,
    ranBy: "service" as const,
    result: {
      success: true,
      stdout,
      stderr,
      completed: true,
      exitCode: 0,
      blocked: false,
      outcome: "ok" as const,
      decision: null,
      durationMs: 5,
    },
  })),
};

export const ENFORCED: EnforcementState = {
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
  const probe = async () => options.agentshProblem ?? null;
  const verdict = options.enforcement ?? ENFORCED;
  const monitor = createEnforcementMonitor({
    probe,
    // The canaries' verdict as given; the real canaries run in the e2e suite.
    prove: async () => {
      if (options.canaryError !== undefined) throw new Error(options.canaryError);
      return { checks: verdict.checks, problems: verdict.problems };
    },
    staticChecks: {},
    allowDegraded: config.allowDegraded,
    logger,
    initial: verdict,
  });
  const health = createHealthCheck({
    monitor,
    probe,
    agentshUrl: config.agentsh.serverUrl,
    allowDegraded: config.allowDegraded,
    bundle: { digest: "sha256:test", policy: "test-policy" },
    isolation: {
      landlockAbi: 7,
      layers: isolationLayers(
        {
          landlockAbi: 7,
          kernelLandlockAbi: 7,
          landlockFs: true,
          landlockNet: true,
          ioctlDev: true,
          signalScope: true,
        },
        { enabled: true, reason: null },
      ),
      udp: false,
      bindTcpPorts: ["any"],
      servicePorts: { "10000": { ipv4: "app", ipv6: "held" } },
      privilegedPortsBelow: 1024,
      limits: { memory: "384 MiB per command: cgroup v1 (test)" },
    },
    commandStats: () => ({ slots: config.limits.maxConcurrent, inFlight: 0, queued: 0 }),
  });
  const sessions = createSessionRegistry({
    executor,
    root: "/workspace/sessions",
    instanceTag: config.sessions.instanceTag,
    maxPerKey: config.sessions.maxPerKey,
    max: config.sessions.max,
    idleMs: config.sessions.idleMs,
    envDenied: envPolicyDenies(POLICY.env_policy?.deny ?? []),
    logger,
    // Directories are the process boundary here: nothing is created on disk.
    workspaces: { create: async () => {}, remove: async () => {} },
    ...(options.now ? { now: options.now } : {}),
  });
  const app = createApp({
    config,
    sessions,
    executor,
    enforcement: monitor,
    health,
    installation: options.installation ?? INSTALLATION,
    redact: options.redact ?? createRedactor([]),
    logger,
    socketAddressOf: () => options.socketAddress ?? "192.0.2.10",
    ...(options.rateLimitStore ? { rateLimitStore: options.rateLimitStore } : {}),
    ...(options.audit ? { audit: options.audit } : {}),
    ...(options.tenants ? { tenants: options.tenants } : {}),
    ...(options.explainFor ? { explainFor: options.explainFor } : {}),
    ...(options.agentshApprovals ? { agentshApprovals: options.agentshApprovals } : {}),
    protections: createProtectionReport({
      canaries: CANARIES,
      staticChecks: { "seccomp helper enabled in bundle": true },
      lastProof: monitor.lastProof,
    }),
    explain: createExplainer({
      matcher: createPolicyMatcher(POLICY, {}),
      workspace: "/workspace",
      wrapper: "agentsh-launch",
      resolveProgram: testProgramResolver,
      resolveHost: async (host) => options.hosts?.[host] ?? [],
    }),
  });
  return { app, executor, logLines, config, monitor, sessions };
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
