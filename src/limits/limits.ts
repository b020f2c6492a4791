import { execFile } from "node:child_process";
import { statfs } from "node:fs/promises";
import { promisify } from "node:util";
import type { IsolationSettings } from "../bundle/isolation-schema.js";
import type { Decision } from "../executor.js";
import type { CgroupDriver, CommandCgroup } from "./cgroups.js";

/**
 * Per-command resource limits (isolation.yaml `limits`), by the best mechanism this host has:
 * a cgroup per command for memory, processes and CPU share (cgroups.ts), rlimits the launcher
 * sets for file size, open files and CPU seconds (and, without a cgroup, per-process data size
 * and, where commands have a uid of their own, a per-uid process count), and a watchdog for
 * disk. A command stopped by a limit is answered `blocked` with a rule of the service's own, only
 * on the kernel's evidence: the cgroup's OOM kill or process-limit count, SIGXCPU/SIGXFSZ, or
 * the measured size.
 */

const MiB = 1024 * 1024;
const DATA_FLOOR_BYTES = 1024 * MiB;

export const LIMIT_RULES = {
  memory: "limit-memory",
  processes: "limit-pids",
  cpu: "limit-cpu",
  fileSize: "limit-file-size",
  disk: "limit-disk",
} as const;

/** Where one command may write, with the quota of those directories together. */
export interface Place {
  paths: string[];
  quotaBytes: number;
}

export interface CommandLimits {
  /** The launcher's options for this command (`--cgroup=…`, `--rlimit=…`). */
  launcherArgs: string[];
  /** After the command: the limit it hit, by the kernel's evidence (or the watchdog's). */
  finish(exitCode: number | null): Promise<Decision | null>;
}

export interface Limits {
  settings: IsolationSettings["limits"];
  /** Per limit: its value and mechanism here, or "unavailable: …", for /health. */
  report: Record<string, string>;
  forCommand(command: {
    /** The command slot it runs in (one command at a time per slot). */
    slot: string;
    places: Place[];
    /** Ends the command's processes (the watchdog found it over a disk limit). */
    stop: () => void;
    /**
     * A tenant's own cgroup limits (only ever lower than the bundle's; a tenant with its own
     * gets cgroups of its own per slot). Applied where the cgroup layer is in force.
     */
    tighter?: TenantLimits;
  }): Promise<CommandLimits>;
}

/** A tenant's cgroup limits (src/tenants/): memory, processes and CPU share of one command. */
export interface TenantLimits {
  memoryMb?: number;
  processes?: number;
  cpuPercent?: number;
}

export interface LimitsOptions {
  limits: IsolationSettings["limits"];
  cgroups: CgroupDriver | null;
  /** Why there is no cgroup (for /health), when there is none. */
  cgroupsUnavailable?: string;
  /** Commands drop to a uid of their own (RLIMIT_NPROC then counts only theirs). */
  uidDrop: boolean;
  /** How often the watchdog checks the volume's free space and the places' sizes. */
  watchIntervalMs?: number;
  /** When it first measures the places (quick commands pay nothing). */
  firstSizeCheckMs?: number;
  /** A place's size in bytes (default: du). */
  sizeOf?: (paths: string[]) => Promise<number>;
  freeBytesOf?: (path: string) => Promise<number>;
}

const FIRST_SIZE_CHECK_MS = 2_000;
const SIGXCPU_EXIT = 128 + 24;
const SIGXFSZ_EXIT = 128 + 25;

export function createLimits(options: LimitsOptions): Limits {
  const { limits, cgroups } = options;
  const memoryBytes = limits.memory_mb * MiB;
  // Without a cgroup, RLIMIT_DATA per process: never below what runtimes reserve at start
  // (measured: Node 24's V8 aborts below ~600 MiB of data; 1 GiB leaves room).
  const dataBytes = Math.max(memoryBytes, DATA_FLOOR_BYTES);
  const sizeOf = options.sizeOf ?? diskUsage;
  const freeBytesOf = options.freeBytesOf ?? freeBytes;
  const interval = options.watchIntervalMs ?? 500;
  const staticArgs = [
    `--rlimit=nofile=${limits.open_files}`,
    `--rlimit=fsize=${limits.file_size_mb * MiB}`,
    `--rlimit=cpu=${limits.cpu_seconds}`,
    "--rlimit=core=0",
    // Short of memory outside any cgroup, the kernel picks a command, not the service.
    "--oom-score-adj=1000",
    // Without a cgroup: each process's data (heap and private mappings; RLIMIT_AS would break
    // runtimes that reserve address space), and, per uid, the processes where uids differ.
    ...(cgroups ? [] : [`--rlimit=data=${dataBytes}`]),
    ...(!cgroups && options.uidDrop ? [`--rlimit=nproc=${limits.processes}`] : []),
  ];
  const via = cgroups ? cgroups.describe : null;
  const noCgroup = `no writable cgroup (${options.cgroupsUnavailable ?? "none found"})`;
  const report: Record<string, string> = {
    memory: via
      ? `${limits.memory_mb} MiB per command: ${via}, its own OOM killer`
      : `${Math.round(dataBytes / MiB)} MiB per process: RLIMIT_DATA, at least 1 GiB as runtimes reserve it (a command's processes together are not limited: ${noCgroup})`,
    processes: via
      ? `${limits.processes} per command: ${via} pids.max`
      : options.uidDrop
        ? `${limits.processes} per uid: RLIMIT_NPROC (a slot's or session's uid)`
        : `unavailable: ${noCgroup}, and RLIMIT_NPROC does not apply to uid 0`,
    cpu: via
      ? `${limits.cpu_percent}% of one core per command: ${via} cpu; ${limits.cpu_seconds} s per process: RLIMIT_CPU`
      : `${limits.cpu_seconds} s per process: RLIMIT_CPU (no share limit: ${noCgroup})`,
    fileSize: `${limits.file_size_mb} MiB per file: RLIMIT_FSIZE`,
    openFiles: `${limits.open_files} per process: RLIMIT_NOFILE`,
    disk: `${limits.disk_mb.session} MiB per session (its directory and scratch), ${limits.disk_mb.workspace} MiB for the shared workspace: measured while a command runs; the volume keeps ${limits.headroom_mb} MiB free`,
  };

  return {
    settings: limits,
    report,
    async forCommand({ slot, places, stop, tighter }) {
      const memoryMb = Math.min(limits.memory_mb, tighter?.memoryMb ?? limits.memory_mb);
      const processes = Math.min(limits.processes, tighter?.processes ?? limits.processes);
      const cpuPercent = Math.min(limits.cpu_percent, tighter?.cpuPercent ?? limits.cpu_percent);
      const cgroup: CommandCgroup | undefined = cgroups
        ? await cgroups.create(slot, {
            memoryBytes: memoryMb * MiB,
            processes,
            cpuPercent,
          })
        : undefined;
      const watch = watchDisk({
        places,
        firstSizeCheckMs: options.firstSizeCheckMs ?? FIRST_SIZE_CHECK_MS,
        headroomBytes: limits.headroom_mb * MiB,
        intervalMs: interval,
        sizeOf,
        freeBytesOf,
        stop,
      });
      return {
        launcherArgs: [...staticArgs, ...(cgroup?.paths ?? []).map((p) => `--cgroup=${p}`)],
        async finish(exitCode) {
          const disk = await watch.end();
          const evidence = cgroup ? await cgroup.evidence() : { oomKills: 0, pidsMaxHits: 0 };
          await cgroup?.remove().catch(() => {});
          if (disk) return disk;
          if (evidence.oomKills > 0) {
            return limitDecision(
              LIMIT_RULES.memory,
              "memory",
              `the kernel ended ${evidence.oomKills} process(es) at the command's ${memoryMb} MiB memory limit`,
            );
          }
          if (evidence.pidsMaxHits > 0) {
            return limitDecision(
              LIMIT_RULES.processes,
              "processes",
              `${evidence.pidsMaxHits} fork(s) refused at the command's limit of ${processes} processes`,
            );
          }
          if (exitCode === SIGXCPU_EXIT) {
            return limitDecision(
              LIMIT_RULES.cpu,
              "cpu",
              `a process used its ${limits.cpu_seconds} s of CPU (SIGXCPU)`,
            );
          }
          if (exitCode === SIGXFSZ_EXIT) {
            return limitDecision(
              LIMIT_RULES.fileSize,
              "file_size",
              `a file reached the ${limits.file_size_mb} MiB limit (SIGXFSZ)`,
            );
          }
          return null;
        },
      };
    },
  };
}

function limitDecision(
  rule: string,
  operation: string,
  message: string,
  target?: string,
): Decision {
  return { rule, kind: "other", layer: "limit", operation, target: target ?? null, message };
}

/**
 * While the command runs: the volume keeps its headroom, and each place stays under its quota
 * (a quick command in a place over its quota, such as a cleanup, ends before the first size
 * check). The command is stopped at the first breach; the answer names it.
 */
function watchDisk(options: {
  places: Place[];
  firstSizeCheckMs: number;
  headroomBytes: number;
  intervalMs: number;
  sizeOf: (paths: string[]) => Promise<number>;
  freeBytesOf: (path: string) => Promise<number>;
  stop: () => void;
}): { end(): Promise<Decision | null> } {
  let breach: Decision | null = null;
  let ended = false;
  // The places' sizes are measured from 2 s into the command (quick commands pay nothing: each
  // measurement is a `du`), and less often when measuring takes long (a large tree): at most a
  // tenth of the time goes to it. Free space (one statfs) is checked every interval.
  let nextSizeCheck = Date.now() + options.firstSizeCheckMs;
  const check = async () => {
    const first = options.places[0]?.paths[0];
    if (!first) return;
    const free = await options.freeBytesOf(first).catch(() => Number.POSITIVE_INFINITY);
    if (free < options.headroomBytes) {
      breach = limitDecision(
        LIMIT_RULES.disk,
        "disk",
        `the volume had ${Math.round(free / (1024 * 1024))} MiB free, below the ${Math.round(options.headroomBytes / (1024 * 1024))} MiB kept for the service`,
        first,
      );
      return;
    }
    if (Date.now() < nextSizeCheck) return;
    const began = Date.now();
    for (const place of options.places) {
      const size = await options.sizeOf(place.paths).catch(() => 0);
      if (size > place.quotaBytes) {
        breach = limitDecision(
          LIMIT_RULES.disk,
          "disk",
          `grew to ${Math.round(size / (1024 * 1024))} MiB, over its ${Math.round(place.quotaBytes / (1024 * 1024))} MiB`,
          place.paths.join(" + "),
        );
        return;
      }
    }
    nextSizeCheck = Date.now() + Math.max(2_000, 10 * (Date.now() - began));
  };
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(async () => {
      if (ended || breach) return;
      await check();
      if (breach) options.stop();
    });
  }, options.intervalMs);
  timer.unref();
  return {
    async end() {
      ended = true;
      clearInterval(timer);
      await running;
      return breach;
    },
  };
}

/** Bytes used by the trees (du: apparent sizes would miss sparse tricks; blocks are what fill). */
async function diskUsage(paths: string[]): Promise<number> {
  const { stdout } = await promisify(execFile)("du", ["-s", "-B1", "--", ...paths], {
    timeout: 30_000,
    maxBuffer: 1024 * 1024,
  }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? "" }));
  return stdout
    .split("\n")
    .map((line) => Number(line.split("\t")[0]))
    .filter((n) => Number.isFinite(n))
    .reduce((a, b) => a + b, 0);
}

async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}
