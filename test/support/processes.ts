import { readdirSync, readFileSync } from "node:fs";

/** Running, not a zombie (a killed process lingers as one until its parent reaps it). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** PIDs of processes on this machine whose command line contains `text` (ours excluded). */
export function processesWith(text: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmdline.includes(text) && isRunning(Number(name))) pids.push(Number(name));
    } catch {}
  }
  return pids;
}
