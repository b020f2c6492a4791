import type { Policy } from "../bundle/policy-schema.js";

/**
 * The policy a tenant's commands meet, as agentsh 0.16.9 applies a session's policy: its own
 * command, file, unix-socket and signal rules (seccomp reads the session's engine), but the
 * server default's network rules (the proxy, DNS and TCP monitors take the server's engine),
 * env policy and resource limits (exec reads the server's engine). `/explain` answers a tenant
 * with this, so it says what would actually happen.
 */
export function effectiveTenantPolicy(tenantPolicy: Policy, serverDefault: Policy): Policy {
  const { network_rules, env_policy, resource_limits } = serverDefault;
  const {
    network_rules: _network,
    env_policy: _env,
    resource_limits: _limits,
    ...own
  } = tenantPolicy;
  return {
    ...own,
    ...(network_rules !== undefined ? { network_rules } : {}),
    ...(env_policy !== undefined ? { env_policy } : {}),
    ...(resource_limits !== undefined ? { resource_limits } : {}),
  };
}
