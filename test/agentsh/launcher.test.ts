import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  hasCapSysPtrace,
  isolationLayers,
  LAUNCHER_EXIT_REFUSED,
  launcherArgv,
  launcherFsRules,
  launcherRefusal,
  processesSharedBetweenKeys,
  resolveUidDrop,
  scratchName,
} from "../../src/agentsh/launcher.js";
import { withoutPorts } from "../../src/bundle/isolation-schema.js";
import { loadPolicyBundle } from "../../src/bundle/load-bundle.js";

const BUNDLE = path.resolve("agentsh");

async function settings(bestEffort = false) {
  const bundle = await loadPolicyBundle(BUNDLE, {
    AGENTSH_BUNDLE_DIR: BUNDLE,
    AGENTSH_STATE_DIR: "/var/lib/governed-executor",
    AGENTSH_BIN_DIR: "/usr/local/bin",
  });
  return {
    path: "/usr/local/bin/agentsh-launch",
    isolation: bundle.isolation,
    bestEffort,
    uidDrop: true,
    fsRules: launcherFsRules(
      bundle.config.landlock ?? {},
      bundle.isolation,
      ["/workspace"],
      () => true,
    ),
    landlock: bundle.config.landlock ?? {},
  };
}

const PLAIN = { workspace: "/workspace", scratch: "/home/gexec/key-abc.47003" };

describe("agentsh-launch options from isolation.yaml", () => {
  it("gives each slot its own uid, the shared gid, the bundle's ports, file rules and a private scratch dir", async () => {
    const s = await settings();
    const argv = launcherArgv(s, 2, "tag-1", PLAIN);
    expect(argv[0]).toBe("/usr/local/bin/agentsh-launch");
    expect(argv).toContain("--uid=47003");
    expect(argv).toContain("--gid=47000");
    expect(argv).toContain("--umask=007");
    expect(argv).toContain("--scratch=/home/gexec/key-abc.47003");
    expect(argv).toContain("--fs=rwx:/workspace");
    expect(argv).toContain("--fs=rwx:/home/gexec/key-abc.47003");
    expect(argv).toContain("--fs=rx:/usr");
    expect(argv).toContain("--fs=r:/etc/passwd");
    expect(argv).toContain("--fs=rwi:/dev/null");
    // The bundle's "any": no bind layer (the service holds its own ports).
    expect(argv).toContain("--bind-any");
    expect(argv.some((a) => a.startsWith("--bind-ports"))).toBe(false);
    expect(argv).toContain("--netlink-route");
    expect(argv).not.toContain("--udp");
    expect(argv).not.toContain("--best-effort");
    expect(argv.some((a) => a.startsWith("--max-abi"))).toBe(false);
    expect(argv).toContain("--tag=tag-1");
    expect(argv.at(-1)).toBe("--");
  });

  it("a list of bind ports becomes Landlock rules; a list emptied by the service's ports binds nothing", async () => {
    const s = await settings();
    const ranges = { ...s, isolation: { ...s.isolation, network: { ...s.isolation.network } } };
    ranges.isolation.network.bind_tcp_ports = [{ lo: 8000, hi: 8099 }];
    const argv = launcherArgv(ranges, 0, "t", PLAIN);
    expect(argv).toContain("--bind-ports=8000-8099");
    expect(argv).not.toContain("--bind-any");
    ranges.isolation.network.bind_tcp_ports = [];
    const none = launcherArgv(ranges, 0, "t", PLAIN);
    // No --bind-ports and no --bind-any: the launcher then handles bind with no port allowed.
    expect(none.some((a) => a.startsWith("--bind"))).toBe(false);
  });

  it("runs best-effort only when asked (ALLOW_DEGRADED), and holds the ABI only when asked", async () => {
    expect(launcherArgv(await settings(true), 0, "t", PLAIN)).toContain("--best-effort");
    const held = { ...(await settings()), maxAbi: 5 };
    expect(launcherArgv(held, 0, "t", PLAIN)).toContain("--max-abi=5");
  });

  it("with the ruleset server, carries only the command's own places (the server has the rest)", async () => {
    const served = {
      ...(await settings()),
      rulesetServer: { socket: "/run/x/ruleset.sock", uid: 65534 },
    };
    const argv = launcherArgv(served, 2, "t", PLAIN);
    expect(argv).toContain("--ruleset-server=/run/x/ruleset.sock");
    expect(argv).toContain("--ruleset-server-uid=65534");
    expect(argv.filter((a) => a.startsWith("--fs="))).toEqual([
      "--fs=rwx:/workspace",
      "--fs=rwx:/home/gexec/key-abc.47003",
    ]);
    expect(argv.some((a) => a.startsWith("--bind-ports"))).toBe(false);
  });

  it("refuses a slot without an identity", async () => {
    const s = await settings();
    expect(() => launcherArgv(s, s.isolation.identities.count, "t", PLAIN)).toThrow(/no identity/);
  });
});

describe("the launcher's file rules (config.yaml's landlock lists, narrowed)", () => {
  it("grants no shared place: not /tmp, /dev/shm, /proc, the sessions root or the scratch root", async () => {
    const { fsRules } = await settings();
    const paths = fsRules.map((rule) => rule.replace(/^--fs=[rwxi]+:/, ""));
    for (const shared of ["/tmp", "/dev/shm", "/proc", "/sessions", "/home/gexec", "/workspace"]) {
      expect(paths, shared).not.toContain(shared);
    }
    // Single /proc files stay (cpuinfo, meminfo...): only the tree is withheld.
    expect(fsRules).toContain("--fs=r:/proc/cpuinfo");
    expect(paths.some((p) => p.startsWith("/var/lib/governed-executor"))).toBe(false);
    expect(fsRules.every((rule) => /^--fs=r?w?x?i?:\//.test(rule))).toBe(true);
  });

  it("leaves out what is at or under deny_paths, keeps the widest mode per path, and skips missing paths", async () => {
    const { isolation } = await settings();
    const rules = launcherFsRules(
      {
        allow_execute: ["/usr", "/opt/tools"],
        allow_read: ["/usr", "/etc/passwd", "/etc/shadow", "/srv/data/private/x", "/gone", "/proc"],
        allow_write: ["/dev/null", "/sys/fs/cgroup"],
        deny_paths: ["/etc/shadow", "/srv/data"],
      },
      isolation,
      ["/workspace"],
      (p) => p !== "/gone",
    );
    expect(rules).toEqual([
      "--fs=rx:/usr",
      "--fs=rx:/opt/tools",
      "--fs=r:/etc/passwd",
      "--fs=rwi:/dev/null",
    ]);
  });
});

describe("bind ports", () => {
  it("never include the service's own: they are cut out of the ranges", () => {
    expect(withoutPorts([{ lo: 1024, hi: 65535 }], [10000, 18080, 1024])).toEqual([
      { lo: 1025, hi: 9999 },
      { lo: 10001, hi: 18079 },
      { lo: 18081, hi: 65535 },
    ]);
    expect(withoutPorts([{ lo: 80, hi: 80 }], [80])).toEqual([]);
  });
});

describe("scratch dirs", () => {
  it("belong to a session, or to an API key (and its uid where commands drop to one)", () => {
    expect(scratchName({ sessionId: "s-local-abc", owner: "key-1" }, 47003, true)).toBe(
      "s-local-abc",
    );
    expect(scratchName({ owner: "key-1" }, 47003, true)).toBe("key-1.47003");
    expect(scratchName({ owner: "key-1" }, 47003, false)).toBe("key-1");
    expect(scratchName({}, 47003, false)).toBe("anonymous");
  });
});

describe("launcher refusals", () => {
  const line = "agentsh-launch: refused: landlock-net: the kernel's Landlock ABI is 3 (run abc)\n";

  it("are recognised by exit code, the exact line and this run's tag", () => {
    expect(launcherRefusal(LAUNCHER_EXIT_REFUSED, "", line, "abc")).toEqual({
      rule: "launcher-refused",
      kind: "other",
      layer: "launcher",
      operation: "landlock-net",
      target: null,
      message: "the kernel's Landlock ABI is 3",
    });
  });

  it.each([
    [
      "another run's tag (a command printing a fake refusal)",
      LAUNCHER_EXIT_REFUSED,
      "",
      line,
      "xyz",
    ],
    ["another exit code", 1, "", line, "abc"],
    ["output on stdout", LAUNCHER_EXIT_REFUSED, "hi\n", line, "abc"],
    ["more stderr", LAUNCHER_EXIT_REFUSED, "", `${line}more\n`, "abc"],
  ])("are not inferred from %s", (_what, code, stdout, stderr, tag) => {
    expect(launcherRefusal(code, stdout, stderr, tag)).toBeNull();
  });
});

const probeAt = (abi: number, kernel = abi) => ({
  landlockAbi: abi,
  kernelLandlockAbi: kernel,
  landlockFs: abi >= 1,
  landlockNet: abi >= 4,
  ioctlDev: abi >= 5,
  signalScope: abi >= 6,
});
const layerOf = (layers: Record<string, string>, prefix: string) =>
  Object.entries(layers).find(([k]) => k.startsWith(prefix))?.[1];

describe("isolation layers for /health", () => {
  it("names the missing layer on a kernel without Landlock TCP rules", () => {
    const layers = isolationLayers(probeAt(3), { enabled: true, reason: null });
    expect(layerOf(layers, "landlock-net")).toMatch(/^missing: Landlock ABI 3 < 4/);
    expect(layerOf(layers, "landlock-fs")).toMatch(/^enforced \(Landlock ABI 3, no IOCTL_DEV/);
    expect(layerOf(layers, "process-isolation")).toBe("enforced (separate uids)");
  });

  it("says when the ABI is held below the kernel's (the Render profile)", () => {
    const layers = isolationLayers(probeAt(5, 7), resolveUidDrop("when-permitted", false));
    expect(layerOf(layers, "landlock-fs")).toBe(
      "enforced (Landlock held to ABI 5 (kernel: 7), device ioctls too)",
    );
    expect(layerOf(layers, "process-isolation")).toMatch(
      /^enforced for agentsh, the service, init and other API keys .*commands of different keys never run at once.*; not between the sessions of one key, nor for threads agentsh starts while a command runs$/,
    );
    expect(processesSharedBetweenKeys(probeAt(5), resolveUidDrop("when-permitted", false))).toBe(
      true,
    );
    expect(processesSharedBetweenKeys(probeAt(6), resolveUidDrop("when-permitted", false))).toBe(
      false,
    );
    expect(processesSharedBetweenKeys(probeAt(5), { enabled: true, reason: null })).toBe(false);
    expect(layerOf(layers, "capabilities")).toBe("enforced");
  });
});

describe("the uid drop on hosts where the agentsh server lacks CAP_SYS_PTRACE", () => {
  it("when-permitted: drops with CAP_SYS_PTRACE, keeps the identity without it and says why", () => {
    expect(resolveUidDrop("when-permitted", true)).toEqual({ enabled: true, reason: null });
    expect(resolveUidDrop("when-permitted", false)).toMatchObject({
      enabled: false,
      reason: expect.stringMatching(/lacks CAP_SYS_PTRACE/),
    });
  });

  it("required: boot refuses without CAP_SYS_PTRACE; off: never drops", () => {
    expect(() => resolveUidDrop("required", false)).toThrow(/requires the uid drop/);
    expect(resolveUidDrop("off", true)).toMatchObject({ enabled: false });
  });

  it("reads CAP_SYS_PTRACE (bit 19) from CapEff", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "caps-"));
    const with19 = path.join(dir, "with");
    const without = path.join(dir, "without");
    await writeFile(with19, "Name:\tnode\nCapEff:\t00000000a80c25fb\n");
    await writeFile(without, "Name:\tnode\nCapEff:\t00000000a80425fb\n");
    try {
      expect(await hasCapSysPtrace(with19)).toBe(true);
      expect(await hasCapSysPtrace(without)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("without the drop the launcher keeps the identity and /health says what is missing", async () => {
    const keep = { ...(await settings()), uidDrop: false, protectPids: [4242] };
    const argv = launcherArgv(keep, 0, "t", PLAIN);
    expect(argv).toContain("--keep-identity");
    // The guard protects the service (and, by itself, the launcher's ancestors).
    expect(argv).toContain("--protect-pid=4242");
    expect(launcherArgv({ ...keep, uidDrop: true }, 0, "t", PLAIN)).not.toContain(
      "--protect-pid=4242",
    );
    expect(argv.some((a) => a.startsWith("--uid") || a.startsWith("--gid"))).toBe(false);
    const layers = isolationLayers(probeAt(7), resolveUidDrop("when-permitted", false));
    expect(layerOf(layers, "uid-drop")).toMatch(
      /^unavailable: the agentsh server lacks CAP_SYS_PTRACE.*; sessions and keys are kept apart by Landlock paths, processes by the guard$/,
    );
    expect(layerOf(layers, "process-isolation")).toBe(
      "enforced (the launcher's guard + Landlock signal scope)",
    );
  });
});
