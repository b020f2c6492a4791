import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import {
  killMarkedProcesses,
  killProcessesOfUid,
  markPids,
  RUN_MARKER,
} from "../../src/agentsh/process-reaper.js";
import { isRunning } from "../support/processes.js";
import { skipWhen } from "../support/skip-when.js";

const started: number[] = [];
afterEach(() => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
});

/** Starts `bash -c script` detached (as agentsh would, outside our process tree's control). */
async function startTree(script: string, env: Record<string, string>): Promise<number[]> {
  const child = spawn("bash", ["-c", script], {
    env: { PATH: process.env.PATH ?? "", ...env },
    detached: true,
    stdio: ["ignore", "pipe", "ignore"],
  });
  started.push(child.pid ?? 0);
  // The script prints the PIDs it started, one per line, then keeps running.
  const pids = await new Promise<number[]>((resolve, reject) => {
    let out = "";
    const deadline = setTimeout(() => reject(new Error("tree did not start")), 5_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("ready\n")) {
        clearTimeout(deadline);
        resolve(
          out
            .split("\n")
            .filter((l) => /^\d+$/.test(l))
            .map(Number),
        );
      }
    });
  });
  started.push(...pids);
  return [child.pid ?? 0, ...pids];
}

describe("killMarkedProcesses", () => {
  it("kills every process carrying the marker and their descendants, even those that dropped it", async () => {
    const runId = randomUUID();
    const tree = await startTree(
      "sleep 300 & echo $!; env -i /bin/sleep 301 & echo $!; (sleep 302 & echo $!; wait) & echo ready; wait",
      { [RUN_MARKER]: runId },
    );
    const bystander = await startTree("sleep 303 & echo $!; echo ready; wait", {
      [RUN_MARKER]: "other-run",
    });
    expect(tree.every(isRunning)).toBe(true);

    const killed = await killMarkedProcesses(runId);

    expect(killed).toBeGreaterThanOrEqual(tree.length);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(tree.filter(isRunning)).toEqual([]);
    expect(bystander.every(isRunning)).toBe(true);
  });

  it("returns 0 when nothing carries the marker", async () => {
    expect(await killMarkedProcesses(randomUUID())).toBe(0);
  });

  it("with a pid mark taken before the command, finds the same tree", async () => {
    const since = await markPids();
    expect(since).not.toBeNull();
    const runId = randomUUID();
    const tree = await startTree(
      "sleep 304 & echo $!; (sleep 305 & echo $!; wait) & echo ready; wait",
      {
        [RUN_MARKER]: runId,
      },
    );
    expect(await killMarkedProcesses(runId, { since })).toBeGreaterThanOrEqual(tree.length);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(tree.filter(isRunning)).toEqual([]);
  });

  it("with a mark, inspects only processes created after it (an older marked one is not seen)", async () => {
    const runId = randomUUID();
    const older = await startTree("sleep 306 & echo $!; echo ready; wait", { [RUN_MARKER]: runId });
    const since = await markPids();
    expect(await killMarkedProcesses(runId, { since })).toBe(0);
    expect(older.every(isRunning)).toBe(true);
    // Without the mark it is found: the mark is what narrowed the scan.
    expect(await killMarkedProcesses(runId)).toBeGreaterThanOrEqual(older.length);
  });

  it("falls back to inspecting everything when pids may have wrapped (more forks than pids)", async () => {
    const runId = randomUUID();
    const older = await startTree("sleep 307 & echo $!; echo ready; wait", { [RUN_MARKER]: runId });
    const now = await markPids();
    // A mark whose fork count is far behind: as if pid allocation had wrapped since.
    const since = now && { lastPid: now.lastPid, forks: now.forks - 1_000_000 };
    expect(await killMarkedProcesses(runId, { since })).toBeGreaterThanOrEqual(older.length);
  });
});

describe("killProcessesOfUid", () => {
  it(
    "ends every process of the uid (detached, no marker), and nothing else",
    skipWhen("not-root"),
    async () => {
      // A uid no account uses: the test's own, freed at the end.
      const uid = 47_999;
      const spawnAs = (owner: number | undefined) => {
        const child = spawn("sleep", ["30"], {
          detached: true,
          stdio: "ignore",
          ...(owner === undefined ? {} : { uid: owner, gid: owner }),
        });
        started.push(child.pid ?? 0);
        return child.pid ?? 0;
      };
      const doomed = [spawnAs(uid), spawnAs(uid)];
      const bystander = spawnAs(undefined);
      const deadline = Date.now() + 5_000;
      while (!doomed.every(isRunning) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await killProcessesOfUid(uid)).toBeGreaterThanOrEqual(2);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(doomed.map(isRunning)).toEqual([false, false]);
      expect(isRunning(bystander)).toBe(true);
    },
  );
});
