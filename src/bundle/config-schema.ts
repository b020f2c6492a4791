import { z } from "zod";

/**
 * The parts of agentsh v0.16.9's config.yaml (internal/config) this service depends on. agentsh
 * parses the config non-strictly and silently drops unknown keys, so the loader reports keys
 * agentsh ignores (see IGNORED_CONFIG_KEYS) instead of failing on them.
 */

const enabledFlag = z.object({ enabled: z.boolean().optional() });

/** One `dlp.custom_patterns` entry (also a tenant's own, src/tenants/tenants.ts). */
export const customPatternShape = {
  name: z.string().min(1),
  display: z.string().optional(),
  regex: z.string().min(1),
};

export const agentshConfigSchema = z.object({
  server: z
    .object({
      http: z
        .object({ addr: z.string().optional(), write_timeout: z.string().optional() })
        .optional(),
      // agentsh's gRPC API checks only that a key is valid, not its role: an agent key could
      // resolve approvals there (ResolveApproval). It stays off (its default).
      grpc: z
        .object({
          enabled: z
            .boolean()
            .optional()
            .refine((enabled) => enabled !== true, {
              message: "must stay false: agentsh's gRPC approval RPCs have no role check",
            }),
        })
        .optional(),
    })
    .optional(),
  auth: z
    .object({
      type: z.enum(["none", "api_key", "oidc", "hybrid"]).optional(),
      api_key: z
        .object({ keys_file: z.string().optional(), header_name: z.string().optional() })
        .optional(),
    })
    .optional(),
  policies: z.object({ dir: z.string().optional(), default: z.string().optional() }).optional(),
  // Network approvals (src/approvals/network-approvals.ts) are answered through agentsh's HTTP
  // approvals API with the service's approver key: mode api. agentsh's other modes prompt on the
  // server's /dev/tty (none in a container: every request denied) or are not wired in 0.16.9.
  approvals: z
    .object({
      enabled: z.boolean().optional(),
      mode: z.string().optional(),
      timeout: z.string().optional(),
    })
    .refine((a) => a.enabled !== true || a.mode === "api", {
      message:
        "mode must be api when approvals are enabled (the service answers through agentsh's API)",
    })
    .optional(),
  landlock: z
    .object({
      enabled: z.boolean().optional(),
      allow_execute: z.array(z.string()).optional(),
      allow_read: z.array(z.string()).optional(),
      allow_write: z.array(z.string()).optional(),
      deny_paths: z.array(z.string()).optional(),
    })
    .optional(),
  sandbox: z
    .object({
      unix_sockets: enabledFlag.optional(),
      ptrace: enabledFlag.optional(),
      cgroups: enabledFlag.optional(),
      fuse: enabledFlag.optional(),
      seccomp: z
        .object({
          enabled: z.boolean().optional(),
          execve: enabledFlag.optional(),
          file_monitor: enabledFlag.optional(),
        })
        .optional(),
      env_inject: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
  dlp: z
    .object({
      mode: z.string().optional(),
      patterns: z
        .object({
          email: z.boolean().optional(),
          phone: z.boolean().optional(),
          credit_card: z.boolean().optional(),
          ssn: z.boolean().optional(),
          api_keys: z.boolean().optional(),
        })
        .optional(),
      custom_patterns: z.array(z.object(customPatternShape)).optional(),
    })
    .optional(),
});

export type AgentshConfig = z.infer<typeof agentshConfigSchema>;

/** Top-level keys agentsh reads (internal/config/config.go `Config`). */
export const KNOWN_CONFIG_KEYS = new Set([
  "platform",
  "server",
  "auth",
  "logging",
  "audit",
  "sessions",
  "sandbox",
  "policies",
  "mount_profiles",
  "approvals",
  "metrics",
  "health",
  "development",
  "proxy",
  "dlp",
  "llm_storage",
  "security",
  "landlock",
  "capabilities",
  "threat_feeds",
  "package_checks",
]);

/** Keys agentsh parses but never applies, or that look right and are silently dropped. */
export const IGNORED_CONFIG_KEYS: Record<string, string> = {
  "sandbox.landlock": "Landlock is the top-level `landlock:` key; this block is ignored",
  "sandbox.limits": "not read; resource limits live in the policy's resource_limits",
  "sandbox.enabled": "not read",
  "sandbox.allow_degraded": "not read",
  "sandbox.network.intercept_mode": "validated but unused on Linux",
  "policies.default_policy": "not read; the key is policies.default",
  "development.verbose_errors": "not read",
  logging: "parsed but not applied",
  "sandbox.ptrace.on_attach_failure": "never read: a failed ptrace probe stops the server",
};
