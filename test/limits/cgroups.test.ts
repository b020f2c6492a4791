import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { detectCgroups } from "../../src/limits/cgroups.js";

/**
 * The cgroup v1 driver against a stand-in hierarchy (plain directories: the controller files
 * are ordinary files here). The real kernel behaviour is covered by the e2e limits suite.
 */
const roots: string[] = [];
afterEach(async () => {
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

async function standIn() {
  const root = await mkdtemp(path.join(tmpdir(), "gexec-cgroup-"));
  roots.push(root);
  for (const controller of ["memory", "pids", "cpu"]) await mkdir(path.join(root, controller));
  const found = await detectCgroups({ v1Root: root, name: "unit" });
  if (!("driver" in found)) throw new Error(found.unavailable);
  return { root, driver: found.driver };
}

const LIMITS = { memoryBytes: 384 * 1024 * 1024, processes: 256, cpuPercent: 100 };

describe("cgroup v1 driver: one cgroup per command slot", () => {
  it("sets a slot's cgroup up once and hands the same one to its next command", async () => {
    const { root, driver } = await standIn();
    const first = await driver.create("slot-0", LIMITS);
    expect(first.paths).toEqual(
      ["memory", "pids", "cpu"].map((c) => path.join(root, c, "unit", "cmd-slot-0")),
    );
    expect(await readFile(path.join(root, "pids/unit/cmd-slot-0/pids.max"), "utf8")).toBe("256");
    await writeFile(path.join(root, "pids/unit/cmd-slot-0/pids.current"), "0");
    const second = await driver.create("slot-0", LIMITS);
    expect(second.paths).toEqual(first.paths);
  });

  it("a slot whose cgroup still has tasks charged (unreaped zombies) gets a fresh one with the whole allowance", async () => {
    const { root, driver } = await standIn();
    await driver.create("slot-1", LIMITS);
    await writeFile(path.join(root, "pids/unit/cmd-slot-1/pids.current"), "200");
    const next = await driver.create("slot-1", LIMITS);
    expect(next.paths[1]).toBe(path.join(root, "pids/unit/cmd-slot-1-2"));
    expect(await readFile(path.join(next.paths[1] as string, "pids.max"), "utf8")).toBe("256");
  });

  it("reports what the kernel counted during the command only", async () => {
    const { root, driver } = await standIn();
    const events = path.join(root, "pids/unit/cmd-slot-2/pids.events");
    await mkdir(path.dirname(events), { recursive: true });
    await writeFile(events, "max 7\n");
    const command = await driver.create("slot-2", LIMITS);
    await writeFile(events, "max 9\n");
    expect((await command.evidence()).pidsMaxHits).toBe(2);
  });
});
