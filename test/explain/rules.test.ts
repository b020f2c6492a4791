import { describe, expect, it } from "vitest";
import type { Policy } from "../../src/bundle/policy-schema.js";
import { compileGlob } from "../../src/explain/glob.js";
import {
  createPolicyMatcher,
  expandPolicyVars,
  type NetworkQuery,
} from "../../src/explain/rules.js";
import { POLICY } from "../support/test-app.js";

describe("gobwas-style globs", () => {
  it("* stays within a separator, ** crosses it", () => {
    expect(compileGlob("/workspace/*", "/").test("/workspace/a")).toBe(true);
    expect(compileGlob("/workspace/*", "/").test("/workspace/a/b")).toBe(false);
    expect(compileGlob("/workspace/**", "/").test("/workspace/a/b")).toBe(true);
    expect(compileGlob("/workspace/**", "/").test("/workspace")).toBe(false);
  });

  it("classes, alternatives, ? and escapes", () => {
    expect(compileGlob("/dev/sd[a-c]", "/").test("/dev/sdb")).toBe(true);
    expect(compileGlob("/dev/sd[!a-c]", "/").test("/dev/sdb")).toBe(false);
    expect(compileGlob("{a,b}.txt").test("b.txt")).toBe(true);
    expect(compileGlob("file?", "/").test("file/")).toBe(false);
    expect(compileGlob("a\\*b").test("a*b")).toBe(true);
    expect(compileGlob("a\\*b").test("axb")).toBe(false);
  });

  it("domain globs: * is one label, ** any number", () => {
    expect(compileGlob("*.evil.com", ".").test("a.evil.com")).toBe(true);
    expect(compileGlob("*.evil.com", ".").test("a.b.evil.com")).toBe(false);
    expect(compileGlob("**.evil.com", ".").test("a.b.evil.com")).toBe(true);
    expect(compileGlob("*", ".").test("localhost")).toBe(true);
    expect(compileGlob("*", ".").test("example.com")).toBe(false);
  });
});

describe("policy matcher (agentsh 0.16.9 semantics, the bundle's policy)", () => {
  const m = createPolicyMatcher(POLICY, {});
  const net = (query: NetworkQuery) => {
    const hit = m.network(query);
    return "rule" in hit ? hit : { rule: null, undecided: hit.undecided };
  };

  it("commands: basename, case-insensitive, first match wins, default-deny-execve", () => {
    expect(m.command("/usr/bin/sudo").rule).toBe("deny-privilege-escalation");
    expect(m.command("/usr/bin/SUDO").rule).toBe("deny-privilege-escalation");
    expect(m.command("/usr/bin/python3.11").rule).toBe("allow-dev-tools");
    expect(m.command("/usr/sbin/mkfs.ext4")).toMatchObject({
      rule: "deny-system-admin",
      effect: "deny",
    });
    expect(m.command("/usr/bin/cat")).toMatchObject({ rule: "allow-safe-tools", effect: "allow" });
    expect(m.command("/usr/local/bin/agentsh")).toMatchObject({
      rule: "default-deny-execve",
      effect: "deny",
    });
  });

  it("commands: a rule with / is a full path (glob with / as separator)", () => {
    expect(m.command("/workspace/node_modules/.bin/tsc").rule).toBe("allow-workspace-executables");
    // A denied basename still wins: deny rules come first.
    expect(m.command("/workspace/bin/sudo").rule).toBe("deny-privilege-escalation");
    const exact: Policy = {
      version: 1,
      name: "t",
      command_rules: [{ name: "only-bin-bash", commands: ["/bin/bash"], decision: "allow" }],
    };
    const e = createPolicyMatcher(exact);
    expect(e.command("/bin/bash").rule).toBe("only-bin-bash");
    expect(e.command("/usr/bin/bash").rule).toBe("default-deny-execve");
  });

  it("files: per operation, ** globs, audit is allow, defaults by operation", () => {
    expect(m.file("/etc/shadow", "open")).toMatchObject({
      rule: "deny-sensitive-files",
      effect: "deny",
    });
    expect(m.file("/etc/passwd", "open")).toMatchObject({
      rule: "default-allow-reads",
      effect: "allow",
    });
    expect(m.file("/etc/passwd", "write")).toMatchObject({
      rule: "deny-system-write",
      effect: "deny",
    });
    expect(m.file("/workspace/a/b.txt", "create").rule).toBe("allow-workspace");
    expect(m.file("/dev/null", "write")).toMatchObject({
      rule: "allow-dev-streams",
      decision: "audit",
      effect: "allow",
    });
    expect(m.file("/srv-other/x", "write")).toMatchObject({
      rule: "default-deny-files",
      effect: "deny",
    });
  });

  it("files: policy variables with fallbacks expand from the server's environment", () => {
    expect(m.file("/var/lib/governed-executor/api-keys.yaml", "open").rule).toBe(
      "deny-agentsh-state",
    );
    const custom = createPolicyMatcher(POLICY, { AGENTSH_STATE_DIR: "/srv/state" });
    expect(custom.file("/srv/state/x", "open").rule).toBe("deny-agentsh-state");
    // biome-ignore lint/suspicious/noTemplateCurlyInString: agentsh syntax, not a template
    expect(expandPolicyVars("${A:-x}/${B}", { B: "b" })).toBe("x/b");
  });

  it("network: every selector present must match; cidrs need addresses; default deny", () => {
    expect(net({ host: "169.254.169.254", port: 80, addresses: null }).rule).toBe(
      "deny-cloud-metadata",
    );
    expect(net({ host: "metadata.google.internal", port: 80, addresses: null })).toMatchObject({
      rule: "deny-cloud-metadata",
    });
    expect(net({ host: "127.0.0.1", port: 18080, addresses: null })).toMatchObject({
      rule: "deny-agentsh-api",
    });
    expect(net({ host: "127.0.0.1", port: 3000, addresses: null })).toMatchObject({
      rule: "allow-loopback-dev-servers",
      effect: "allow",
    });
    expect(net({ host: "127.0.0.1", port: 22, addresses: null }).rule).toBe(
      "deny-privileged-loopback",
    );
    expect(net({ host: "127.0.0.1", port: 43210, addresses: null }).rule).toBe(
      "deny-ephemeral-loopback",
    );
    expect(net({ host: "127.0.0.1", port: 61000, addresses: null }).rule).toBe(
      "allow-loopback-dev-servers",
    );
    expect(net({ host: "::1", port: 9090, addresses: null }).rule).toBe("deny-agentsh-api");
    // A name: CIDR rules match by its addresses (resolved as agentsh resolves them).
    expect(net({ host: "sneaky.example", port: 443, addresses: ["10.1.2.3"] }).rule).toBe(
      "deny-private-networks",
    );
    expect(net({ host: "registry.npmjs.org", port: 443, addresses: ["203.0.113.5"] }).rule).toBe(
      "allow-package-registries",
    );
    expect(net({ host: "example.com", port: 80, addresses: ["203.0.113.5"] }).rule).toBe(
      "default-deny-network",
    );
    expect(net({ host: "example.com", port: 443, addresses: null })).toHaveProperty("undecided");
  });
});

describe("approval-class rules (args_patterns on the argv)", () => {
  const m = createPolicyMatcher(POLICY, {});
  it("git push is the approval rule's deny; other git commands stay allowed", () => {
    expect(m.command("/usr/bin/git", ["git", "push", "origin", "main"])).toMatchObject({
      rule: "approval-git-push",
      decision: "deny",
    });
    expect(m.command("/usr/bin/git", ["git", "-C", "/w", "push"]).rule).toBe("approval-git-push");
    expect(m.command("/usr/bin/git", ["git", "status"]).rule).toBe("allow-dev-tools");
    expect(m.command("/usr/bin/git", ["git", "commit", "-m", "push"]).rule).toBe("allow-dev-tools");
    // Without the argv (a dynamic word), the argument rule is left to agentsh at run time.
    expect(m.command("/usr/bin/git").rule).toBe("allow-dev-tools");
    expect(m.command("/usr/bin/npm", ["npm", "publish"]).rule).toBe("approval-npm-publish");
  });
});
