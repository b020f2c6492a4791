import { describe, expect, it } from "vitest";
import type { CgroupDriver, CgroupEvidence } from "../../src/limits/cgroups.js";
import { field } from "../../src/limits/cgroups.js";
import { createLimits } from "../../src/limits/limits.js";
import { TEST_ISOLATION } from "../support/isolation.js";

const MiB = 1024 * 1024;

function fakeCgroups(evidence: CgroupEvidence) {
  const made: string[] = [];
  const removed: string[] = [];
  const driver: CgroupDriver = {
    describe: "cgroup v1 (fake)",
    version: 1,
    async create(id) {
      made.push(id);
      return {
        paths: [`/cg/memory/cmd-${id}`, `/cg/pids/cmd-${id}`],
        evidence: async () => evidence,
        remove: async () => {
          removed.push(id);
        },
      };
    },
  };
  return { driver, made, removed };
}

const quiet = { sizeOf: async () => 0, freeBytesOf: async () => 100 * 1024 * MiB };

describe("resource limits per command", () => {
  it("with a cgroup: the launcher joins it; rlimits for what a cgroup does not cover", async () => {
    const { driver, made, removed } = fakeCgroups({ oomKills: 0, pidsMaxHits: 0 });
    const limits = createLimits({
      limits: TEST_ISOLATION.limits,
      cgroups: driver,
      uidDrop: false,
      ...quiet,
    });
    const command = await limits.forCommand({ slot: "a", places: [], stop: () => {} });
    expect(command.launcherArgs).toEqual([
      "--rlimit=nofile=4096",
      `--rlimit=fsize=${1024 * MiB}`,
      "--rlimit=cpu=330",
      "--rlimit=core=0",
      "--oom-score-adj=1000",
      "--cgroup=/cg/memory/cmd-a",
      "--cgroup=/cg/pids/cmd-a",
    ]);
    expect(await command.finish(0)).toBeNull();
    expect([made, removed]).toEqual([["a"], ["a"]]);
    expect(limits.report.memory).toBe("384 MiB per command: cgroup v1 (fake), its own OOM killer");
  });

  it.each([
    [{ oomKills: 1, pidsMaxHits: 0 }, 137, "limit-memory"],
    [{ oomKills: 0, pidsMaxHits: 3 }, 0, "limit-pids"],
    [{ oomKills: 0, pidsMaxHits: 0 }, 152, "limit-cpu"],
    [{ oomKills: 0, pidsMaxHits: 0 }, 153, "limit-file-size"],
  ])(
    "names the limit only on the kernel's evidence: %o, exit %i -> %s",
    async (evidence, exit, rule) => {
      const limits = createLimits({
        limits: TEST_ISOLATION.limits,
        cgroups: fakeCgroups(evidence).driver,
        uidDrop: false,
        ...quiet,
      });
      const command = await limits.forCommand({ slot: "b", places: [], stop: () => {} });
      expect(await command.finish(exit)).toMatchObject({ rule, kind: "other", layer: "limit" });
    },
  );

  it("an exit of 137 without an OOM kill is not a memory limit", async () => {
    const limits = createLimits({
      limits: TEST_ISOLATION.limits,
      cgroups: fakeCgroups({ oomKills: 0, pidsMaxHits: 0 }).driver,
      uidDrop: false,
      ...quiet,
    });
    expect(
      await (await limits.forCommand({ slot: "c", places: [], stop: () => {} })).finish(137),
    ).toBeNull();
  });

  it("without a cgroup: data size per process (at least 1 GiB), per-uid processes only with a uid drop, and says so", async () => {
    const shared = createLimits({
      limits: TEST_ISOLATION.limits,
      cgroups: null,
      cgroupsUnavailable: "read-only",
      uidDrop: false,
      ...quiet,
    });
    const args = (await shared.forCommand({ slot: "d", places: [], stop: () => {} })).launcherArgs;
    expect(args).toContain(`--rlimit=data=${1024 * MiB}`);
    expect(args.some((a) => a.startsWith("--rlimit=nproc"))).toBe(false);
    expect(shared.report.processes).toBe(
      "unavailable: no writable cgroup (read-only), and RLIMIT_NPROC does not apply to uid 0",
    );
    const dropped = createLimits({
      limits: TEST_ISOLATION.limits,
      cgroups: null,
      uidDrop: true,
      ...quiet,
    });
    expect(
      (await dropped.forCommand({ slot: "e", places: [], stop: () => {} })).launcherArgs,
    ).toContain("--rlimit=nproc=256");
  });

  it("disk: a place past its quota stops the command (measured from the first size check on)", async () => {
    let stopped = 0;
    const limits = createLimits({
      limits: TEST_ISOLATION.limits,
      cgroups: null,
      uidDrop: true,
      watchIntervalMs: 10,
      firstSizeCheckMs: 30,
      sizeOf: async () => 3000 * MiB,
      freeBytesOf: quiet.freeBytesOf,
    });
    const command = await limits.forCommand({
      slot: "f",
      places: [{ paths: ["/sessions/s", "/home/gexec/s"], quotaBytes: 2048 * MiB }],
      stop: () => {
        stopped++;
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(stopped).toBe(1);
    expect(await command.finish(137)).toMatchObject({
      rule: "limit-disk",
      target: "/sessions/s + /home/gexec/s",
      message: "grew to 3000 MiB, over its 2048 MiB",
    });
  });

  it("disk: a command over its quota that ends before the first size check is let be", async () => {
    const limits = createLimits({
      limits: TEST_ISOLATION.limits,
      cgroups: null,
      uidDrop: true,
      watchIntervalMs: 10,
      firstSizeCheckMs: 10_000,
      sizeOf: async () => 3000 * MiB,
      freeBytesOf: quiet.freeBytesOf,
    });
    const command = await limits.forCommand({
      slot: "g",
      places: [{ paths: ["/w"], quotaBytes: MiB }],
      stop: () => {},
    });
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(await command.finish(0)).toBeNull();
  });

  it("disk: the volume's headroom stops every command writing there", async () => {
    let stopped = 0;
    const limits = createLimits({
      limits: TEST_ISOLATION.limits,
      cgroups: null,
      uidDrop: true,
      watchIntervalMs: 10,
      sizeOf: async () => 0,
      freeBytesOf: async () => 100 * MiB,
    });
    const command = await limits.forCommand({
      slot: "h",
      places: [{ paths: ["/w"], quotaBytes: MiB }],
      stop: () => stopped++,
    });
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(stopped).toBe(1);
    expect((await command.finish(137))?.message).toBe(
      "the volume had 100 MiB free, below the 512 MiB kept for the service",
    );
  });
});

describe("cgroup files", () => {
  it("reads a keyed value (memory.events, pids.events, memory.oom_control)", () => {
    expect(field("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "oom_kill")).toBe(2);
    expect(field("max 7\n", "max")).toBe(7);
    expect(field("", "max")).toBe(0);
  });
});
