import { createHash } from "node:crypto";
import { z } from "zod";
import { type PolicyServers, parsePolicyServers } from "./tenants/policy-servers.js";

/**
 * Service configuration, parsed once from the environment by the Node entry.
 * `parseConfig` never exits the process: it throws one `ConfigError` naming every bad key.
 */

const intFromEnv = (defaultValue: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).default(defaultValue);

const booleanFromEnv = (defaultValue: boolean) =>
  z
    .enum(["true", "false", "1", "0", "yes", "no"])
    .default(defaultValue ? "true" : "false")
    .transform((value) => value === "true" || value === "1" || value === "yes");

const optionalSecret = (minLength: number) =>
  z
    .string()
    .optional()
    .transform((value) => (value === undefined || value.trim() === "" ? undefined : value))
    .refine((value) => value === undefined || value.length >= minLength, {
      message: `must be at least ${minLength} characters (generate one with: openssl rand -hex 24)`,
    });

/** Keys, comma-separated: each at least 16 characters. */
const keyList = () =>
  z
    .string()
    .optional()
    .transform((value) =>
      (value ?? "")
        .split(",")
        .map((key) => key.trim())
        .filter((key) => key !== ""),
    )
    .refine((keys) => keys.every((key) => key.length >= 16), {
      message: "each key must be at least 16 characters (generate one with: openssl rand -hex 24)",
    });

const envObject = z.object({
  PORT: intFromEnv(10000, 1, 65535),
  HOST: z.string().min(1).default("0.0.0.0"),
  API_KEY: optionalSecret(16),
  /** More keys, comma-separated; each is accepted like API_KEY and owns its own sessions. */
  API_KEYS: keyList(),
  /** Keys of the people who decide approvals (GET/POST /approvals), comma-separated. */
  APPROVER_KEYS: keyList(),
  /** How long a person has to decide an approval, and the agent then to use it. */
  APPROVAL_TTL_MS: intFromEnv(15 * 60 * 1000, 1000, 24 * 60 * 60 * 1000),
  /**
   * HTTPS to a destination no network rule names waits for a person (GET/POST /approvals)
   * instead of being allowed: scripts/boot starts agentsh with policies/network-approvals.yaml.
   * Needs APPROVER_KEYS.
   */
  NETWORK_APPROVALS: booleanFromEnv(false),
  AGENTSH_BIN: z.string().min(1).default("agentsh"),
  AGENTSH_SERVER_URL: z.url({ protocol: /^https?$/ }).default("http://127.0.0.1:18080"),
  /**
   * The agentsh servers of tenants' policies (scripts/boot): `policy=host:port`, comma-separated;
   * the default policy's is AGENTSH_SERVER_URL.
   */
  AGENTSH_POLICY_SERVERS: z
    .string()
    .default("")
    .transform((value, ctx) => {
      try {
        return parsePolicyServers(value);
      } catch (error) {
        ctx.addIssue({ code: "custom", message: (error as Error).message });
        return z.NEVER;
      }
    }),
  /** Credential the service uses towards the agentsh server (auth.type api_key). */
  AGENTSH_API_KEY: optionalSecret(16),
  /** The service's approver credential towards agentsh (role approver; set by scripts/boot). */
  AGENTSH_APPROVER_KEY: optionalSecret(16),
  AGENTSH_BUNDLE_DIR: z.string().min(1).default("agentsh"),
  /** Tenants (src/tenants/); unset: <bundle>/tenants.yaml when it exists. */
  TENANTS_FILE: z
    .string()
    .startsWith("/", "must be an absolute path")
    .optional()
    .or(z.literal("").transform(() => undefined)),
  /** Named pipe carrying agentsh's server output (scripts/boot); relayed as JSON lines. */
  AGENTSH_LOG_PIPE: z
    .string()
    .startsWith("/", "must be an absolute path")
    .optional()
    .or(z.literal("").transform(() => undefined)),
  WORKSPACE: z.string().startsWith("/", "must be an absolute path").default("/workspace"),
  SESSION_PREFIX: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,30}$/, "lowercase letters, digits and '-' only")
    .default("gexec"),
  /** Commands in flight at once; each slot owns one pre-created agentsh session. */
  MAX_CONCURRENT_COMMANDS: intFromEnv(4, 1, 64),
  /** Requests that may wait (FIFO) for a free slot; beyond that the service answers 503 busy. */
  MAX_QUEUED_COMMANDS: intFromEnv(100, 0, 1000),
  /** How long a request may wait for a slot before it is answered 503 busy. */
  QUEUE_WAIT_MS: intFromEnv(30_000, 0, 300_000),
  COMMAND_TIMEOUT_MS: intFromEnv(30_000, 100, 300_000),
  MAX_COMMAND_TIMEOUT_MS: intFromEnv(300_000, 100, 300_000),
  /** Per-stream cap on the output returned to callers. */
  OUTPUT_LIMIT_BYTES: intFromEnv(64 * 1024, 1024, 1024 * 1024),
  MAX_BODY_BYTES: intFromEnv(16 * 1024, 1024, 1024 * 1024),
  RATE_LIMIT_WINDOW_MS: intFromEnv(60_000, 1000, 3_600_000),
  RATE_LIMIT_DEMO: intFromEnv(30, 1, 100_000),
  RATE_LIMIT_EXECUTE: intFromEnv(10, 1, 100_000),
  /** `POST /selftest` runs every canary; a few per window are plenty. */
  RATE_LIMIT_SELFTEST: intFromEnv(6, 1, 100_000),
  /** Re-run the enforcement canaries this often (ms); 0 = only at boot and on POST /selftest. */
  SELFTEST_INTERVAL_MS: z.coerce
    .number()
    .int()
    .refine((v) => v === 0 || (v >= 10_000 && v <= 86_400_000), "must be 0 or 10000-86400000")
    .default(600_000),
  /**
   * Reverse-proxy hops in front of the service that append to X-Forwarded-For.
   * 0 = use the socket address (direct exposure); Render's edge adds exactly one.
   */
  TRUSTED_PROXY_HOPS: intFromEnv(0, 0, 10),
  /** Serve even when the boot self-test found enforcement degraded. Never on by default. */
  ALLOW_DEGRADED: booleanFromEnv(false),
  /**
   * Test profiles only: hold the launcher's Landlock to this ABI, as on an older kernel (CI's
   * Render profile sets 5, the ABI Render's kernel 6.8 reports). Unset: the kernel's own.
   */
  LAUNCHER_MAX_LANDLOCK_ABI: z.coerce
    .number()
    .int()
    .min(1)
    .max(100)
    .optional()
    .or(z.literal("").transform(() => undefined)),
  /** Entries the audit trail keeps (the oldest go first); about 0.5 KB each. */
  AUDIT_MAX_ENTRIES: intFromEnv(1_000_000, 100, 100_000_000),
  /** The embedded audit database (SQLite); default: $AGENTSH_STATE_DIR/audit.db. */
  AUDIT_DB_PATH: z
    .string()
    .startsWith("/", "must be an absolute path")
    .optional()
    .or(z.literal("").transform(() => undefined)),
  /** PostgreSQL for the audit trail, shared by every instance; unset = SQLite in the state dir. */
  DATABASE_URL: z
    .url({ protocol: /^postgres(ql)?$/, error: "must be a postgres:// or postgresql:// URL" })
    .optional()
    .or(z.literal("").transform(() => undefined)),
  /** A token of its own for GET /metrics (Authorization: Bearer), besides the API keys. */
  METRICS_TOKEN: optionalSecret(16),
  /** Age limit of the audit log and of agentsh's event database. */
  AUDIT_RETENTION_HOURS: intFromEnv(168, 1, 87_600),
  /** agentsh's event database (audit.storage.sqlite_path); default: $AGENTSH_STATE_DIR/events.db. */
  AGENTSH_EVENTS_DB: z
    .string()
    .startsWith("/", "must be an absolute path")
    .optional()
    .or(z.literal("").transform(() => undefined)),
  /** Live bytes agentsh's event database may hold before its oldest events are deleted. */
  AGENTSH_EVENTS_MAX_MB: intFromEnv(256, 1, 1_000_000),
  /** How often the retention job runs. */
  RETENTION_INTERVAL_S: intFromEnv(600, 10, 86_400),
  /** Sessions one API key may hold at once. */
  MAX_SESSIONS_PER_KEY: intFromEnv(4, 1, 1000),
  /** Sessions this instance holds at once (each has a workspace directory). */
  MAX_SESSIONS: intFromEnv(32, 1, 10_000),
  /** A session unused this long is ended and its workspace removed. */
  SESSION_IDLE_MS: intFromEnv(600_000, 10_000, 86_400_000),
  /**
   * Names this instance in the session ids it mints (`s-<tag>-…`), so a request that reaches
   * another instance is told so. Default: from Render's RENDER_INSTANCE_ID, else `local`.
   */
  INSTANCE_TAG: z
    .string()
    .regex(/^[a-z0-9]{1,16}$/, "1-16 lowercase letters and digits")
    .optional()
    .or(z.literal("").transform(() => undefined)),
  RENDER_INSTANCE_ID: z.string().optional(),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  /** Shared rate-limit counters for more than one instance; unset = in memory. */
  REDIS_URL: z
    .url({ protocol: /^rediss?$/ })
    .optional()
    .or(z.literal("").transform(() => undefined)),
});

/** Every environment variable the service reads. */
export const CONFIG_KEYS: readonly string[] = Object.keys(envObject.shape);

const envSchema = envObject
  .refine((env) => env.COMMAND_TIMEOUT_MS <= env.MAX_COMMAND_TIMEOUT_MS, {
    path: ["COMMAND_TIMEOUT_MS"],
    message: "must not exceed MAX_COMMAND_TIMEOUT_MS",
  })
  .refine((env) => !env.NETWORK_APPROVALS || env.APPROVER_KEYS.length > 0, {
    path: ["NETWORK_APPROVALS"],
    message: "needs APPROVER_KEYS: held connections wait for a person with an approver key",
  });

type ParsedEnv = z.infer<typeof envSchema>;

export interface Config {
  port: number;
  host: string;
  /** Every accepted API key (API_KEY, then API_KEYS); empty = no key required. */
  apiKeys: string[];
  /** Keys that may decide approvals (APPROVER_KEYS); empty = nobody can approve. */
  approverKeys: string[];
  approvalTtlMs: number;
  /** NETWORK_APPROVALS: agentsh runs policies/network-approvals.yaml as its default. */
  networkApprovals: boolean;
  agentsh: {
    bin: string;
    serverUrl: string;
    /** Tenants' policies with an agentsh server of their own (policy → base URL). */
    policyServers: PolicyServers;
    apiKey: string | undefined;
    /** Answers agentsh's network approvals (GET/POST /api/v1/approvals). */
    approverKey: string | undefined;
    bundleDir: string;
    /** TENANTS_FILE; undefined: <bundleDir>/tenants.yaml if present. */
    tenantsFile: string | undefined;
    /** Where agentsh's output arrives (scripts/boot); unset when agentsh runs elsewhere. */
    logPipe: string | undefined;
    workspace: string;
    sessionPrefix: string;
  };
  limits: {
    maxConcurrent: number;
    maxQueued: number;
    queueWaitMs: number;
    defaultTimeoutMs: number;
    maxTimeoutMs: number;
    outputLimitBytes: number;
    maxBodyBytes: number;
  };
  rateLimits: { windowMs: number; demo: number; execute: number; selftest: number };
  sessions: { maxPerKey: number; max: number; idleMs: number; instanceTag: string };
  /** 0 = the canaries run only at boot, after agentsh restarts and on POST /selftest. */
  selftestIntervalMs: number;
  trustedProxyHops: number;
  allowDegraded: boolean;
  /** LAUNCHER_MAX_LANDLOCK_ABI (a test profile); undefined: the kernel's ABI. */
  launcherMaxAbi: number | undefined;
  logLevel: ParsedEnv["LOG_LEVEL"];
  redisUrl: string | undefined;
  /** Accepted by GET /metrics besides the API keys. */
  metricsToken: string | undefined;
  audit: {
    /** Set: the shared PostgreSQL trail; unset: SQLite at `dbPath` (or in the state dir). */
    databaseUrl: string | undefined;
    dbPath: string | undefined;
    maxEntries: number;
    maxAgeMs: number;
    eventsDb: string | undefined;
    eventsMaxBytes: number;
    retentionIntervalMs: number;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

export function parseConfig(env: Record<string, string | undefined>): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join(".") || "(env)"}: ${issue.message}`),
    );
  }
  const e = parsed.data;
  return {
    port: e.PORT,
    host: e.HOST,
    apiKeys: [...new Set([...(e.API_KEY ? [e.API_KEY] : []), ...e.API_KEYS])],
    approverKeys: [...new Set(e.APPROVER_KEYS)],
    approvalTtlMs: e.APPROVAL_TTL_MS,
    networkApprovals: e.NETWORK_APPROVALS,
    agentsh: {
      bin: e.AGENTSH_BIN,
      serverUrl: e.AGENTSH_SERVER_URL.replace(/\/+$/, ""),
      policyServers: e.AGENTSH_POLICY_SERVERS,
      apiKey: e.AGENTSH_API_KEY,
      approverKey: e.AGENTSH_APPROVER_KEY,
      bundleDir: e.AGENTSH_BUNDLE_DIR,
      tenantsFile: e.TENANTS_FILE,
      logPipe: e.AGENTSH_LOG_PIPE,
      workspace: e.WORKSPACE,
      sessionPrefix: e.SESSION_PREFIX,
    },
    limits: {
      maxConcurrent: e.MAX_CONCURRENT_COMMANDS,
      maxQueued: e.MAX_QUEUED_COMMANDS,
      queueWaitMs: e.QUEUE_WAIT_MS,
      defaultTimeoutMs: e.COMMAND_TIMEOUT_MS,
      maxTimeoutMs: e.MAX_COMMAND_TIMEOUT_MS,
      outputLimitBytes: e.OUTPUT_LIMIT_BYTES,
      maxBodyBytes: e.MAX_BODY_BYTES,
    },
    rateLimits: {
      windowMs: e.RATE_LIMIT_WINDOW_MS,
      demo: e.RATE_LIMIT_DEMO,
      execute: e.RATE_LIMIT_EXECUTE,
      selftest: e.RATE_LIMIT_SELFTEST,
    },
    sessions: {
      maxPerKey: e.MAX_SESSIONS_PER_KEY,
      max: e.MAX_SESSIONS,
      idleMs: e.SESSION_IDLE_MS,
      instanceTag: e.INSTANCE_TAG ?? instanceTagOf(e.RENDER_INSTANCE_ID),
    },
    selftestIntervalMs: e.SELFTEST_INTERVAL_MS,
    trustedProxyHops: e.TRUSTED_PROXY_HOPS,
    allowDegraded: e.ALLOW_DEGRADED,
    launcherMaxAbi: e.LAUNCHER_MAX_LANDLOCK_ABI,
    logLevel: e.LOG_LEVEL,
    redisUrl: e.REDIS_URL,
    metricsToken: e.METRICS_TOKEN,
    audit: {
      databaseUrl: e.DATABASE_URL,
      dbPath: e.AUDIT_DB_PATH,
      maxEntries: e.AUDIT_MAX_ENTRIES,
      maxAgeMs: e.AUDIT_RETENTION_HOURS * 3_600_000,
      eventsDb: e.AGENTSH_EVENTS_DB,
      eventsMaxBytes: e.AGENTSH_EVENTS_MAX_MB * 1024 * 1024,
      retentionIntervalMs: e.RETENTION_INTERVAL_S * 1000,
    },
  };
}

/** A short tag for an instance id given by the host (Render's ids are long); `local` without. */
function instanceTagOf(hostInstanceId: string | undefined): string {
  if (!hostInstanceId) return "local";
  return createHash("sha256").update(hostInstanceId).digest("hex").slice(0, 8);
}
