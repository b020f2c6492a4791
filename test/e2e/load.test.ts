import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { skipWhen } from "../support/skip-when.js";
import { http, memoryOf, REMOTE } from "./harness.js";

async function post(command: string, timeoutMs = 30_000) {
  const res = await http("/execute", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ command, timeoutMs }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: asserted field by field
  return { status: res.status, body: (await res.json()) as any };
}

describe("output cap", () => {
  // Runs against a deployment too (TEST_URL): the stack's own answer is the evidence.
  it("caps stdout and stderr at the service's per-stream limit and says how much there was", async () => {
    // More than the largest cap the service accepts (OUTPUT_LIMIT_BYTES ≤ 1 MiB), on both streams.
    const { status, body } = await post(
      "head -c 2000000 /dev/zero | tr '\\0' a; head -c 1500000 /dev/zero | tr '\\0' b >&2",
    );
    expect(status, JSON.stringify(body).slice(0, 500)).toBe(200);
    const { result } = body;
    expect(result.outcome).toBe("ok");
    expect(result.truncated).toEqual({
      stdout: true,
      stderr: true,
      stdoutBytes: 2_000_000,
      stderrBytes: 1_500_000,
    });
    const cap = result.stdout.length;
    expect(cap).toBeGreaterThanOrEqual(1024);
    expect(cap).toBeLessThanOrEqual(1024 * 1024);
    // The first `cap` bytes of each stream, and one cap for both.
    expect(result.stdout).toBe("a".repeat(cap));
    expect(result.stderr).toBe("b".repeat(cap));
    // The stacks scripts/test boots keep the default.
    if (!REMOTE) expect(cap).toBe(64 * 1024);
  });
});

describe("load", () => {
  it(
    "100 parallel requests wait in the queue: all 100 answered 200, in their own output, none run twice [local only]",
    skipWhen("remote", { timeout: 60_000 }),
    async () => {
      const file = `/workspace/concurrency-${Date.now()}.log`;
      const started = Date.now();
      const answers = await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const sent = Date.now();
          const answer = await post(`echo ${i} >> ${file}; echo ${i}`);
          return { ...answer, ms: Date.now() - sent };
        }),
      );
      const elapsedMs = Date.now() - started;
      const statuses = answers.map((a) => a.status);
      expect(
        statuses.filter((s) => s !== 200),
        JSON.stringify(answers.find((a) => a.status !== 200)?.body),
      ).toEqual([]);
      for (const [i, a] of answers.entries()) expect(a.body.result.stdout).toBe(`${i}\n`);
      const lines = readFileSync(file, "utf8").trim().split("\n");
      expect(new Set(lines).size).toBe(100);
      expect(lines.length).toBe(100);
      const sorted = answers.map((a) => a.ms).sort((a, b) => a - b);
      const p99 = sorted[Math.ceil(0.99 * sorted.length) - 1];
      console.log(
        `[measured] 100 parallel echo: 100 answered 200 (queued FIFO behind the slots), 0 duplicates, p99 ${p99} ms, all done in ${elapsedMs} ms`,
      );
    },
  );

  it(
    "an output flood is capped, keeps the service's memory bounded and does not stall others [local only]",
    skipWhen("remote", { timeout: 180_000 }),
    async () => {
      const before = memoryOf(10000);
      const floods = Array.from({ length: 4 }, () =>
        post(
          "head -c 200000000 /dev/zero | tr '\\0' a; head -c 50000000 /dev/zero | tr '\\0' b >&2",
          120_000,
        ),
      );
      // Other requests are still served promptly while the floods run.
      const probeStarted = Date.now();
      const health = await http("/health");
      const healthMs = Date.now() - probeStarted;
      const results = await Promise.all(floods);
      const after = memoryOf(10000);
      for (const r of results) {
        expect(r.status).toBe(200);
        expect(r.body.result.truncated).toMatchObject({
          stdout: true,
          stderr: true,
          stdoutBytes: 200_000_000,
        });
        expect(r.body.result.stdout.length).toBe(64 * 1024);
      }
      expect(health.status).toBe(200);
      expect(healthMs).toBeLessThan(2_000);
      // Bounded: buffered whole, the floods would take over 1,000 MiB. The flood itself raises
      // the app's peak (VmHWM) by little over what earlier tests already reached, and the whole
      // life of the app so far stays under 160 MiB (scripts/boot caps V8's heap; measured
      // whole-life peaks 128–151 MiB, depending on what the suite ran before: docs/performance.md).
      expect(after.peakMiB - before.peakMiB).toBeLessThan(32);
      expect(after.peakMiB).toBeLessThan(160);
      console.log(
        `[measured] 4 × (200 MB stdout + 50 MB stderr): app peak RSS ${before.peakMiB} → ${after.peakMiB} MiB, /health during flood ${healthMs} ms`,
      );
    },
  );
});
