import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rmdir, statfs, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * A cgroup for each command, where the host lets the service make them: one per command slot,
 * made at its first use and reused (making a memory cgroup costs ~15 ms, measured; only one
 * command runs in a slot at a time). The launcher moves itself in before it execs (so the whole
 * tree is inside from its first instruction); after the command the service reads what the
 * kernel recorded meanwhile (the OOM-kill and process-limit counters, as differences) and ends
 * whatever is left, so the next command starts in an empty cgroup.
 *
 * - cgroup v2 (Render's kernels): a writable subtree of the service's own cgroup. v2 forbids
 *   processes in a cgroup whose controllers are delegated to children, so the processes already
 *   there (the container: init, the boot script, agentsh, the service) move to a `service`
 *   child first, then `commands/cmd-<id>` get memory.max, memory.swap.max, memory.oom.group,
 *   pids.max and cpu.max.
 * - cgroup v1 (hybrid hosts, such as this project's CI machines): the memory, pids and cpu
 *   hierarchies, each writable below the service's own cgroup, or directories delegated to the
 *   service (GEXEC_CGROUP_V1_ROOT/<controller>, the container test's bind mounts).
 */

export interface CgroupLimits {
  memoryBytes: number;
  processes: number;
  cpuPercent: number;
}

/** What the kernel recorded for one command's cgroup. */
export interface CgroupEvidence {
  oomKills: number;
  pidsMaxHits: number;
}

export interface CommandCgroup {
  /** Directories the launcher joins (`--cgroup=`): one per hierarchy. */
  paths: string[];
  /** What the kernel recorded since the command started. */
  evidence(): Promise<CgroupEvidence>;
  /** Ends every process still in it (the next command starts in an empty cgroup). */
  remove(): Promise<void>;
}

export interface CgroupDriver {
  /** "cgroup v2 (/sys/fs/cgroup/…)" and the like, for /health. */
  describe: string;
  version: 1 | 2;
  /** The cgroup of `slot` (made at its first use), ready for one command. */
  create(slot: string, limits: CgroupLimits): Promise<CommandCgroup>;
}

/** Counters read before a command, so that its evidence is what changed during it. */
async function counting(
  read: () => Promise<CgroupEvidence>,
): Promise<() => Promise<CgroupEvidence>> {
  const before = await read();
  return async () => {
    const after = await read();
    return {
      oomKills: after.oomKills - before.oomKills,
      pidsMaxHits: after.pidsMaxHits - before.pidsMaxHits,
    };
  };
}

const CGROUP2_SUPER_MAGIC = 0x63677270;
const CPU_PERIOD_US = 100_000;
const V1_CONTROLLERS = ["memory", "pids", "cpu"] as const;

/** Finds a writable cgroup hierarchy, or says why there is none. */
export async function detectCgroups(
  options: {
    /** Directories delegated to the service, one per v1 controller under it. */
    v1Root?: string | undefined;
    /** Name of this stack's subtree (several stacks may share a host). */
    name: string;
    mountPoint?: string;
    selfCgroupFile?: string;
  } = { name: "gexec" },
): Promise<{ driver: CgroupDriver } | { unavailable: string }> {
  const mount = options.mountPoint ?? "/sys/fs/cgroup";
  const own = await readFile(options.selfCgroupFile ?? "/proc/self/cgroup", "utf8").catch(() => "");
  if (options.v1Root) {
    const roots = V1_CONTROLLERS.map((c) => path.join(options.v1Root as string, c));
    return v1Driver(roots, options.name, `cgroup v1, delegated (${options.v1Root})`);
  }
  const fs = await statfs(mount).catch(() => null);
  if (!fs) return { unavailable: `no cgroup file system at ${mount}` };
  if (fs.type === CGROUP2_SUPER_MAGIC) {
    const self = /^0::(\/.*)$/m.exec(own)?.[1];
    if (!self)
      return { unavailable: "cgroup v2 without an entry for this process in /proc/self/cgroup" };
    return v2Driver(path.join(mount, self), options.name);
  }
  const roots: string[] = [];
  for (const controller of V1_CONTROLLERS) {
    const self = new RegExp(`^\\d+:(?:[^:]*,)?${controller}(?:,[^:]*)?:(/.*)$`, "m").exec(own)?.[1];
    if (!self) return { unavailable: `cgroup v1 without the ${controller} controller` };
    // The service's own cgroup, or the hierarchy's root when that path is not visible here
    // (a cgroup of an enclosing host, as on this project's CI machines).
    const mine = path.join(mount, controller, self);
    roots.push(existsSync(mine) ? mine : path.join(mount, controller));
  }
  return v1Driver(roots, options.name, `cgroup v1 (${mount})`);
}

async function writable(dir: string): Promise<string | null> {
  const probe = path.join(dir, `gexec-probe-${process.pid}`);
  try {
    await mkdir(probe);
    await rmdir(probe);
    return null;
  } catch (error) {
    return `${dir} is not writable (${(error as NodeJS.ErrnoException).code ?? error})`;
  }
}

async function v1Driver(
  roots: string[],
  name: string,
  describe: string,
): Promise<{ driver: CgroupDriver } | { unavailable: string }> {
  for (const root of roots) {
    const problem = await writable(root);
    if (problem) return { unavailable: `cgroup v1: ${problem}` };
  }
  const bases = roots.map((root) => path.join(root, name));
  for (const base of bases) {
    await mkdir(base, { recursive: true });
    // What a previous run of the service left (killed mid-command).
    for (const entry of await readdir(base).catch(() => [] as string[])) {
      if (entry.startsWith("cmd-")) await removeV1([path.join(base, entry)]).catch(() => {});
    }
  }
  const [memory, pids, cpu] = bases as [string, string, string];
  const swapAccounted = await readFile(path.join(memory, "memory.memsw.limit_in_bytes"))
    .then(() => true)
    .catch(() => false);
  const slots = slotCgroups({
    dirsOf: (name) => [memory, pids, cpu].map((base) => path.join(base, name)),
    async setUp(dirs, limits) {
      const [m, p, c] = dirs as [string, string, string];
      for (const dir of dirs) await mkdir(dir).catch(ignoreExisting);
      await writeFile(path.join(m, "memory.limit_in_bytes"), String(limits.memoryBytes));
      // Memory plus swap, where swap is accounted: no way around the limit through swap.
      if (swapAccounted) {
        await writeFile(path.join(m, "memory.memsw.limit_in_bytes"), String(limits.memoryBytes));
      }
      await writeFile(path.join(p, "pids.max"), String(limits.processes));
      await writeFile(path.join(c, "cpu.cfs_period_us"), String(CPU_PERIOD_US));
      await writeFile(
        path.join(c, "cpu.cfs_quota_us"),
        String(Math.round((CPU_PERIOD_US * limits.cpuPercent) / 100)),
      );
    },
    charged: (dirs) => read(path.join(dirs[1] as string, "pids.current")).then(Number),
  });
  return {
    driver: {
      describe,
      version: 1,
      async create(slot, limits) {
        const dirs = await slots.take(slot, limits);
        const [m, p] = dirs as [string, string, string];
        const evidence = await counting(async () => ({
          oomKills: field(await read(path.join(m, "memory.oom_control")), "oom_kill"),
          pidsMaxHits: field(await read(path.join(p, "pids.events")), "max"),
        }));
        return { paths: dirs, evidence, remove: () => emptyV1(dirs) };
      },
    },
  };
}

async function v2Driver(
  self: string,
  name: string,
): Promise<{ driver: CgroupDriver } | { unavailable: string }> {
  const problem = await writable(self);
  if (problem) return { unavailable: `cgroup v2: ${problem}` };
  const available = (await read(path.join(self, "cgroup.controllers"))).split(/\s+/);
  const missing = ["memory", "pids", "cpu"].filter((c) => !available.includes(c));
  if (missing.length > 0) {
    return {
      unavailable: `cgroup v2: controllers ${missing.join(", ")} are not delegated to ${self}`,
    };
  }
  // No processes may stay where controllers are handed to children: move them to a leaf.
  const leaf = path.join(self, `${name}-service`);
  await mkdir(leaf, { recursive: true });
  for (const pid of (await read(path.join(self, "cgroup.procs"))).split("\n").filter(Boolean)) {
    await writeFile(path.join(leaf, "cgroup.procs"), pid).catch(() => {});
  }
  await writeFile(path.join(self, "cgroup.subtree_control"), "+memory +pids +cpu");
  const commands = path.join(self, `${name}-commands`);
  await mkdir(commands, { recursive: true });
  for (const entry of await readdir(commands).catch(() => [] as string[])) {
    if (!entry.startsWith("cmd-")) continue;
    await writeFile(path.join(commands, entry, "cgroup.kill"), "1").catch(() => {});
    await removeWhenEmpty([path.join(commands, entry)]).catch(() => {});
  }
  await writeFile(path.join(commands, "cgroup.subtree_control"), "+memory +pids +cpu");
  const hasSwap = await readFile(path.join(commands, "memory.swap.max"))
    .then(() => true)
    .catch(() => false);
  const slots = slotCgroups({
    dirsOf: (name) => [path.join(commands, name)],
    async setUp([dir], limits) {
      const d = dir as string;
      await mkdir(d).catch(ignoreExisting);
      await writeFile(path.join(d, "memory.max"), String(limits.memoryBytes));
      if (hasSwap) await writeFile(path.join(d, "memory.swap.max"), "0");
      // An OOM kill ends the whole command, not one of its processes at random.
      await writeFile(path.join(d, "memory.oom.group"), "1");
      await writeFile(path.join(d, "pids.max"), String(limits.processes));
      await writeFile(
        path.join(d, "cpu.max"),
        `${Math.round((CPU_PERIOD_US * limits.cpuPercent) / 100)} ${CPU_PERIOD_US}`,
      );
    },
    charged: ([dir]) => read(path.join(dir as string, "pids.current")).then(Number),
  });
  return {
    driver: {
      describe: `cgroup v2 (${commands})`,
      version: 2,
      async create(slot, limits) {
        const dirs = await slots.take(slot, limits);
        const dir = dirs[0] as string;
        const evidence = await counting(async () => ({
          oomKills: field(await read(path.join(dir, "memory.events")), "oom_kill"),
          pidsMaxHits: field(await read(path.join(dir, "pids.events")), "max"),
        }));
        return {
          paths: dirs,
          evidence,
          async remove() {
            await writeFile(path.join(dir, "cgroup.kill"), "1").catch(() => {});
            await waitEmpty(dirs);
          },
        };
      },
    },
  };
}

/**
 * The cgroups of the command slots, reused: a slot's directories are set up at its first
 * command and serve every later one. Killed processes stay charged to the pids controller until
 * they are reaped (zombies, measured: 200 of them for over 0.4 s, gone within 5 s), and a
 * command must not start with less than its whole process allowance: a slot whose cgroup still
 * holds any gets a fresh generation (`cmd-slot-3-2`), and the old one is removed once empty.
 */
function slotCgroups(options: {
  dirsOf(name: string): string[];
  setUp(dirs: string[], limits: CgroupLimits): Promise<void>;
  /** Tasks charged to the cgroup, exited-but-unreaped ones included. */
  charged(dirs: string[]): Promise<number>;
}) {
  const current = new Map<string, { dirs: string[]; generation: number }>();
  const retired: string[][] = [];
  return {
    async take(slot: string, limits: CgroupLimits): Promise<string[]> {
      for (const dirs of retired.splice(0)) {
        // Once its last task is gone (no waiting here: it is tried again at the next command).
        const left: string[] = [];
        for (const dir of dirs) {
          await rmdir(dir).catch((error: NodeJS.ErrnoException) => {
            if (error.code !== "ENOENT") left.push(dir);
          });
        }
        if (left.length > 0) retired.push(left);
      }
      const held = current.get(slot);
      if (held && (await options.charged(held.dirs)) === 0) return held.dirs;
      if (held) retired.push(held.dirs);
      const generation = (held?.generation ?? 0) + 1;
      const name = generation === 1 ? `cmd-${slot}` : `cmd-${slot}-${generation}`;
      const dirs = options.dirsOf(name);
      await options.setUp(dirs, limits);
      current.set(slot, { dirs, generation });
      return dirs;
    },
  };
}

async function read(file: string): Promise<string> {
  return readFile(file, "utf8").catch(() => "");
}

/** `name N` from a flat keyed file (memory.events, pids.events, memory.oom_control). */
export function field(text: string, name: string): number {
  const value = new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1];
  return value === undefined ? 0 : Number(value);
}

function ignoreExisting(error: NodeJS.ErrnoException): void {
  if (error.code !== "EEXIST") throw error;
}

async function pidsIn(dirs: string[]): Promise<Set<number>> {
  const pids = new Set<number>();
  for (const dir of dirs) {
    for (const line of (await read(path.join(dir, "cgroup.procs"))).split("\n")) {
      if (line) pids.add(Number(line));
    }
  }
  return pids;
}

/** Ends what a command left in its cgroup (v1 has no cgroup.kill). */
async function emptyV1(dirs: string[]): Promise<void> {
  for (let round = 0; round < 40; round++) {
    const pids = await pidsIn(dirs);
    if (pids.size === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    await sleep(25);
  }
  throw new Error(`processes remain in ${dirs.join(", ")}`);
}

async function waitEmpty(dirs: string[]): Promise<void> {
  const deadline = Date.now() + 2_000;
  while ((await pidsIn(dirs)).size > 0) {
    if (Date.now() > deadline) throw new Error(`processes remain in ${dirs.join(", ")}`);
    await sleep(25);
  }
}

async function removeV1(dirs: string[]): Promise<void> {
  // v1 has no cgroup.kill: end each process still in it (a daemon the command left behind).
  for (let round = 0; round < 20; round++) {
    const pids = new Set<number>();
    for (const dir of dirs) {
      for (const line of (await read(path.join(dir, "cgroup.procs"))).split("\n")) {
        if (line) pids.add(Number(line));
      }
    }
    if (pids.size === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    await sleep(25);
  }
  await removeWhenEmpty(dirs);
}

async function removeWhenEmpty(dirs: string[]): Promise<void> {
  const deadline = Date.now() + 2_000;
  for (const dir of dirs) {
    for (;;) {
      try {
        await rmdir(dir);
        break;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOENT") break;
        if (Date.now() > deadline) throw error;
        await sleep(25);
      }
    }
  }
}
