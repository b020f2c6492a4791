import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { ExecuteBody } from "../../src/sessions/contract.js";
import {
  execute,
  expectBlocked,
  memoryOf,
  REMOTE,
  type StreamedEvent,
  streamExecute,
} from "./harness.js";

/** Streaming `POST /execute` (Accept: text/event-stream) against agentsh's streaming exec. */

const textOf = (events: StreamedEvent[], stream: "stdout" | "stderr") =>
  events
    .filter((e) => e.event === stream)
    .map((e) => (e.data as { text: string }).text)
    .join("");
const resultOf = (events: StreamedEvent[]) =>
  events.find((e) => e.event === "result")?.data as ExecuteBody | undefined;

describe("streamed output on the real stack", () => {
  it("delivers output as the command produces it, then the result with the decision envelope", async () => {
    const { status, contentType, events } = await streamExecute({
      command: "for i in 1 2 3; do echo tick $i; sleep 1; done; echo oops >&2",
    });
    expect(status).toBe(200);
    expect(contentType).toMatch(/^text\/event-stream/);
    expect(events[0]?.event).toBe("started");
    const firstTick = events.find((e) => e.event === "stdout");
    const result = events.find((e) => e.event === "result");
    expect(firstTick && result).toBeTruthy();
    // "tick 1" arrived while the command still had two seconds to run: not a buffered replay.
    expect((result?.at ?? 0) - (firstTick?.at ?? 0)).toBeGreaterThan(1_500);
    expect(textOf(events, "stdout")).toBe("tick 1\ntick 2\ntick 3\n");
    // agentsh-unixwrap's own lines are not part of the command's stderr.
    expect(textOf(events, "stderr")).toBe("oops\n");
    expect(resultOf(events)?.result).toMatchObject({
      outcome: "ok",
      exitCode: 0,
      stdout: "tick 1\ntick 2\ntick 3\n",
    });
    expect(events.at(-1)?.event).toBe("result");
  });

  it("reports a blocked command with its rule in the final event", async () => {
    const { events } = await streamExecute({ command: "echo before; sudo id" });
    expect(textOf(events, "stdout")).toBe("before\n");
    const body = resultOf(events);
    expect(body).toBeDefined();
    if (body) expectBlocked(body.result, "deny-privilege-escalation");
  });

  it("sends a heartbeat at least every 15 s while a command is quiet", async () => {
    const { events } = await streamExecute({ command: "sleep 12; echo awake" });
    const heartbeats = events.filter((e) => e.event === "heartbeat");
    expect(heartbeats.length).toBeGreaterThanOrEqual(1);
    const times = events.map((e) => e.at);
    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? t));
    expect(Math.max(...gaps)).toBeLessThan(15_000);
    expect(resultOf(events)?.result.stdout).toBe("awake\n");
  });

  it("redacts a secret that arrives split across two chunks", async () => {
    const secret = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx";
    const { events } = await streamExecute({
      command: `printf 'key=${secret.slice(0, 14)}'; sleep 1; printf '${secret.slice(14)} end\\n'`,
    });
    const chunks = events.filter((e) => e.event === "stdout");
    const streamed = textOf(events, "stdout");
    expect(streamed).not.toContain(secret.slice(14));
    expect(streamed).toMatch(/^key=\[REDACTED:[a-z_]+\] end\n$/);
    expect(chunks.length).toBeGreaterThanOrEqual(1);
    expect(resultOf(events)?.result.stdout).not.toContain(secret.slice(14));
  });

  it("kills the command when the client disconnects", async () => {
    const marker = `/workspace/stream-disconnect-${randomUUID()}`;
    const started = Date.now();
    await streamExecute(
      { command: `echo started; sleep 4; touch ${marker}` },
      { onEvent: (e) => e.event === "stdout" },
    );
    expect(Date.now() - started).toBeLessThan(3_000);
    // Had the command survived the hang-up, the marker would exist by now.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    const check = await execute(`test -e ${marker} && echo survived || echo killed`);
    expect(check.stdout).toBe("killed\n");
  });

  it("bounds the streamed output (1 MiB per stream) and says the result was truncated", async () => {
    const before = REMOTE ? undefined : memoryOf(10000);
    const { events } = await streamExecute({ command: "head -c 3000000 /dev/zero | tr '\\0' a" });
    if (before) {
      const after = memoryOf(10000);
      console.log(
        `[measured] streamed 3 MB (1 MiB passed on): app RSS ${before.rssMiB} → ${after.rssMiB} MiB, peak ${before.peakMiB} → ${after.peakMiB} MiB`,
      );
      expect(after.peakMiB).toBeLessThan(150);
    }
    const streamed = textOf(events, "stdout");
    expect(streamed.length).toBeGreaterThan(500_000);
    expect(streamed.length).toBeLessThanOrEqual(1024 * 1024);
    expect(resultOf(events)?.result.truncated?.stdout).toBe(true);
    expect(resultOf(events)?.result.truncated?.stdoutBytes).toBe(3_000_000);
  });

  it("answers bad input with the JSON error before any stream", async () => {
    const { status, contentType, json } = await streamExecute({ command: "" });
    expect(status).toBe(400);
    expect(contentType).toMatch(/^application\/json/);
    expect((json as { error: { code: string } }).error.code).toBe("validation_failed");
  });
});
