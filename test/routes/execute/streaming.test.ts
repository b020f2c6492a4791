import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { parse as parseYaml } from "yaml";
import { agentshConfigSchema } from "../../../src/bundle/config-schema.js";
import { compileRedactionPatterns, createRedactor } from "../../../src/bundle/redactor.js";
import type { GovernedCommand } from "../../../src/executor.js";
import { HEARTBEAT_MS } from "../../../src/routes/execute.js";
import { FakeExecutor, gate, notRun, okResult } from "../../support/fake-executor.js";
import { buildTestApp, postJson, readJson } from "../../support/test-app.js";

const KEY = "stream-key-0123456789";
const ENV = { API_KEY: KEY, RATE_LIMIT_EXECUTE: "10000" };
const SSE = { "X-API-Key": KEY, Accept: "text/event-stream" };
const SSE_OFF = { "X-API-Key": KEY };

/** The bundle's own DLP settings (agentsh/config.yaml), as the service redacts with them. */
function bundleRedactor() {
  const config = agentshConfigSchema.parse(
    parseYaml(readFileSync(new URL("../../../agentsh/config.yaml", import.meta.url), "utf8")),
  );
  const { patterns, problems } = compileRedactionPatterns(config.dlp);
  expect(problems).toEqual([]);
  return createRedactor(patterns);
}

interface SseEvent {
  event: string;
  // biome-ignore lint/suspicious/noExplicitAny: event payloads are asserted field by field
  data: any;
}

function parseEvents(text: string): SseEvent[] {
  return text
    .split("\n\n")
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const lines = block.split("\n");
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7) ?? "message";
      const data = lines
        .filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6))
        .join("\n");
      return { event, data: JSON.parse(data) };
    });
}

/** Reads a stream's events as they arrive; every read has a deadline. */
function eventReader(res: Response, deadlineMs = 5_000) {
  const body = res.body;
  if (!body) throw new Error("no body");
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const events: SseEvent[] = [];
  let done = false;
  const readOnce = async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, fail) => {
      timer = setTimeout(() => fail(new Error("no event within the deadline")), deadlineMs);
    });
    try {
      const chunk = await Promise.race([reader.read(), timeout]);
      if (chunk.done) done = true;
      else buffered += chunk.value;
    } finally {
      clearTimeout(timer);
    }
    const end = buffered.lastIndexOf("\n\n");
    if (end >= 0) {
      events.push(...parseEvents(buffered.slice(0, end + 2)));
      buffered = buffered.slice(end + 2);
    }
  };
  return {
    events,
    /** Reads until an event matches (or fails at the deadline). */
    async until(match: (event: SseEvent) => boolean): Promise<SseEvent> {
      for (;;) {
        const found = events.find(match);
        if (found) return found;
        if (done) throw new Error(`stream ended without the event (${JSON.stringify(events)})`);
        await readOnce();
      }
    },
    /** Reads to the end of the stream. */
    async all(): Promise<SseEvent[]> {
      while (!done) await readOnce();
      return events;
    },
    cancel: () => reader.cancel(),
  };
}

async function streamed(app: ReturnType<typeof buildTestApp>["app"], body: unknown) {
  const res = await app.request("/execute", postJson(body, SSE));
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
  return eventReader(res).all();
}

/** Output in pieces through onOutput, then the full (bounded) result, like agentsh's stream. */
const piecewise = (pieces: Array<["stdout" | "stderr", string]>) => (request: GovernedCommand) => {
  for (const [stream, text] of pieces) request.onOutput?.(stream, text);
  const of = (stream: string) =>
    pieces
      .filter(([s]) => s === stream)
      .map(([, t]) => t)
      .join("");
  return okResult(of("stdout"), {
    stderr: { text: of("stderr"), truncated: false, totalBytes: Buffer.byteLength(of("stderr")) },
  });
};

afterEach(() => {
  vi.useRealTimers();
});

describe("POST /execute with Accept: text/event-stream", () => {
  it("streams started, the output as it arrives, then result with the buffered answer's body", async () => {
    const executor = new FakeExecutor().respond(
      piecewise([
        ["stdout", "line 1\n"],
        ["stderr", "warning\n"],
        ["stdout", "line 2\nline 3\n"],
        ["stdout", "no newline at the end"],
      ]),
    );
    const { app } = buildTestApp({ env: ENV, executor });
    const events = await streamed(app, { command: "make" });
    expect(events.map((e) => e.event)).toEqual([
      "started",
      "stdout",
      "stderr",
      "stdout",
      "stdout",
      "result",
    ]);
    expect(events[0]?.data).toEqual({ requestId: expect.any(String), command: "make" });
    expect(events.slice(1, -1).map((e) => e.data)).toEqual([
      { text: "line 1\n" },
      { text: "warning\n" },
      { text: "line 2\nline 3\n" },
      { text: "no newline at the end" },
    ]);
    const result = events.at(-1)?.data;
    expect(result.requestId).toBe(events[0]?.data.requestId);
    // The executor was asked for live output.
    expect(executor.commands[0]?.onOutput).toEqual(expect.any(Function));

    const buffered = await readJson(
      await app.request("/execute", postJson({ command: "make" }, SSE_OFF)),
    );
    expect({ ...result, requestId: "" }).toEqual({ ...buffered, requestId: "" });
    expect(result.result.stdout).toBe("line 1\nline 2\nline 3\nno newline at the end");
    expect(result.result.stderr).toBe("warning\n");
    // A buffered request does not ask for live output.
    expect(executor.commands[1]?.onOutput).toBeUndefined();
  });

  it("sends events while the command still runs (not only at its end)", async () => {
    const release = gate(5_000, "the running command");
    const executor = new FakeExecutor().respond(async (request) => {
      request.onOutput?.("stdout", "tick 1\n");
      await release.promise;
      request.onOutput?.("stdout", "tick 2\n");
      return okResult("tick 1\ntick 2\n");
    });
    const { app } = buildTestApp({ env: ENV, executor });
    const res = await app.request("/execute", postJson({ command: "ticks" }, SSE));
    const reader = eventReader(res);
    try {
      await reader.until((e) => e.event === "stdout");
      expect(reader.events.map((e) => e.event)).toEqual(["started", "stdout"]);
    } finally {
      release.open();
    }
    const events = await reader.all();
    expect(events.map((e) => e.event)).toEqual(["started", "stdout", "stdout", "result"]);
  });

  it("names the session in started and answers its state in result", async () => {
    const { app } = buildTestApp({ env: ENV });
    const created = await app.request("/sessions", {
      method: "POST",
      headers: { "X-API-Key": KEY },
    });
    const { session } = await readJson(created);
    const events = await streamed(app, { command: "pwd", sessionId: session.id });
    expect(events[0]?.data).toMatchObject({ command: "pwd", sessionId: session.id });
    expect(events.at(-1)).toMatchObject({
      event: "result",
      data: { session: { id: session.id, cwd: session.workspace } },
    });
  });

  it("redacts a secret split across two pieces of output (and in the result)", async () => {
    const executor = new FakeExecutor().respond(
      piecewise([
        ["stdout", "key=AKIAIOSF"],
        ["stdout", "ODNN7EXAMPLE done\nmail: user@exa"],
        ["stdout", "mple.com\n"],
      ]),
    );
    const { app } = buildTestApp({ env: ENV, executor, redact: bundleRedactor() });
    const events = await streamed(app, { command: "env" });
    const live = events
      .filter((e) => e.event === "stdout")
      .map((e) => e.data.text)
      .join("");
    expect(live).toBe("key=[REDACTED:aws_access_key] done\nmail: [REDACTED:email]\n");
    const result = events.at(-1)?.data;
    expect(result.result.stdout).toBe(live);
    expect(JSON.stringify(events)).not.toMatch(/AKIA|IOSF|ODNN|user@/);
  });

  it.each([
    ["busy", notRun("busy"), "busy"],
    ["unavailable", notRun("unavailable"), "agentsh_unavailable"],
  ])(
    "a refusal after the stream opened (%s) is an error event with the envelope, and ends it",
    async (_name, answer, code) => {
      const executor = new FakeExecutor().respond(() => answer);
      const { app } = buildTestApp({ env: ENV, executor });
      const events = await streamed(app, { command: "id" });
      expect(events.map((e) => e.event)).toEqual(["started", "error"]);
      expect(events[1]?.data).toEqual({
        error: expect.objectContaining({ code, message: expect.any(String) }),
        requestId: events[0]?.data.requestId,
      });
    },
  );

  it("degraded enforcement: error event enforcement_degraded, nothing runs", async () => {
    const { app, executor } = buildTestApp({
      env: ENV,
      enforcement: { mode: "degraded", checks: { "canary: sudo denied": false }, problems: ["x"] },
    });
    const events = await streamed(app, { command: "id" });
    expect(events.map((e) => e.event)).toEqual(["started", "error"]);
    expect(events[1]?.data.error.code).toBe("enforcement_degraded");
    expect(executor.commands).toHaveLength(0);
  });

  it("a busy session is an error event session_busy", async () => {
    const release = gate(5_000, "the first command");
    const executor = new FakeExecutor().respond(async (request) => {
      if (request.command !== "slow") return undefined;
      await release.promise;
      return okResult();
    });
    const { app } = buildTestApp({ env: ENV, executor });
    const { session } = await readJson(
      await app.request("/sessions", { method: "POST", headers: { "X-API-Key": KEY } }),
    );
    const first = app.request(
      "/execute",
      postJson({ command: "slow", sessionId: session.id }, SSE),
    );
    const firstEvents = eventReader(await first);
    try {
      await firstEvents.until((e) => e.event === "started");
      const events = await streamed(app, { command: "id", sessionId: session.id });
      expect(events.map((e) => e.event)).toEqual(["started", "error"]);
      expect(events[1]?.data.error.code).toBe("session_busy");
    } finally {
      release.open();
    }
    expect((await firstEvents.all()).at(-1)?.event).toBe("result");
  });

  it("a validation error is plain JSON 400 before any stream", async () => {
    const { app, executor } = buildTestApp({ env: ENV });
    const res = await app.request("/execute", postJson({ command: "" }, SSE));
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect((await readJson(res)).error.code).toBe("validation_failed");
    expect(executor.commands).toHaveLength(0);
  });

  it("an auth error is plain JSON 401 before any stream", async () => {
    const { app, executor } = buildTestApp({ env: ENV });
    const res = await app.request(
      "/execute",
      postJson({ command: "id" }, { Accept: "text/event-stream" }),
    );
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect((await readJson(res)).error.code).toBe("api_key_missing");
    expect(executor.commands).toHaveLength(0);
  });

  it.each([
    ["application/json", false],
    ["*/*", false],
    ["text/event-stream", true],
    ["application/json, text/event-stream", true],
    ["text/event-stream;q=0.9", true],
    ["text/event-streamer", false],
  ])("Accept: %s → streamed: %s", async (accept, wantsStream) => {
    const { app } = buildTestApp({ env: ENV });
    const res = await app.request(
      "/execute",
      postJson({ command: "id" }, { "X-API-Key": KEY, Accept: accept }),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")?.startsWith("text/event-stream")).toBe(wantsStream);
    await res.body?.cancel();
  });

  it("sends a heartbeat every HEARTBEAT_MS while the command is quiet", async () => {
    // Only the interval is faked: the streams and the gate's deadline keep real time.
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const release = gate(5_000, "the quiet command");
    let started = false;
    const executor = new FakeExecutor().respond(async () => {
      started = true;
      await release.promise;
      return okResult("done\n");
    });
    const { app } = buildTestApp({ env: ENV, executor });
    const res = await app.request("/execute", postJson({ command: "sleep 25" }, SSE));
    const reader = eventReader(res);
    try {
      await reader.until((e) => e.event === "started");
      expect(started).toBe(true);
      vi.advanceTimersByTime(HEARTBEAT_MS - 1);
      vi.advanceTimersByTime(1);
      await reader.until((e) => e.event === "heartbeat");
      vi.advanceTimersByTime(HEARTBEAT_MS);
      await reader.until(
        (e) =>
          e.event === "heartbeat" &&
          reader.events.filter((x) => x.event === "heartbeat").length === 2,
      );
    } finally {
      release.open();
    }
    const events = await reader.all();
    expect(events.map((e) => e.event)).toEqual(["started", "heartbeat", "heartbeat", "result"]);
    expect(events[1]?.data).toEqual({});
    expect(HEARTBEAT_MS).toBeLessThanOrEqual(10_000);
  });

  it("a client that goes away aborts the command", async () => {
    const aborted = gate(5_000, "the command's abort signal");
    const executor = new FakeExecutor().respond(async (request) => {
      request.signal?.addEventListener("abort", () => aborted.open(), { once: true });
      await aborted.promise;
      return notRun("canceled");
    });
    const { app } = buildTestApp({ env: ENV, executor });
    const client = new AbortController();
    const res = await app.request("/execute", {
      ...postJson({ command: "sleep 60" }, SSE),
      signal: client.signal,
    });
    const reader = eventReader(res);
    await reader.until((e) => e.event === "started");
    client.abort();
    await aborted.promise;
    expect(executor.commands[0]?.signal?.aborted).toBe(true);
  });
});
