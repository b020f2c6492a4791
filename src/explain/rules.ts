import { BlockList, isIP } from "node:net";
import path from "node:path";
import type { Policy } from "../bundle/policy-schema.js";
import { compileGlob } from "./glob.js";

/**
 * The rule matching of agentsh v0.16.9 (internal/policy/engine.go), over the policy the service
 * loaded at boot: every list in file order, first match wins, agentsh's default rule names when
 * nothing matches. `audit` is enforced as allow.
 */

/** What a rule does to the operation: `allow` also for `audit`; the rest need a person or more. */
export type Effect = "allow" | "deny" | "approve" | "redirect" | "soft_delete";

export interface RuleHit {
  rule: string;
  /** As written in the policy (`audit` stays `audit`); defaults say `allow` / `deny`. */
  decision: string;
  effect: Effect;
  message?: string;
}

export interface NetworkQuery {
  host: string;
  port: number;
  /** The host's addresses when it is a name and was resolved; null = not resolved. */
  addresses: string[] | null;
}

export type NetworkHit = RuleHit | { undecided: string };

export interface PolicyMatcher {
  /** An execve inside the command (bash runs it): by basename, or by full path for `/` rules. */
  command(executable: string, argv?: readonly string[]): RuleHit;
  /** One file operation (agentsh's names: open, stat, write, create, delete, mkdir, ...). */
  file(filePath: string, operation: string): RuleHit;
  network(query: NetworkQuery): NetworkHit;
}

/** agentsh's `${VAR}` / `${VAR:-fallback}` in file paths and domains, from the server's env. */
export function expandPolicyVars(text: string, vars: Record<string, string>): string {
  return text.replace(
    /\$\{([a-zA-Z_][a-zA-Z0-9_]*)(?::-([^}]*))?\}/g,
    (_m, name: string, fallback?: string) => {
      const value = vars[name];
      return value !== undefined && value !== "" ? value : (fallback ?? "");
    },
  );
}

const READ_OPERATIONS = new Set(["open", "read", "stat", "list", "readlink", "access"]);

const effectOf = (decision: string): Effect =>
  decision === "audit" ? "allow" : (decision as Effect);

const hit = (rule: { name: string; decision: string; message?: string | undefined }): RuleHit => ({
  rule: rule.name,
  decision: rule.decision,
  effect: effectOf(rule.decision),
  ...(rule.message ? { message: rule.message } : {}),
});

export function createPolicyMatcher(
  policy: Policy,
  vars: Record<string, string> = {},
): PolicyMatcher {
  const commandRules = (policy.command_rules ?? []).map((rule) => {
    const basenames = new Set<string>();
    const fullPaths = new Set<string>();
    const globs: Array<{ re: RegExp; path: boolean }> = [];
    for (const raw of rule.commands) {
      const c = raw.trim();
      const isGlob = /[*?[]/.test(c);
      if (c.includes("/")) {
        if (isGlob) globs.push({ re: compileGlob(c, "/"), path: true });
        else fullPaths.add(c.toLowerCase());
      } else if (isGlob) globs.push({ re: compileGlob(c), path: false });
      else basenames.add(c.toLowerCase());
    }
    // agentsh's regexes (Go RE2) on the argv joined by spaces; the bundle's are also valid JS.
    const args = (rule.args_patterns ?? []).map((pattern) => new RegExp(pattern));
    return { rule, basenames, fullPaths, globs, args };
  });

  const fileRules = (policy.file_rules ?? []).map((rule) => ({
    rule,
    ops: new Set((rule.operations ?? []).map((op) => op.toLowerCase())),
    globs: rule.paths.map((p) => compileGlob(expandPolicyVars(p, vars), "/")),
  }));

  const networkRules = (policy.network_rules ?? []).map((rule) => {
    let cidrs: BlockList | null = null;
    if (rule.cidrs) {
      cidrs = new BlockList();
      for (const cidr of rule.cidrs) {
        const [address = "", prefix = ""] = cidr.split("/");
        const family = isIP(address) === 6 ? "ipv6" : "ipv4";
        cidrs.addSubnet(address, Number(prefix), family);
      }
    }
    return {
      rule,
      ports: rule.ports ? new Set(rule.ports) : null,
      domains: rule.domains?.map((d) => compileGlob(expandPolicyVars(d, vars).toLowerCase(), ".")),
      cidrs,
    };
  });

  return {
    command(executable, argv) {
      const lower = executable.toLowerCase();
      const base = path.posix.basename(executable);
      const baseLower = base.toLowerCase();
      for (const r of commandRules) {
        const matched =
          r.fullPaths.has(lower) ||
          r.globs.some((g) =>
            g.path
              ? g.re.test(lower) || g.re.test(executable)
              : g.re.test(baseLower) || g.re.test(base),
          ) ||
          r.basenames.has(baseLower);
        // A rule with args_patterns applies when one matches the argv (as agentsh's nested
        // check joins it); without an argv it is skipped, as agentsh skips it on no match.
        if (!matched) continue;
        if (r.args.length === 0) return hit(r.rule);
        const joined = argv?.join(" ");
        if (joined !== undefined && r.args.some((re) => re.test(joined))) return hit(r.rule);
      }
      return { rule: "default-deny-execve", decision: "deny", effect: "deny" };
    },

    file(filePath, operation) {
      const op = operation.toLowerCase();
      for (const r of fileRules) {
        if (r.ops.size > 0 && !r.ops.has("*") && !r.ops.has(op)) continue;
        if (r.globs.some((g) => g.test(filePath))) return hit(r.rule);
      }
      return READ_OPERATIONS.has(op)
        ? { rule: "default-allow-reads", decision: "allow", effect: "allow" }
        : { rule: "default-deny-files", decision: "deny", effect: "deny" };
    },

    network({ host, port, addresses }) {
      const domain = host.toLowerCase();
      const literal = isIP(domain) !== 0;
      const ips = literal ? [domain] : addresses;
      for (const r of networkRules) {
        if (r.ports && !r.ports.has(port)) continue;
        if (r.domains && !r.domains.some((g) => g.test(domain))) continue;
        if (r.cidrs) {
          if (ips === null) {
            return {
              undecided: `rule ${r.rule.name} matches by address and ${host} was not resolved; agentsh resolves it when the command connects`,
            };
          }
          const list = r.cidrs;
          if (!ips.some((ip) => list.check(ip, isIP(ip) === 6 ? "ipv6" : "ipv4"))) continue;
        }
        return hit(r.rule);
      }
      return { rule: "default-deny-network", decision: "deny", effect: "deny" };
    },
  };
}
