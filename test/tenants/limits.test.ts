import { describe, expect, it } from "vitest";
import type { CgroupDriver, CgroupLimits } from "../../src/limits/cgroups.js";
import { createLimits } from "../../src/limits/limits.js";
import { TEST_ISOLATION } from "../support/isolation.js";

const MiB = 1024 * 1024;

describe("a tenant's own resource limits", () => {
  it("set up its cgroup with the lower of its limits and the bundle's, and name them in the verdict", async () => {
    const made: Array<[string, CgroupLimits]> = [];
    const driver: CgroupDriver = {
      describe: "cgroup v1 (fake)",
      version: 1,
      async create(id, limits) {
        made.push([id, limits]);
        return {
          paths: [`/cg/memory/cmd-${id}`],
          evidence: async () => ({ oomKills: 1, pidsMaxHits: 0 }),
          remove: async () => {},
        };
      },
    };
    const limits = createLimits({
      limits: TEST_ISOLATION.limits,
      cgroups: driver,
      uidDrop: true,
      sizeOf: async () => 0,
      freeBytesOf: async () => 100 * 1024 * MiB,
    });
    const command = await limits.forCommand({
      slot: "slot-0-ci",
      places: [],
      stop: () => {},
      // processes above the bundle's 256: the bundle's applies.
      tighter: { memoryMb: 64, processes: 10_000 },
    });
    expect(made).toEqual([
      [
        "slot-0-ci",
        {
          memoryBytes: 64 * MiB,
          processes: TEST_ISOLATION.limits.processes,
          cpuPercent: TEST_ISOLATION.limits.cpu_percent,
        },
      ],
    ]);
    expect((await command.finish(137))?.message).toContain("64 MiB memory limit");
  });
});
