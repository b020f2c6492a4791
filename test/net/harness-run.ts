// Helpers for the harness's own tests: start with-stack.ts as a child process, hold a run open,
// probe inside its namespace, read its canary log. Every wait has a deadline.

import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Finished, isAlive, run, shellExitCode, waitUntil } from "./processes.js";
import { NET_DIR } from "./stand-ins.js";
import { REPO_DIR } from "./test-network.js";

export const FAKE_STACK = "node --import tsx test/net/fake-stack.ts";

export interface HarnessRun {
  child: ChildProcessWithoutNullStreams;
  /** with-stack's stdout and stderr so far. */
  output(): string;
  /** The namespace the run reported creating (empty before that). */
  namespace(): string;
  /** Resolves with the exit code; TERM and reject at the deadline. */
  exit(deadlineMs: number): Promise<number>;
}

const started: HarnessRun[] = [];

/** Starts `with-stack.ts -- command` with the fake stack unless `env` says otherwise. */
export function startRun(command: string[], env: Record<string, string> = {}): HarnessRun {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^(STACK_|KEEP_STACK_LOGS$)/.test(key)),
  );
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(NET_DIR, "with-stack.ts"), "--", ...command],
    { cwd: REPO_DIR, env: { ...base, STACK_CMD: FAKE_STACK, PORT: "10000", ...env } },
  );
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number>((resolve) => {
    child.on("exit", (code, signal) => resolve(shellExitCode(code, signal)));
  });
  const harnessRun: HarnessRun = {
    child,
    output: () => output,
    namespace: () => /namespace (\S+) created/.exec(output)?.[1] ?? "",
    async exit(deadlineMs) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill("SIGTERM");
          reject(new Error(`with-stack did not exit within ${deadlineMs} ms:\n${output}`));
        }, deadlineMs);
      });
      try {
        return await Promise.race([exited, deadline]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
  started.push(harnessRun);
  return harnessRun;
}

/** TERMs every run still going (each tears down its own namespace) and waits for it. */
export async function stopAllRuns(): Promise<void> {
  const going = started.filter(({ child }) => child.exitCode === null && child.signalCode === null);
  for (const { child } of going) child.kill("SIGTERM");
  await Promise.allSettled(going.map((going) => going.exit(30_000)));
}

/**
 * A command that keeps a run open: it writes its environment (and pid, as HOLD_PID) to
 * `stateFile`, then waits for its stdin, with-stack's, to close.
 */
export function holdCommand(stateFile: string): string[] {
  return [
    "sh",
    "-c",
    'export HOLD_PID=$$ && env -0 > "$0.tmp" && mv "$0.tmp" "$0" && exec cat > /dev/null',
    stateFile,
  ];
}

/** Waits until the held command has written its environment, and returns it. */
export async function heldEnvironment(
  harnessRun: HarnessRun,
  stateFile: string,
  deadlineMs: number,
): Promise<Record<string, string>> {
  const written = await waitUntil(() => {
    if (harnessRun.child.exitCode !== null) {
      throw new Error(`with-stack exited early:\n${harnessRun.output()}`);
    }
    return existsSync(stateFile);
  }, deadlineMs);
  if (!written) throw new Error(`no environment within ${deadlineMs} ms:\n${harnessRun.output()}`);
  return Object.fromEntries(
    readFileSync(stateFile, "utf8")
      .split("\0")
      .filter((pair) => pair.includes("="))
      .map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]),
  );
}

/** Runs argv inside namespace `ns` (deadline 5 s). */
export function inside(ns: string, ...argv: string[]): Promise<Finished> {
  return run(["ip", "netns", "exec", ns, ...argv], 5_000);
}

/** Pids of the processes in namespace `ns`. */
export async function namespacePids(ns: string): Promise<number[]> {
  const listed = await run(["ip", "netns", "pids", ns], 5_000);
  return listed.stdout.split(/\s+/).filter(Boolean).map(Number);
}

/** The namespace, its /run/netns handle and its /etc/netns dir no longer exist. */
export async function namespaceGone(ns: string): Promise<boolean> {
  if (ns === "" || existsSync(`/run/netns/${ns}`) || existsSync(`/etc/netns/${ns}`)) return false;
  const listed = await run(["ip", "netns", "list"], 5_000);
  return !listed.stdout.split("\n").some((line) => line.split(" ")[0] === ns);
}

export const allDead = (pids: readonly number[]) => !pids.some(isAlive);

export type CanaryEntry = Record<string, string | number>;

export function canaryEntries(log: string): CanaryEntry[] {
  return readFileSync(log, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as CanaryEntry);
}

/** Canary log lines with every field of `match`. */
export function canaryMatches(log: string, match: CanaryEntry): CanaryEntry[] {
  return canaryEntries(log).filter((entry) =>
    Object.entries(match).every(([key, value]) => entry[key] === value),
  );
}

/**
 * Waits (deadline 5 s) until at least `min` lines match and returns the matches: the canary
 * writes on accept, which can trail the client's connect slightly.
 */
export async function waitForCanary(
  log: string,
  match: CanaryEntry,
  min = 1,
): Promise<CanaryEntry[]> {
  await waitUntil(() => canaryMatches(log, match).length >= min, 5_000, 50);
  return canaryMatches(log, match);
}
