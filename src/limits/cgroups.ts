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
  const ready = new Set<string>();
  const swapAccounted = await readFile(path.join(memory, "memory.memsw.limit_in_bytes"))
    .then(() => true)
    .catch(() => false);
  return {
    driver: {
      describe,
      version: 1,
      async create(slot, limits) {
        const dirs = [memory, pids, cpu].map((base) => path.join(base, `cmd-${slot}`));
        const [m, p, c] = dirs as [string, string, string];
        // Limits are written once per slot (a write to memory.limit_in_bytes takes milliseconds).
        if (!ready.has(slot)) {
          for (const dir of dirs) await mkdir(dir).catch(ignoreExisting);
          await writeFile(path.join(m, "memory.limit_in_bytes"), String(limits.memoryBytes));
          // Memory plus swap, where swap is accounted: no way around the limit through swap.
          if (swapAccounted) {
            await writeFile(
              path.join(m, "memory.memsw.limit_in_bytes"),
              String(limits.memoryBytes),
            );
          }
          await writeFile(path.join(p, "pids.max"), String(limits.processes));
          await writeFile(path.join(c, "cpu.cfs_period_us"), String(CPU_PERIOD_US));
          await writeFile(
            path.join(c, "cpu.cfs_quota_us"),
            String(Math.round((CPU_PERIOD_US * limits.cpuPercent) / 100)),
          );
          ready.add(slot);
        }
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
  const ready = new Set<string>();
  const hasSwap = await readFile(path.join(commands, "memory.swap.max"))
    .then(() => true)
    .catch(() => false);
  return {
    driver: {
      describe: `cgroup v2 (${commands})`,
      version: 2,
      async create(slot, limits) {
        const dir = path.join(commands, `cmd-${slot}`);
        if (!ready.has(slot)) {
          await mkdir(dir).catch(ignoreExisting);
          await writeFile(path.join(dir, "memory.max"), String(limits.memoryBytes));
          if (hasSwap) await writeFile(path.join(dir, "memory.swap.max"), "0");
          // An OOM kill ends the whole command, not one of its processes at random.
          await writeFile(path.join(dir, "memory.oom.group"), "1");
          await writeFile(path.join(dir, "pids.max"), String(limits.processes));
          await writeFile(
            path.join(dir, "cpu.max"),
            `${Math.round((CPU_PERIOD_US * limits.cpuPercent) / 100)} ${CPU_PERIOD_US}`,
          );
          ready.add(slot);
        }
        const evidence = await counting(async () => ({
          oomKills: field(await read(path.join(dir, "memory.events")), "oom_kill"),
          pidsMaxHits: field(await read(path.join(dir, "pids.events")), "max"),
        }));
        return {
          paths: [dir],
          evidence,
          async remove() {
            await writeFile(path.join(dir, "cgroup.kill"), "1").catch(() => {});
            await waitEmpty([dir]);
          },
        };
      },
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
