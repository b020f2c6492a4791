import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { processesWith } from "../support/processes.js";
import { skipWhen } from "../support/skip-when.js";
import { execute, expectAllowed, http, waitFor } from "./harness.js";

/** PID of the agentsh server listening on 18080 inside this test's own namespace. */
function agentshServerPid(): number {
  const out = execFileSync("ss", ["-Hltnp", "sport = :18080"], { encoding: "utf8" });
  const pid = out.match(/pid=(\d+)/)?.[1];
  if (!pid) throw new Error(`no listener on :18080: ${out}`);
  return Number(pid);
}

describe("agentsh dies and comes back", () => {
  it(
    "agentsh killed mid-command: the in-flight request gets a JSON 503 and its process is ended, /health turns 503, the supervisor restarts agentsh, sessions and canaries are re-done, commands run again [local only]",
    skipWhen("remote", { timeout: 60_000 }),
    async () => {
      expectAllowed(await execute("echo before"), "before\n");
      const pid = agentshServerPid();
      // A command in flight when agentsh dies gets a clear JSON error, and is not left running.
      const token = `${Date.now() % 100_000}.77`;
      const inFlight = http("/execute", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ command: `sleep ${token}`, timeoutMs: 60_000 }),
      });
      await waitFor(
        "the in-flight command to start",
        5_000,
        async () => processesWith(`sleep ${token}`).length > 0,
      );
      process.kill(pid, "SIGKILL");
      const answer = await inFlight;
      expect(answer.status).toBe(503);
      expect(((await answer.json()) as { error: { code: string } }).error.code).toBe(
        "agentsh_unavailable",
      );
      await waitFor(
        "the orphaned command to be killed",
        3_000,
        async () => processesWith(`sleep ${token}`).length === 0,
      );
      const downMs = await waitFor(
        "/health 503",
        5_000,
        async () => (await http("/health")).status === 503,
      );
      const during = await http("/execute", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ command: "echo during" }),
      });
      // Either refused cleanly (agentsh down) or already recovered; never a 500.
      expect([200, 503]).toContain(during.status);
      const upMs = await waitFor(
        "/health 200 again",
        30_000,
        async () => (await http("/health")).status === 200,
      );
      expect(agentshServerPid()).not.toBe(pid);
      expectAllowed(await execute("echo after"), "after\n");
      console.log(`[measured] /health 503 after ${downMs} ms; recovered ${upMs} ms later`);
    },
  );
});
