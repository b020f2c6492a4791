import { parse as parseYaml } from "yaml";
import { tenantsFileSchema } from "./tenants.js";

/**
 * agentsh 0.16.9 judges a session's nested execs, files, unix sockets and signals with the
 * session's policy, but its network rules (the per-session proxy, DNS and TCP monitors), the
 * env_policy, the command limits and the top-level command check with the policy its SERVER
 * started with. So each policy tenants use besides the server default runs on an agentsh server
 * of its own (scripts/boot starts one per policy; docs/tenants.md), and a tenant's commands go
 * to its policy's server.
 */

/** Policy name → that policy's agentsh server (base URL); the default's is not listed. */
export type PolicyServers = Readonly<Record<string, string>>;

/**
 * The policies a tenants file names besides `defaultPolicy`, each once, in the file's order
 * (scripts/boot gives them ports in this order). Throws when the file is not a tenants file.
 */
export function tenantPolicies(text: string, defaultPolicy: string): string[] {
  const parsed = tenantsFileSchema.safeParse(parseYaml(text));
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new Error(`not a valid tenants file (${first?.path.join(".")}: ${first?.message})`);
  }
  const names = parsed.data.tenants.map((tenant) => tenant.policy);
  return [...new Set(names)].filter((name) => name !== defaultPolicy);
}

/**
 * AGENTSH_POLICY_SERVERS as scripts/boot exports it: `policy=host:port`, comma-separated
 * (empty: none). Throws on a malformed entry.
 */
export function parsePolicyServers(value: string): PolicyServers {
  const servers: Record<string, string> = {};
  for (const entry of value.split(",").map((e) => e.trim())) {
    if (entry === "") continue;
    const match = /^([A-Za-z0-9_-]+)=([^=\s/]+:\d{1,5})$/.exec(entry);
    if (!match?.[1] || !match[2]) {
      throw new Error(`"${entry}" is not policy=host:port`);
    }
    if (match[1] in servers) throw new Error(`policy ${match[1]} is listed twice`);
    servers[match[1]] = `http://${match[2]}`;
  }
  return servers;
}

/**
 * Why a tenant may not use `policy` (null: it may): the server default, or a policy with a
 * server of its own running. A policy named first in a reloaded file has none (they start at
 * boot): the service has to restart for it.
 */
export function policyServerProblem(
  policy: string,
  defaultPolicy: string,
  servers: PolicyServers,
): string | null {
  if (policy === defaultPolicy || policy in servers) return null;
  const running = Object.keys(servers);
  return `${policy} has no agentsh server of its own (agentsh applies network rules, env_policy and limits from its server's policy; scripts/boot starts one per policy the tenants file names at boot${running.length > 0 ? `, now: ${running.join(", ")}` : ""}): restart the service to use it`;
}
