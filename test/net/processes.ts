// Process helpers for the test-network harness: run a program with a deadline, wait for a
// condition with a deadline, find and stop processes by PID. Node builtins only.

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";
import { constants } from "node:os";

export interface Finished {
  /** Exit code; null when the program could not start, was killed or hit its deadline. */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs argv (no shell) and resolves when it ends or at `timeoutMs` (then KILLed). */
export function run(argv: readonly string[], timeoutMs: number): Promise<Finished> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error("run: empty argv");
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { timeout: timeoutMs, killSignal: "SIGKILL", encoding: "utf8", maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null;
        resolve({ code, stdout, stderr: stderr || (error?.message ?? "") });
      },
    );
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Calls `attempt` every `intervalMs` until it returns true; false if `deadlineMs` passes first.
 * `attempt` may throw to give up early (e.g. the process it waits for has exited).
 */
export async function waitUntil(
  attempt: (remainingMs: number) => boolean | Promise<boolean>,
  deadlineMs: number,
  intervalMs = 100,
): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return false;
    if (await attempt(remaining)) return true;
    if (Date.now() + intervalMs >= deadline) return false;
    await sleep(intervalMs);
  }
}

/** Fields of /proc/PID/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** A process counts as gone once it has exited, even if nobody has reaped it yet. */
export function isAlive(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state !== undefined && state !== "Z" && state !== "X";
}

/** Live processes whose session id is `sid` (a process started with setsid is its own). */
export function sessionMembers(sid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    // After the name: state, ppid, pgrp, session.
    if (statFields(pid)?.[3] === String(sid) && isAlive(pid)) members.push(pid);
  }
  return members;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/**
 * TERM to every live pid, wait up to `timeoutMs` for all of them to go, then KILL the rest.
 * Returns the pids that had to be KILLed.
 */
export async function stopProcesses(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  const live = pids.filter(isAlive);
  if (live.length === 0) return [];
  for (const pid of live) signal(pid, "SIGTERM");
  if (await waitUntil(() => !live.some(isAlive), timeoutMs)) return [];
  const left = live.filter(isAlive);
  for (const pid of left) signal(pid, "SIGKILL");
  return left;
}

export function exitDescription(child: ChildProcess): string {
  return child.signalCode !== null ? `signal ${child.signalCode}` : `code ${child.exitCode}`;
}

/** The shell's convention: a command killed by signal N exits with 128 + N. */
export function shellExitCode(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal !== null ? constants.signals[signal] : 0);
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Starts argv in `cwd` with stdout+stderr to `outputFile`, in a session of its own: teardown
 * finds all of it by session id, and a Ctrl-C on the terminal does not hit it mid-teardown.
 * ('ip netns exec' execs, so the pid is the program's.) A failure to start shows as an exit.
 */
export function startDetached(
  argv: string[],
  outputFile: string,
  env: NodeJS.ProcessEnv,
  cwd: string,
): ChildProcess {
  const [file = "", ...args] = argv;
  const fd = openSync(outputFile, "w");
  const child = spawn(file, args, {
    cwd,
    env,
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  closeSync(fd);
  child.on("error", () => {});
  return child;
}
