import { describe, expect, it } from "vitest";
import type { CommandResult } from "../../src/command-result.js";
import type { SessionInfo } from "../../src/sessions/contract.js";
import { isRunning } from "../support/processes.js";
import { http, pidsWithMarker, REMOTE } from "./harness.js";

/**
 * A hostile command against the service's resource limits (isolation.yaml `limits`), on the
 * real stack, in each profile. While each runs, /health answers 200 and a concurrent `echo`
 * completes (both timed); afterwards nothing of the command is left. A command stopped by a
 * limit is `blocked` by the service's own rule only on the kernel's evidence.
 */

interface Limits {
  memory: string;
  processes: string;
}

async function limits(): Promise<Limits> {
  const body = (await (await http("/health")).json()) as { isolation: { limits: Limits } };
  return body.isolation.limits;
}

async function post(body: Record<string, unknown>, signal?: AbortSignal): Promise<CommandResult> {
  const res = await http("/execute", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
  const json = (await res.json()) as { result: CommandResult };
  expect(res.status, JSON.stringify(json)).toBe(200);
  return json.result;
}

/**
 * Runs the abuse, and while it runs probes /health and a concurrent `echo` until it ends.
 * Returns its result and the slowest probe of each kind.
 */
async function whileRunning(body: Record<string, unknown>, marker: string) {
  let done = false;
  const abuse = post(body).finally(() => {
    done = true;
  });
  const health: number[] = [];
  const echo: number[] = [];
  // Give the abuse a moment to get going, then probe until it ends (at least once).
  await new Promise((resolve) => setTimeout(resolve, 700));
  do {
    let started = Date.now();
    const res = await http("/health");
    expect(res.status).toBe(200);
    health.push(Date.now() - started);
    started = Date.now();
    const result = await post({ command: "echo alive", timeoutMs: 20_000 });
    expect(result.stdout).toBe("alive\n");
    echo.push(Date.now() - started);
  } while (!done);
  const result = await abuse;
  // Nothing of it left (the cgroup's processes and anything it started).
  if (!REMOTE) expect(pidsWithMarker(marker).filter(isRunning)).toEqual([]);
  return { result, slowest: { healthMs: Math.max(...health), echoMs: Math.max(...echo) } };
}

const marker = () => `abuse${Date.now()}${Math.floor(Math.random() * 1000)}`;

describe("the service survives a hostile command; the kernel picks the command", () => {
  it("a memory bomb far past the limit: blocked by limit-memory, the service untouched", async () => {
    expect((await limits()).memory).toMatch(/per command: cgroup/);
    const m = marker();
    const { result, slowest } = await whileRunning(
      {
        command: `export M=${m}; python3 -c 'b = bytearray(3 * 1024 ** 3); print("allocated")'; echo rc=$?`,
        timeoutMs: 60_000,
      },
      m,
    );
    console.log(`[measured] memory bomb (3 GiB): ${JSON.stringify(slowest)}`);
    expect(result.stdout).toBe("rc=137\n");
    expect(result.outcome).toBe("blocked");
    expect(result.decision).toMatchObject({ rule: "limit-memory", layer: "limit" });
    expect(result.completed).toBe(true);
  });

  it("a fork bomb (5000 forks attempted): blocked by limit-pids at the limit", async () => {
    const m = marker();
    const { result, slowest } = await whileRunning(
      {
        command: `export M=${m}; python3 -c 'import os, time\nn = 0\ntry:\n    for _ in range(5000):\n        if os.fork() == 0:\n            time.sleep(4)\n            os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint(n)'`,
        timeoutMs: 60_000,
      },
      m,
    );
    console.log(
      `[measured] fork bomb (5000 attempted, ${result.stdout.trim()} forked): ${JSON.stringify(slowest)}`,
    );
    expect(Number(result.stdout)).toBeLessThan(300);
    expect(result.decision).toMatchObject({ rule: "limit-pids", layer: "limit" });
  });

  it("four CPU spinners at once: one core's share, the service answers", async () => {
    const m = marker();
    const { result, slowest } = await whileRunning(
      {
        command: `export M=${m}; for i in 1 2 3 4; do timeout 6 sh -c 'while :; do :; done' & done; wait; echo spun`,
        timeoutMs: 60_000,
      },
      m,
    );
    console.log(`[measured] 4 CPU spinners for 6 s: ${JSON.stringify(slowest)}`);
    expect(result.stdout).toBe("spun\n");
    expect(slowest.echoMs).toBeLessThan(10_000);
  });

  it("a file past the largest file size: SIGXFSZ, blocked by limit-file-size", async () => {
    const result = await post({
      command: 'head -c 1100M /dev/zero > "$TMPDIR/big"; rc=$?; rm -f "$TMPDIR/big"; exit $rc',
      timeoutMs: 60_000,
    });
    expect(result.exitCode).toBe(153);
    expect(result.decision).toMatchObject({ rule: "limit-file-size", layer: "limit" });
  });

  it("a disk fill past the session's quota: stopped, blocked by limit-disk, the files gone with the session", async () => {
    const res = await http("/sessions", { method: "POST" });
    const session = ((await res.json()) as { session: SessionInfo }).session;
    try {
      const m = marker();
      // 1 GiB files (the largest file allowed), until the session's 2 GiB are passed.
      const { result, slowest } = await whileRunning(
        {
          command: `export M=${m}; for i in 1 2 3 4; do head -c 1000M /dev/zero > fill$i || break; done; echo wrote`,
          sessionId: session.id,
          timeoutMs: 120_000,
        },
        m,
      );
      console.log(`[measured] disk fill: ${JSON.stringify(slowest)}; ${result.decision?.message}`);
      expect(result.decision).toMatchObject({ rule: "limit-disk", layer: "limit" });
      expect(result.stdout).not.toContain("wrote");
    } finally {
      await http(`/sessions/${session.id}`, { method: "DELETE" });
    }
  }, 180_000);
});
