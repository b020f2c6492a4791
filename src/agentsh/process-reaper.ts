import { readdir, readFile } from "node:fs/promises";

/**
 * Ends every process of one governed command. agentsh's own timeout kills only the command's
 * direct child, and it keeps the exec open while any descendant still holds the output pipe, so
 * a `sleep 600 &` would outlive its request. Each command carries a marker variable in its
 * environment; the reaper kills every process that has the marker, and their descendants (which
 * catches children that cleared their environment but were not reparented yet).
 *
 * Linux only; the service runs as root next to agentsh, so it may read every /proc/PID.
 */

export const RUN_MARKER = "GEXEC_RUN";

interface ProcessInfo {
  pid: number;
  ppid: number;
  marked: boolean;
}

/**
 * Where pid allocation stood when a command started: the last pid handed out in this pid
 * namespace and the number of forks since boot. Every process the command creates gets a
 * higher pid, unless allocation wrapped around pid_max meanwhile, which the fork count reveals.
 */
export interface PidMark {
  lastPid: number;
  forks: number;
}

export async function markPids(procRoot = "/proc"): Promise<PidMark | null> {
  try {
    const [lastPid, stat] = await Promise.all([
      readFile(`${procRoot}/sys/kernel/ns_last_pid`, "utf8"),
      readFile(`${procRoot}/stat`, "utf8"),
    ]);
    const forks = Number(/^processes (\d+)$/m.exec(stat)?.[1]);
    const last = Number(lastPid.trim());
    return Number.isSafeInteger(forks) && Number.isSafeInteger(last)
      ? { lastPid: last, forks }
      : null;
  } catch {
    return null;
  }
}

/**
 * Kills the processes carrying `runId` and their descendants. With `since` (taken before the
 * command started) only pids allocated after it are inspected, so a command that left nothing
 * behind costs one directory listing; without it, or when pids may have wrapped, every process.
 */
export async function killMarkedProcesses(
  runId: string,
  options: { procRoot?: string; since?: PidMark | null } = {},
): Promise<number> {
  const procRoot = options.procRoot ?? "/proc";
  const needle = `${RUN_MARKER}=${runId}`;
  return killInRounds(async () =>
    doomed(await snapshot(procRoot, needle, await newPidsFloor(procRoot, options.since))),
  );
}

/** SIGKILLs what `targets()` finds until it finds nothing: a process may fork while we scan,
 * and a few rounds settle it. Returns how many were killed. */
async function killInRounds(targets: () => Promise<number[]>): Promise<number> {
  let killed = 0;
  for (let round = 0; round < 5; round++) {
    const pids = await targets();
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
        killed++;
      } catch {
        // Already gone.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return killed;
}

/** Marked processes plus all their descendants. */
function doomed(processes: ProcessInfo[]): number[] {
  const children = new Map<number, number[]>();
  for (const p of processes) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const result = new Set<number>();
  const visit = (pid: number) => {
    if (result.has(pid) || pid === process.pid) return;
    result.add(pid);
    for (const child of children.get(pid) ?? []) visit(child);
  };
  for (const p of processes) if (p.marked) visit(p.pid);
  return [...result];
}

/**
 * The pid above which every process created since `since` lies, or 0 (inspect everything) when
 * that cannot be known: no mark, or more forks happened than pids were handed out (a wrap).
 * Forks in other pid namespaces also count, which only errs towards a full scan.
 */
async function newPidsFloor(
  procRoot: string,
  since: PidMark | null | undefined,
): Promise<{ floor: number; last: number } | null> {
  if (!since) return null;
  const now = await markPids(procRoot);
  if (!now || now.lastPid < since.lastPid) return null;
  return now.forks - since.forks <= now.lastPid - since.lastPid
    ? { floor: since.lastPid, last: now.lastPid }
    : null;
}

/** Ranges this small are probed pid by pid instead of listing all of /proc. */
const DIRECT_PROBE_MAX = 512;

async function snapshot(
  procRoot: string,
  needle: string,
  range: { floor: number; last: number } | null,
): Promise<ProcessInfo[]> {
  // Only processes created since the mark can carry the marker, and their descendants are
  // newer still: the pids in (floor, last] are everything the command started.
  let pids: number[];
  if (range && range.last - range.floor <= DIRECT_PROBE_MAX) {
    pids = Array.from({ length: range.last - range.floor }, (_, i) => range.floor + 1 + i);
  } else {
    const all = (await readdir(procRoot)).filter((name) => /^\d+$/.test(name)).map(Number);
    pids = range ? all.filter((pid) => pid > range.floor) : all;
  }
  const infos = await Promise.all(pids.map((pid) => inspect(procRoot, pid, needle)));
  return infos.filter((info): info is ProcessInfo => info !== null);
}

async function inspect(procRoot: string, pid: number, needle: string): Promise<ProcessInfo | null> {
  try {
    // stat first: most probed pids are gone already, and then environ is never opened.
    const stat = await readFile(`${procRoot}/${pid}/stat`, "utf8");
    const environ = await readFile(`${procRoot}/${pid}/environ`, "latin1").catch(() => "");
    // Field 4 (ppid) follows the command name, which may itself contain spaces and parens.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return { pid, ppid, marked: environ.split("\0").includes(needle) };
  } catch {
    return null; // exited meanwhile
  }
}

/**
 * Kills every process running as `uid` (real or effective), a few rounds to catch forks. Used
 * when a session's own identity is freed: whatever it left running (a daemon that shed the run
 * marker) must not live on into the next session that gets the uid.
 */
export async function killProcessesOfUid(uid: number, procRoot = "/proc"): Promise<number> {
  return killInRounds(async () => {
    const pids = (await readdir(procRoot)).filter((name) => /^\d+$/.test(name)).map(Number);
    const owned = await Promise.all(
      pids.map(async (pid) => {
        try {
          const status = await readFile(`${procRoot}/${pid}/status`, "utf8");
          const ids = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
          return ids && (Number(ids[1]) === uid || Number(ids[2]) === uid) ? pid : null;
        } catch {
          return null; // exited meanwhile
        }
      }),
    );
    return owned.filter((pid): pid is number => pid !== null && pid !== process.pid);
  });
}
