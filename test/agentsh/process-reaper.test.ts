import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { killMarkedProcesses, RUN_MARKER } from "../../src/agentsh/process-reaper.js";
import { isRunning } from "../support/processes.js";

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
});
