import { z } from "zod";

/**
 * The policy file as agentsh v0.16.9 reads it (internal/policy/model.go). agentsh decodes it with
 * KnownFields(true), so an unknown key stops its server; these schemas are strict for the same
 * reason. Rule kinds we do not use are accepted as opaque lists.
 */

const decision = z.enum(["allow", "deny", "approve", "redirect", "audit", "soft_delete"]);
const duration = z.union([z.string().regex(/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/), z.number()]);
const ruleBase = {
  name: z.string().min(1),
  description: z.string().optional(),
  decision,
  message: z.string().optional(),
};

export const commandRuleSchema = z.strictObject({
  ...ruleBase,
  commands: z.array(z.string().min(1)).min(1),
  args_patterns: z.array(z.string()).optional(),
  redirect_to: z.unknown().optional(),
  context: z.unknown().optional(),
  env_allow: z.array(z.string()).optional(),
  env_deny: z.array(z.string()).optional(),
  env_max_bytes: z.number().int().optional(),
  env_max_keys: z.number().int().optional(),
  env_block_iteration: z.boolean().optional(),
});

export const fileRuleSchema = z.strictObject({
  ...ruleBase,
  paths: z.array(z.string().min(1)).min(1),
  operations: z.array(z.string().min(1)).optional(),
  timeout: duration.optional(),
  redirect_to: z.string().optional(),
  preserve_tree: z.boolean().optional(),
});

export const networkRuleSchema = z.strictObject({
  ...ruleBase,
  domains: z.array(z.string().min(1)).optional(),
  ports: z.array(z.number().int().min(1).max(65535)).optional(),
  cidrs: z.array(z.cidrv4().or(z.cidrv6())).optional(),
  timeout: duration.optional(),
});

export const resourceLimitsSchema = z.strictObject({
  max_memory_mb: z.number().int().nonnegative().optional(),
  memory_swap_max_mb: z.number().int().nonnegative().optional(),
  cpu_quota_percent: z.number().int().nonnegative().optional(),
  disk_read_bps_max: z.number().int().nonnegative().optional(),
  disk_write_bps_max: z.number().int().nonnegative().optional(),
  net_bandwidth_mbps: z.number().int().nonnegative().optional(),
  pids_max: z.number().int().nonnegative().optional(),
  command_timeout: duration.optional(),
  session_timeout: duration.optional(),
  idle_timeout: duration.optional(),
});

export const envPolicySchema = z.strictObject({
  allow: z.array(z.string()).optional(),
  deny: z.array(z.string()).optional(),
  max_bytes: z.number().int().nonnegative().optional(),
  max_keys: z.number().int().nonnegative().optional(),
  block_iteration: z.boolean().optional(),
});

const opaqueList = z.array(z.unknown()).optional();

export const policySchema = z.strictObject({
  version: z.number().int().positive(),
  name: z.string().min(1),
  description: z.string().optional(),
  file_rules: z.array(fileRuleSchema).optional(),
  network_rules: z.array(networkRuleSchema).optional(),
  command_rules: z.array(commandRuleSchema).optional(),
  unix_socket_rules: opaqueList,
  registry_rules: opaqueList,
  signal_rules: opaqueList,
  dns_redirects: opaqueList,
  connect_redirects: opaqueList,
  resource_limits: resourceLimitsSchema.optional(),
  env_policy: envPolicySchema.optional(),
  audit: z.unknown().optional(),
  env_inject: z.record(z.string(), z.string()).optional(),
  mcp_rules: z.unknown().optional(),
  process_contexts: z.unknown().optional(),
  process_identities: z.unknown().optional(),
  package_rules: opaqueList,
  transparent_commands: z.unknown().optional(),
});

export type Policy = z.infer<typeof policySchema>;
