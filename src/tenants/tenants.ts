import { createHash, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { customPatternShape } from "../bundle/config-schema.js";
import { type Policy, policySchema } from "../bundle/policy-schema.js";
import {
  compileRedactionPatterns,
  createRedactor,
  type RedactionPattern,
  type Redactor,
} from "../bundle/redactor.js";
import type { TenantLimits } from "../limits/limits.js";

/**
 * Tenants: who an API key is. With a tenants file (agentsh/tenants.yaml, or TENANTS_FILE) every
 * key belongs to one tenant, which has its own agentsh policy, workspace, command-slot share,
 * request rate, session quota and view of the audit trail. Without one, API_KEY / API_KEYS work
 * as they always did (one shared workspace and policy; each key owns its sessions) and no
 * tenant is set on a request.
 *
 * The rest of the service sees only `TenantDirectory.tenantOf(key)` and the `Tenant` it returns.
 */

export interface Tenant {
  name: string;
  /** The agentsh policy of its commands: `<bundle>/policies/<policy>.yaml`. */
  policy: string;
  /** Its plain commands' workspace (sessions keep their own directories). */
  workspaceRoot: string;
  /** At most this many of the service's command slots at once; undefined: no share of its own. */
  slots: number | undefined;
  /** Requests per window on the routes that need a key; undefined: the service's own limits. */
  rateLimits: { windowMs: number; requests: number } | undefined;
  /** Sessions it may hold at once; undefined: MAX_SESSIONS_PER_KEY. */
  sessionQuota: number | undefined;
  /** Sees every tenant's trail, sessions count and metrics (an operator). */
  operator: boolean;
  /** Its own cgroup limits per command (never above the bundle's isolation.yaml limits). */
  limits: TenantLimits | undefined;
  /**
   * Its output's DLP: its own `dlp.custom_patterns` first, then the service's (config.yaml
   * `dlp`); undefined: the service's alone. Applied to its answers, streams and audit entries.
   */
  redact?: Redactor | undefined;
}

/** What owns sessions, scratch dirs and audit entries of a tenant's commands. */
export function tenantOwner(tenant: Pick<Tenant, "name">): string {
  return `tenant-${tenant.name}`;
}

export interface TenantDirectory {
  /** The tenant whose key this is; undefined for an unknown key. Constant time in the key. */
  tenantOf(presentedKey: string): Tenant | undefined;
  list(): readonly Tenant[];
  /**
   * Re-reads the file and the key variables (key rotation). A broken file leaves the current
   * tenants in place and says why.
   */
  reload(): Promise<{ ok: true; tenants: number; keys: number } | { ok: false; error: string }>;
}

const NAME = /^[a-z][a-z0-9-]{0,30}$/;
const SHA256 = /^[0-9a-f]{64}$/;

const keySchema = z.union([
  z.strictObject({
    env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "an environment variable name (A-Z, 0-9, _)"),
  }),
  z.strictObject({
    sha256: z.string().regex(SHA256, '64 lowercase hex digits: printf %s "$KEY" | sha256sum'),
  }),
]);

const tenantSchema = z.strictObject({
  name: z.string().regex(NAME, "lowercase letters, digits and '-', starting with a letter"),
  keys: z.array(keySchema).min(1, "at least one key"),
  policy: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, "a policy name (the file agentsh/policies/<name>.yaml)")
    .default("default"),
  /** Default: <sessions_root>/tenant-<name> (isolation.yaml). */
  workspace: z.string().startsWith("/", "must be an absolute path").optional(),
  /** Command slots it may hold at once (fair share). */
  slots: z.number().int().min(1).max(64).optional(),
  rate_limits: z
    .strictObject({
      window_ms: z.number().int().min(1000).max(3_600_000).default(60_000),
      requests: z.number().int().min(1).max(1_000_000),
    })
    .optional(),
  sessions: z.number().int().min(1).max(1000).optional(),
  /** Per command, lower than isolation.yaml's limits (the lower of the two applies). */
  limits: z
    .strictObject({
      memory_mb: z.number().int().min(16).optional(),
      processes: z.number().int().min(8).optional(),
      cpu_percent: z.number().int().min(1).max(1000).optional(),
    })
    .optional(),
  operator: z.boolean().default(false),
  /** More secrets to redact from its output, in config.yaml's `dlp.custom_patterns` form. */
  dlp: z
    .strictObject({
      custom_patterns: z.array(z.strictObject(customPatternShape)).min(1),
    })
    .optional(),
});

export const tenantsFileSchema = z
  .strictObject({
    version: z.literal(1),
    tenants: z.array(tenantSchema).min(1, "at least one tenant"),
  })
  .superRefine((file, ctx) => {
    const seen = new Set<string>();
    file.tenants.forEach((tenant, i) => {
      if (seen.has(tenant.name)) {
        ctx.addIssue({
          code: "custom",
          path: ["tenants", i, "name"],
          message: `${tenant.name} is named twice`,
        });
      }
      seen.add(tenant.name);
    });
  });

export type TenantsFile = z.infer<typeof tenantsFileSchema>;

export class TenantsError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`Invalid tenants file ${file}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "TenantsError";
  }
}

export interface TenantsContext {
  /** Where `policy: NAME` is looked up (`<dir>/NAME.yaml`). */
  policyDir: string;
  /** isolation.yaml's sessions_root: the default parent of tenants' workspaces. */
  sessionsRoot: string;
  /** Places a tenant's workspace may not be in or contain (shared workspace, state, scratch). */
  reservedPaths: readonly string[];
  /** The process environment, for `env:` keys. */
  env: Record<string, string | undefined>;
  /**
   * Why a tenant may not use this policy here (null: it may), e.g. no agentsh server runs with
   * it (src/tenants/policy-servers.ts). Checked at boot and on every reload.
   */
  policyProblem?: (policy: string) => string | null;
  /** The service's DLP patterns (config.yaml `dlp`): a tenant's own come first, then these. */
  redactionPatterns?: readonly RedactionPattern[];
}

interface Entry {
  tenant: Tenant;
  digests: Buffer[];
}

/** Parses and checks a tenants file's text: throws a TenantsError naming every problem. */
export async function parseTenants(
  file: string,
  text: string,
  context: TenantsContext,
): Promise<Entry[]> {
  const problems: string[] = [];
  let json: unknown;
  try {
    json = parseYaml(text);
  } catch (error) {
    throw new TenantsError(file, [`not YAML: ${(error as Error).message}`]);
  }
  const parsed = tenantsFileSchema.safeParse(json);
  if (!parsed.success) {
    throw new TenantsError(
      file,
      parsed.error.issues.map((issue) => `${issue.path.join(".") || "(file)"}: ${issue.message}`),
    );
  }
  const entries: Entry[] = [];
  const keyOwners = new Map<string, string>();
  const workspaces = new Map<string, string>();
  for (const [i, t] of parsed.data.tenants.entries()) {
    const at = `tenants.${i} (${t.name})`;
    const workspaceRoot = path.resolve(
      t.workspace ?? path.join(context.sessionsRoot, tenantOwner(t)),
    );
    // Under sessions_root, beside the sessions: the bundle's policy and agentsh's Landlock
    // grant that tree, and the launcher narrows it to the one directory each command may use.
    const underSessions = path.relative(context.sessionsRoot, workspaceRoot);
    if (underSessions === "" || underSessions.startsWith("..") || underSessions.includes("/")) {
      problems.push(
        `${at}.workspace: ${workspaceRoot} must be a directory directly under ${context.sessionsRoot} (isolation.yaml sessions_root)`,
      );
    } else if (underSessions.startsWith("s-")) {
      problems.push(`${at}.workspace: names starting with s- are the sessions' own`);
    }
    for (const reserved of context.reservedPaths) {
      if (within(workspaceRoot, reserved) || within(reserved, workspaceRoot)) {
        problems.push(`${at}.workspace: ${workspaceRoot} overlaps ${reserved}`);
      }
    }
    for (const [other, root] of workspaces) {
      if (within(workspaceRoot, root) || within(root, workspaceRoot)) {
        problems.push(`${at}.workspace: ${workspaceRoot} overlaps tenant ${other}'s ${root}`);
      }
    }
    workspaces.set(t.name, workspaceRoot);
    const problem =
      (await checkPolicy(context.policyDir, t.policy)) ?? context.policyProblem?.(t.policy) ?? null;
    if (problem) problems.push(`${at}.policy: ${problem}`);
    const digests: Buffer[] = [];
    for (const [k, key] of t.keys.entries()) {
      let digest: string;
      if ("env" in key) {
        const value = context.env[key.env]?.trim();
        if (!value) {
          problems.push(`${at}.keys.${k}: ${key.env} is not set`);
          continue;
        }
        if (value.length < 16) {
          problems.push(`${at}.keys.${k}: ${key.env} must be at least 16 characters`);
          continue;
        }
        digest = sha256Hex(value);
      } else {
        digest = key.sha256;
      }
      const previous = keyOwners.get(digest);
      if (previous !== undefined) {
        problems.push(`${at}.keys.${k}: the same key already belongs to ${previous}`);
      }
      keyOwners.set(digest, t.name);
      digests.push(Buffer.from(digest, "hex"));
    }
    let redact: Redactor | undefined;
    if (t.dlp) {
      const own = compileRedactionPatterns({ custom_patterns: t.dlp.custom_patterns });
      for (const problem of own.problems) problems.push(`${at}.${problem}`);
      redact = createRedactor([...own.patterns, ...(context.redactionPatterns ?? [])]);
    }
    entries.push({
      tenant: {
        name: t.name,
        policy: t.policy,
        workspaceRoot,
        slots: t.slots,
        rateLimits: t.rate_limits
          ? { windowMs: t.rate_limits.window_ms, requests: t.rate_limits.requests }
          : undefined,
        sessionQuota: t.sessions,
        operator: t.operator,
        limits: t.limits
          ? {
              ...(t.limits.memory_mb !== undefined ? { memoryMb: t.limits.memory_mb } : {}),
              ...(t.limits.processes !== undefined ? { processes: t.limits.processes } : {}),
              ...(t.limits.cpu_percent !== undefined ? { cpuPercent: t.limits.cpu_percent } : {}),
            }
          : undefined,
        redact,
      },
      digests,
    });
  }
  if (problems.length > 0) throw new TenantsError(file, problems);
  return entries;
}

/** Reads the tenants file now; `reload()` reads it again (SIGHUP in the Node entry). */
export async function loadTenantDirectory(
  file: string,
  context: TenantsContext,
): Promise<TenantDirectory> {
  const read = async () => parseTenants(file, await readFile(file, "utf8"), context);
  let entries = await read().catch((error: unknown) => {
    if (error instanceof TenantsError) throw error;
    throw new TenantsError(file, [`cannot read it: ${(error as Error).message}`]);
  });
  return {
    tenantOf(presentedKey) {
      const presented = createHash("sha256").update(presentedKey, "utf8").digest();
      // Every key is compared (no early exit), so the time does not say which one matched.
      let found: Tenant | undefined;
      for (const entry of entries) {
        for (const digest of entry.digests) {
          if (timingSafeEqual(presented, digest)) found = entry.tenant;
        }
      }
      return found;
    },
    list: () => entries.map((entry) => entry.tenant),
    async reload() {
      try {
        entries = await read();
        return {
          ok: true,
          tenants: entries.length,
          keys: entries.reduce((n, entry) => n + entry.digests.length, 0),
        };
      } catch (error) {
        return { ok: false, error: (error as Error).message };
      }
    },
  };
}

/** The named policy exists beside default.yaml and is one agentsh will load (strict schema). */
async function checkPolicy(policyDir: string, name: string): Promise<string | null> {
  const file = path.join(policyDir, `${name}.yaml`);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return `${file} does not exist`;
  }
  try {
    const result = policySchema.safeParse(parseYaml(text));
    if (!result.success) {
      const first = result.error.issues[0];
      return `${file} is not a valid agentsh policy (${first?.path.join(".")}: ${first?.message})`;
    }
  } catch (error) {
    return `${file} is not YAML: ${(error as Error).message}`;
  }
  return null;
}

/** Loads a named policy of the bundle (validated by parseTenants already). */
export async function readTenantPolicy(policyDir: string, name: string): Promise<Policy> {
  return policySchema.parse(
    parseYaml(await readFile(path.join(policyDir, `${name}.yaml`), "utf8")),
  );
}

function within(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

export function sha256Hex(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex");
}
