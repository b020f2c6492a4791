import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BundleError, expandEnv, loadPolicyBundle } from "../../src/bundle/load-bundle.js";

const BUNDLE = path.resolve("agentsh");
const varsFor = (dir: string) => ({
  AGENTSH_BUNDLE_DIR: dir,
  AGENTSH_STATE_DIR: "/var/lib/governed-executor",
  AGENTSH_BIN_DIR: "/usr/local/bin",
  // The default server's (scripts/boot sets it for a tenant policy's own server only).
  AGENTSH_POLICY_NAME: "",
});

const copies: string[] = [];
afterEach(async () => {
  await Promise.all(copies.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A scratch copy of the real bundle with one file edited. */
async function bundleWith(file: string, edit: (text: string) => string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "bundle-"));
  copies.push(dir);
  await cp(BUNDLE, dir, { recursive: true });
  const target = path.join(dir, file);
  await writeFile(target, edit(await readFile(target, "utf8")));
  return dir;
}

async function problemsOf(dir: string): Promise<string[]> {
  try {
    await loadPolicyBundle(dir, varsFor(dir));
  } catch (error) {
    expect(error).toBeInstanceOf(BundleError);
    return (error as BundleError).problems;
  }
  throw new Error("expected the bundle to be rejected");
}

describe("the policy bundle in agentsh/", () => {
  it("loads cleanly, with every enforcement layer switched on and no ignored keys", async () => {
    const bundle = await loadPolicyBundle(BUNDLE, varsFor(BUNDLE));
    expect(bundle.warnings).toEqual([]);
    expect(bundle.enforcement).toEqual({
      landlock: true,
      seccompHelper: true,
      execveInterception: true,
      fileMonitor: true,
      ptrace: false,
    });
    expect(bundle.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(bundle.files).toEqual(
      expect.arrayContaining([
        "config.yaml",
        "policies/default.yaml",
        "bash_startup.sh",
        "VERSION",
      ]),
    );
    expect(bundle.config.server?.http?.addr).toBe("127.0.0.1:18080");
  });

  it("loopback: the service's ports and privileged ports denied by name, then every other port allowed", async () => {
    const { policy, config } = await loadPolicyBundle(BUNDLE, varsFor(BUNDLE));
    const rules = policy.network_rules ?? [];
    const loopback = rules.filter((r) => r.cidrs?.includes("127.0.0.0/8"));
    expect(loopback.map((r) => [r.name, r.decision])).toEqual([
      ["deny-agentsh-api", "deny"],
      ["deny-service-ports", "deny"],
      ["deny-privileged-loopback", "deny"],
      ["deny-ephemeral-loopback", "deny"],
      ["allow-loopback-dev-servers", "allow"],
    ]);
    const agentshPort = Number(config.server?.http?.addr?.split(":").pop());
    const deniedPorts = loopback.slice(0, 2).flatMap((r) => r.ports ?? []);
    // agentsh HTTP + gRPC, the app's default PORT, pprof, Redis.
    for (const port of [agentshPort, 9090, 10000, 6060, 6379]) expect(deniedPorts).toContain(port);
    expect(loopback[2]?.ports).toEqual(Array.from({ length: 1023 }, (_, i) => 1 + i));
    // The kernel's ephemeral range, where agentsh's per-session proxies listen.
    expect(loopback[3]?.ports).toEqual(Array.from({ length: 61000 - 32768 }, (_, i) => 32768 + i));
    expect(loopback[4]?.ports).toBeUndefined(); // every other port
    // The curl configuration that makes plain http:// carry its real port is in the bundle.
    expect(config.sandbox?.env_inject?.CURL_HOME).toBe(path.join(BUNDLE, "curl"));
    expect(await readFile(path.join(BUNDLE, "curl/.curlrc"), "utf8")).toMatch(/^proxytunnel$/m);
  });

  it("denies what the seed promises, by named rules", async () => {
    const { policy } = await loadPolicyBundle(BUNDLE, varsFor(BUNDLE));
    const denied = (rules: Array<{ decision: string; commands?: string[] }> | undefined) =>
      (rules ?? []).filter((r) => r.decision === "deny").flatMap((r) => r.commands ?? []);
    const deniedCommands = denied(policy.command_rules);
    for (const command of [
      "sudo",
      "su",
      "ssh",
      "scp",
      "nc",
      "nmap",
      "mount",
      "kill",
      "pkill",
      "shutdown",
    ]) {
      expect(deniedCommands).toContain(command);
    }
    const cidrs = (policy.network_rules ?? [])
      .filter((r) => r.decision === "deny")
      .flatMap((r) => r.cidrs ?? []);
    for (const cidr of ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]) {
      expect(cidrs).toContain(cidr);
    }
    const limits = policy.resource_limits;
    // Only what agentsh enforces (the service enforces the rest: isolation.yaml limits).
    expect(limits).toEqual({ command_timeout: "5m", session_timeout: "1h", idle_timeout: "15m" });
  });

  it("changes its digest when any file changes", async () => {
    const original = await loadPolicyBundle(BUNDLE, varsFor(BUNDLE));
    const dir = await bundleWith("bash_startup.sh", (text) => `${text}\n# edited\n`);
    expect((await loadPolicyBundle(dir, varsFor(dir))).digest).not.toBe(original.digest);
  });
});

describe("a broken bundle stops boot with file, path and problem", () => {
  it("rejects an unknown policy key, as agentsh does", async () => {
    const dir = await bundleWith("policies/default.yaml", (t) => `${t}\nsurprise_key: true\n`);
    expect(await problemsOf(dir)).toEqual([
      expect.stringMatching(/^policies\/default\.yaml: .*surprise_key/),
    ]);
  });

  it("rejects an unknown key inside a command rule (agentsh would silently accept it)", async () => {
    const dir = await bundleWith("policies/default.yaml", (t) =>
      t.replace(
        "decision: deny\n    message: Privilege escalation",
        "decision: deny\n    mesage: typo\n    message: Privilege escalation",
      ),
    );
    expect((await problemsOf(dir)).join("\n")).toMatch(
      /policies\/default\.yaml: command_rules\.1: .*mesage/,
    );
  });

  it("rejects a DLP pattern that could match across a line break (streams are redacted per line)", async () => {
    const dir = await bundleWith("config.yaml", (t) =>
      t.replace("regex: '\\beyJ[A-Za-z0-9_-]{8,}", "regex: 'token\\s*=\\s*\\beyJ[A-Za-z0-9_-]{8,}"),
    );
    expect((await problemsOf(dir)).join("\n")).toMatch(/jwt\): may match across a line break/);
  });

  it("refuses agentsh's gRPC listener (its approval RPCs have no role check)", async () => {
    const dir = await bundleWith("config.yaml", (t) =>
      t.replace("grpc:\n    enabled: false", "grpc:\n    enabled: true"),
    );
    expect((await problemsOf(dir)).join("\n")).toMatch(/server\.grpc\.enabled: must stay false/);
  });

  it("rejects a misspelled decision", async () => {
    const dir = await bundleWith("policies/default.yaml", (t) =>
      t.replace("decision: deny", "decision: denied"),
    );
    expect((await problemsOf(dir)).join("\n")).toMatch(/command_rules\.1\.decision/);
  });

  it("reads isolation.yaml: the launcher's ports, UDP and identities", async () => {
    const bundle = await loadPolicyBundle(BUNDLE, varsFor(BUNDLE));
    expect(bundle.isolation.network.udp).toBe(false);
    // Any port (the kernel's rules): a Landlock rule per port costs every command start.
    expect(bundle.isolation.network.bind_tcp_ports).toBe("any");
    expect(bundle.isolation.identities.first_uid).toBeGreaterThanOrEqual(1000);
  });

  it.each([
    [
      "an unknown key",
      (t: string) => t.replace("udp: false", "udp: false\n  upd: true"),
      /network: .*upd/,
    ],
    [
      "a reversed port range",
      (t: string) => t.replace("bind_tcp_ports: any", 'bind_tcp_ports: [0, "65535-1024"]'),
      /bad port range/,
    ],
    ["a root uid range", (t: string) => t.replace("first_uid: 47001", "first_uid: 0"), /first_uid/],
    [
      "an empty bind list (say any, or list ports)",
      (t: string) => t.replace("bind_tcp_ports: any", "bind_tcp_ports: []"),
      /bind_tcp_ports/,
    ],
  ])("rejects an isolation.yaml with %s", async (_what, edit, problem) => {
    const dir = await bundleWith("isolation.yaml", edit);
    expect((await problemsOf(dir)).join("\n")).toMatch(problem);
  });

  it("rejects invalid YAML", async () => {
    const dir = await bundleWith("config.yaml", (t) => `${t}\n  bad: [unclosed\n`);
    expect((await problemsOf(dir))[0]).toMatch(/^config\.yaml: /);
  });

  it("rejects a missing policy file", async () => {
    const dir = await bundleWith("config.yaml", (t) =>
      t.replace("default: default", "default: nowhere"),
    );
    expect(await problemsOf(dir)).toEqual([
      expect.stringMatching(/^policies\/nowhere\.yaml: cannot be read/),
    ]);
  });

  it("rejects a DLP pattern that does not compile", async () => {
    const dir = await bundleWith("config.yaml", (t) =>
      t.replace("regex: 'sk-ant-", "regex: '(sk-ant-"),
    );
    expect((await problemsOf(dir)).join("\n")).toMatch(
      /config\.yaml: dlp\.custom_patterns\[1\] \(anthropic_api_key\)/,
    );
  });

  it("rejects a BASH_ENV that points at a file missing from the bundle", async () => {
    const dir = await bundleWith("config.yaml", (t) =>
      t.replace("bash_startup.sh\n", "missing.sh\n"),
    );
    expect((await problemsOf(dir)).join("\n")).toMatch(
      /sandbox\.env_inject\.BASH_ENV .*missing\.sh/,
    );
  });

  it("warns about keys agentsh ignores, such as a landlock block under sandbox", async () => {
    const dir = await bundleWith("config.yaml", (t) =>
      t.replace("sandbox:\n", "sandbox:\n  landlock:\n    enabled: true\n  allow_degraded: true\n"),
    );
    const bundle = await loadPolicyBundle(dir, varsFor(dir));
    expect(bundle.warnings).toEqual([
      expect.stringContaining("'sandbox.landlock' has no effect"),
      expect.stringContaining("'sandbox.allow_degraded' has no effect"),
    ]);
  });
});

describe("expandEnv (agentsh expands config.yaml like Go's os.ExpandEnv)", () => {
  it("expands $VAR and the braced form; unset names become empty and are reported", () => {
    const unset: string[] = [];
    const text = ["a=$", "{A} b=$B c=$", "{C}"].join("");
    expect(expandEnv(text, { A: "1", B: "2" }, (n) => unset.push(n))).toBe("a=1 b=2 c=");
    expect(unset).toEqual(["C"]);
  });
});
