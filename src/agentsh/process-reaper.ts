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

export async function killMarkedProcesses(runId: string, procRoot = "/proc"): Promise<number> {
  const needle = `${RUN_MARKER}=${runId}`;
  let killed = 0;
  // A process may fork while we scan; a few rounds settle it.
  for (let round = 0; round < 5; round++) {
    const targets = doomed(await snapshot(procRoot, needle));
    if (targets.length === 0) break;
    for (const pid of targets) {
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

async function snapshot(procRoot: string, needle: string): Promise<ProcessInfo[]> {
  const entries = await readdir(procRoot);
  const infos = await Promise.all(
    entries
      .filter((name) => /^\d+$/.test(name))
      .map((name) => inspect(procRoot, Number(name), needle)),
  );
  return infos.filter((info): info is ProcessInfo => info !== null);
}

async function inspect(procRoot: string, pid: number, needle: string): Promise<ProcessInfo | null> {
  try {
    const [stat, environ] = await Promise.all([
      readFile(`${procRoot}/${pid}/stat`, "utf8"),
      readFile(`${procRoot}/${pid}/environ`, "latin1").catch(() => ""),
    ]);
    // Field 4 (ppid) follows the command name, which may itself contain spaces and parens.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return { pid, ppid, marked: environ.split("\0").includes(needle) };
  } catch {
    return null; // exited meanwhile
  }
}
