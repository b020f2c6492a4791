import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  hasCapSysPtrace,
  isolationLayers,
  LAUNCHER_EXIT_REFUSED,
  launcherArgv,
  launcherRefusal,
  resolveUidDrop,
} from "../../src/agentsh/launcher.js";
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
  };
}

describe("agentsh-launch options from isolation.yaml", () => {
  it("gives each slot its own uid, the shared gid, the bundle's ports and a private scratch dir", async () => {
    const s = await settings();
    const argv = launcherArgv(s, 2, "tag-1");
    expect(argv[0]).toBe("/usr/local/bin/agentsh-launch");
    expect(argv).toContain("--uid=47003");
    expect(argv).toContain("--gid=47000");
    expect(argv).toContain("--umask=007");
    expect(argv).toContain("--scratch=/tmp/gexec-home/47003");
    expect(argv).toContain("--bind-ports=8000-8099");
    expect(argv).toContain("--netlink-route");
    expect(argv).not.toContain("--udp");
    expect(argv).not.toContain("--best-effort");
    expect(argv).toContain("--tag=tag-1");
    expect(argv.at(-1)).toBe("--");
  });

  it("runs best-effort only when asked (ALLOW_DEGRADED)", async () => {
    expect(launcherArgv(await settings(true), 0, "t")).toContain("--best-effort");
  });

  it("refuses a slot without an identity", async () => {
    const s = await settings();
    expect(() => launcherArgv(s, s.isolation.identities.count, "t")).toThrow(/no identity/);
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

describe("isolation layers for /health", () => {
  it("names the missing layer on a kernel without Landlock TCP rules", () => {
    const layers = isolationLayers(
      { landlockAbi: 3, landlockNet: false, signalScope: false },
      { enabled: true, reason: null },
    );
    expect(Object.entries(layers).find(([k]) => k.startsWith("landlock-net"))?.[1]).toMatch(
      /^missing: Landlock ABI 3 < 4/,
    );
    expect(Object.entries(layers).find(([k]) => k.startsWith("signal-scope"))?.[1]).toMatch(
      /^unavailable: .*uid drop/,
    );
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
    const keep = { ...(await settings()), uidDrop: false };
    const argv = launcherArgv(keep, 0, "t");
    expect(argv).toContain("--keep-identity");
    expect(argv.some((a) => a.startsWith("--uid") || a.startsWith("--gid"))).toBe(false);
    expect(argv).toContain("--scratch=/tmp/gexec-home/47001");
    const layers = isolationLayers(
      { landlockAbi: 5, landlockNet: true, signalScope: false },
      resolveUidDrop("when-permitted", false),
    );
    expect(Object.values(layers).join("\n")).toMatch(
      /unavailable: the agentsh server lacks CAP_SYS_PTRACE/,
    );
    expect(Object.values(layers).join("\n")).toMatch(/commands can signal the service/);
  });
});
