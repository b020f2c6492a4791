import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { summarizeProfile } from "../../../tools/bench/cpu-profile.js";

const dir = mkdtempSync(path.join(tmpdir(), "bench-profile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });

/** root → (idle); root → reaper → native read; root → execa → spawn; one sample outside. */
const profile = {
  nodes: [
    { id: 1, callFrame: frame("(root)", ""), children: [2, 3, 5] },
    { id: 2, callFrame: frame("(idle)", "") },
    {
      id: 3,
      callFrame: frame("inspect", "file:///app/dist/agentsh/process-reaper.js"),
      children: [4],
    },
    { id: 4, callFrame: frame("read", "") },
    { id: 5, callFrame: frame("execa", "file:///app/node_modules/execa/index.js"), children: [6] },
    { id: 6, callFrame: frame("spawn", "node:child_process") },
  ],
  startTime: 1_000,
  // Sample times: 2000, 3000, 4000, 5000, 9000 µs; the window ends at 5000.
  samples: [2, 4, 6, 6, 2],
  timeDeltas: [1_000, 1_000, 1_000, 1_000, 4_000],
};

describe("CPU profile summary", () => {
  it("counts only samples inside the window and charges native and Node frames to their caller", () => {
    const file = path.join(dir, "app.cpuprofile");
    writeFileSync(file, JSON.stringify(profile));
    const summary = summarizeProfile(file, { startUs: 1_500, endUs: 5_000, requests: 2 });
    expect(summary.windowMs).toBe(3.5);
    expect(Object.fromEntries(summary.perRequest.map((p) => [p.part, p.ms]))).toEqual({
      "package execa": 1, // two samples of 1 ms, over two requests
      "app dist/agentsh/process-reaper.js": 0.5,
      "(idle: waiting for I/O, the CLI, agentsh)": 0.5,
    });
    expect(summary.topFunctions[0]).toEqual({ fn: "spawn node:child_process:1", ms: 1 });
  });
});
