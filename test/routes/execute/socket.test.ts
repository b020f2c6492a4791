import type { Server } from "node:http";
import net, { type AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listen, SERVER_TIMEOUTS } from "../../../src/listen.js";
import type { FakeExecutor } from "../../support/fake-executor.js";
import { buildTestApp } from "../../support/test-app.js";

/**
 * The app behind `@hono/node-server` on a real socket (127.0.0.1, port 0), spoken to in raw
 * HTTP/1.1 over `node:net`. This is where Node's own HTTP parser applies (header size limit,
 * Content-Length framing, malformed requests): its rejections are Node's plain responses
 * (`HTTP/1.1 431` / `400` + `Connection: close`, no body), not our JSON envelope — that is
 * expected and asserted as such. Every wait has a deadline.
 *
 * The server is production's (`listen` from src/listen.ts, as src/server.ts uses it): header
 * timeout 10 s, request timeout 30 s, Node's 16 KiB header limit.
 */

const DEADLINE_MS = 2_000;
const VALID = '{"command":"echo ok"}';

let server: Server;
let port: number;
let executor: FakeExecutor;
const sockets = new Set<net.Socket>();

beforeEach(async () => {
  const built = buildTestApp({ socketAddress: "127.0.0.1", env: { RATE_LIMIT_EXECUTE: "1000" } });
  executor = built.executor;
  server = listen(built.app, { port: 0, hostname: "127.0.0.1" });
  await withDeadline(
    new Promise<void>((resolve, reject) => {
      if (server.listening) resolve();
      server.once("listening", () => resolve());
      server.once("error", reject);
    }),
    DEADLINE_MS,
    "server did not start listening",
  );
  port = (server.address() as AddressInfo).port;
});

afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  server.closeAllConnections();
  await withDeadline(
    new Promise<void>((resolve) => server.close(() => resolve())),
    DEADLINE_MS,
    "server did not close",
  );
});

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

interface Exchange {
  /** Everything the server sent, decoded as Latin-1 (bytes preserved). */
  text: string;
  /** Status codes of every response in `text`, in order. */
  statuses: number[];
  /** The server ended or reset the connection before the deadline. */
  closed: boolean;
}

/**
 * Sends `parts` over a fresh connection and collects the answer until the server closes the
 * connection or `deadlineMs` passes. `end: false` keeps our side open (no FIN) after sending.
 */
function exchange(
  parts: Array<string | Uint8Array>,
  { end = true, deadlineMs = DEADLINE_MS }: { end?: boolean; deadlineMs?: number } = {},
): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    sockets.add(socket);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      sockets.delete(socket);
      const text = Buffer.concat(chunks).toString("latin1");
      const statuses = [...text.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((m) => Number(m[1]));
      resolve({ text, statuses, closed });
    };
    const timer = setTimeout(() => finish(false), deadlineMs);
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("end", () => finish(true));
    socket.on("close", () => finish(true));
    socket.on("error", () => finish(true));
    socket.on("connect", () => {
      for (const part of parts) socket.write(part);
      if (end) socket.end();
    });
  });
}

/** Opens a connection, sends `parts` and leaves it open; destroyed in afterEach at the latest. */
function holdOpen(parts: string[]): Promise<{ socket: net.Socket; received: () => string }> {
  return withDeadline(
    new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1");
      sockets.add(socket);
      let received = "";
      socket.on("data", (chunk) => {
        received += chunk.toString("latin1");
      });
      socket.on("error", () => {});
      socket.once("connect", () => {
        for (const part of parts) socket.write(part);
        resolve({ socket, received: () => received });
      });
      socket.once("error", reject);
    }),
    DEADLINE_MS,
    "could not connect",
  );
}

function requestHead(headers: string[], path = "/execute", method = "POST"): string {
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers.map((h) => `${h}\r\n`).join("")}\r\n`;
}

/** JSON body of a single response (Content-Length or chunked framing). */
function jsonBodyOf(text: string): unknown {
  const split = text.indexOf("\r\n\r\n");
  const head = text.slice(0, split).toLowerCase();
  let body = text.slice(split + 4);
  if (head.includes("transfer-encoding: chunked")) {
    let decoded = "";
    for (;;) {
      const lineEnd = body.indexOf("\r\n");
      const size = Number.parseInt(body.slice(0, lineEnd), 16);
      if (!size) break;
      decoded += body.slice(lineEnd + 2, lineEnd + 2 + size);
      body = body.slice(lineEnd + 2 + size + 2);
    }
    body = decoded;
  }
  return JSON.parse(Buffer.from(body, "latin1").toString("utf8"));
}

function expectEnvelopeIn(text: string, code: string) {
  expect(text).toMatch(/\r\ncontent-type: application\/json/i);
  const body = jsonBodyOf(text) as { error: { code: string; message: string }; requestId: string };
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  expect(body.requestId).toEqual(expect.any(String));
  expect(text).not.toMatch(/\n\s+at |node_modules/);
}

/** A normal request over fetch still works and runs exactly its command. */
async function expectStillServing() {
  const before = executor.commands.length;
  const res = await fetch(`http://127.0.0.1:${port}/execute`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: VALID,
    signal: AbortSignal.timeout(DEADLINE_MS),
  });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { command: string }).command).toBe("echo ok");
  expect(executor.commands.slice(before).map((c) => c.command)).toEqual(["echo ok"]);
}

describe("real socket: what Node's HTTP parser rejects before the app", () => {
  it("a 100 KiB header line → Node's own 431 (no JSON envelope), connection closed", async () => {
    const head = requestHead([
      `X-Junk: ${"a".repeat(100 * 1024)}`,
      "Content-Type: application/json",
      `Content-Length: ${VALID.length}`,
    ]);
    const result = await exchange([head, VALID], { end: false });
    expect(result.statuses).toEqual([431]);
    expect(result.closed).toBe(true);
    expect(result.text).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(executor.commands).toEqual([]);
    await expectStillServing();
  });

  it("a 64 KiB X-API-Key → Node's 431 as well (the app never sees it)", async () => {
    const head = requestHead([
      `X-API-Key: ${"k".repeat(64 * 1024)}`,
      "Content-Type: application/json",
      `Content-Length: ${VALID.length}`,
    ]);
    const result = await exchange([head, VALID], { end: false });
    expect(result.statuses).toEqual([431]);
    expect(executor.commands).toEqual([]);
    await expectStillServing();
  });

  it.each([
    ["not a number", ["Content-Length: abc"]],
    ["negative", ["Content-Length: -1"]],
    ["a fraction", ["Content-Length: 1.5"]],
    ["absurdly large", ["Content-Length: 99999999999999999999"]],
    ["two different values", [`Content-Length: ${VALID.length}`, "Content-Length: 5"]],
    [
      "with Transfer-Encoding: chunked",
      [`Content-Length: ${VALID.length}`, "Transfer-Encoding: chunked"],
    ],
  ])(
    "a Content-Length that is %s → Node's 400, connection closed",
    async (_name, lengthHeaders) => {
      const head = requestHead(["Content-Type: application/json", ...lengthHeaders]);
      const result = await exchange([head, VALID]);
      expect(result.statuses).toEqual([400]);
      expect(result.closed).toBe(true);
      expect(executor.commands).toEqual([]);
      await expectStillServing();
    },
  );

  it.each([
    ["an invalid chunk size", ["Transfer-Encoding: chunked"], `zz\r\n${VALID}\r\n0\r\n\r\n`],
    ["a NUL in a header value", ["X-API-Key: a\0b", `Content-Length: ${VALID.length}`], VALID],
    ["an obs-folded header", ["X-A: a", " b", `Content-Length: ${VALID.length}`], VALID],
  ])("%s → Node's 400, nothing runs", async (_name, headers, body) => {
    const head = requestHead(["Content-Type: application/json", ...headers]);
    const result = await exchange([head, body]);
    expect(result.statuses).toEqual([400]);
    expect(executor.commands).toEqual([]);
    await expectStillServing();
  });

  it("TLS bytes on the plain-HTTP port → 400 and closed", async () => {
    const clientHello = Uint8Array.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]);
    const result = await exchange([clientHello]);
    expect(result.statuses).toEqual([400]);
    expect(result.closed).toBe(true);
    await expectStillServing();
  });
});

describe("real socket: bodies that do not match their framing", () => {
  it("more body bytes than Content-Length: the extra bytes are not a command; all answers are 4xx", async () => {
    // The first 5 bytes are the body ('{"com'); the rest is parsed as a (broken) next request.
    const head = requestHead(["Content-Type: application/json", "Content-Length: 5"]);
    const result = await exchange([head, VALID]);
    expect(result.statuses.length).toBeGreaterThan(0);
    for (const status of result.statuses) expect(status).toBeGreaterThanOrEqual(400);
    for (const status of result.statuses) expect(status).toBeLessThan(500);
    expect(result.closed).toBe(true);
    expect(executor.commands).toEqual([]);
    await expectStillServing();
  });

  it("fewer body bytes than Content-Length, then the client half-closes → 400, nothing runs", async () => {
    const head = requestHead(["Content-Type: application/json", "Content-Length: 100"]);
    const result = await exchange([head, VALID], { end: true });
    expect(result.statuses).toEqual([400]);
    expect(result.closed).toBe(true);
    expect(executor.commands).toEqual([]);
    await expectStillServing();
  });

  it("a declared Content-Length over the limit → our 413 envelope before the body is sent", async () => {
    const head = requestHead(["Content-Type: application/json", "Content-Length: 20000"]);
    // The 413 is written at once; @hono/node-server then drains the unread body for up to
    // 500 ms before it closes the connection, which is what this exchange waits for.
    const result = await exchange([head], { end: false });
    expect(result.statuses).toEqual([413]);
    expectEnvelopeIn(result.text, "body_too_large");
    expect(executor.commands).toEqual([]);
    await expectStillServing();
  });

  it("a chunked body growing past the limit → our 413 envelope", async () => {
    const head = requestHead([
      "Content-Type: application/json",
      "Transfer-Encoding: chunked",
      "Connection: close",
    ]);
    const chunk = `3e8\r\n${" ".repeat(1000)}\r\n`;
    const result = await exchange([head, ...Array.from({ length: 100 }, () => chunk), "0\r\n\r\n"]);
    expect(result.statuses).toEqual([413]);
    expectEnvelopeIn(result.text, "body_too_large");
    expect(executor.commands).toEqual([]);
    await expectStillServing();
  });

  it("a valid chunked body under the limit runs exactly its command", async () => {
    const head = requestHead([
      "Content-Type: application/json",
      "Transfer-Encoding: chunked",
      "Connection: close",
    ]);
    const [a, b] = [VALID.slice(0, 7), VALID.slice(7)];
    const result = await exchange([
      head,
      `${a.length.toString(16)}\r\n${a}\r\n`,
      `${b.length.toString(16)}\r\n${b}\r\n`,
      "0\r\n\r\n",
    ]);
    expect(result.statuses).toEqual([200]);
    expect(executor.commands.map((c) => c.command)).toEqual(["echo ok"]);
  });

  it("invalid UTF-8 in the body → 400 envelope, nothing runs (decided; see bad-input.test.ts)", async () => {
    const body = Buffer.concat([
      Buffer.from('{"command":"l'),
      Buffer.from([0xff, 0xfe, 0xed, 0xa0, 0x80]),
      Buffer.from('s"}'),
    ]);
    const head = requestHead([
      "Content-Type: application/json",
      `Content-Length: ${body.length}`,
      "Connection: close",
    ]);
    const result = await exchange([head, body]);
    expect(result.statuses).toEqual([400]);
    expectEnvelopeIn(result.text, "invalid_encoding");
    expect(executor.commands).toEqual([]);
    await expectStillServing();
  });
});

describe("real socket: slow and expensive requests", () => {
  it("slowloris (partial headers, then silence) gets no answer, runs nothing, and does not block others", async () => {
    const slowHead = await holdOpen(["POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"]);
    const slowBody = await holdOpen([
      requestHead(["Content-Type: application/json", "Content-Length: 100"]),
      VALID.slice(0, 10),
    ]);
    // Other clients are served while both connections hang.
    await expectStillServing();
    await expectStillServing();
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Node answers these only at headersTimeout (10 s) / requestTimeout (30 s).
    expect(slowHead.received()).toBe("");
    expect(slowBody.received()).toBe("");
    expect(slowHead.socket.destroyed).toBe(false);
    expect(executor.commands.map((c) => c.command)).toEqual(["echo ok", "echo ok"]);
  });

  it("production's header timeout ends a client that never finishes its headers: 408, closed", async () => {
    expect(server.headersTimeout).toBe(SERVER_TIMEOUTS.headersTimeout);
    expect(server.requestTimeout).toBe(SERVER_TIMEOUTS.requestTimeout);
    const slowHead = await holdOpen(["POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"]);
    const deadline = Date.now() + SERVER_TIMEOUTS.headersTimeout + 3_000;
    while (!slowHead.socket.destroyed && !slowHead.received() && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(slowHead.received()).toMatch(/^HTTP\/1\.1 408/);
    expect(executor.commands).toEqual([]);
  }, 20_000);

  it("a path of 16 000 slashes (fits Node's 16 KiB header limit) is answered 404 promptly", async () => {
    // A trailing-slash regex like /\/+$/ is quadratic on "//…/x" (it blocked the event loop
    // for about 0.8 s per request in an earlier version): the 404/405 fallback must not be.
    const started = performance.now();
    const result = await exchange(
      [requestHead(["Connection: close"], `/nope${"/".repeat(16_000)}x`, "GET")],
      { deadlineMs: 5_000 },
    );
    const elapsed = performance.now() - started;
    expect(result.statuses).toEqual([404]);
    expectEnvelopeIn(result.text, "not_found");
    expect(elapsed).toBeLessThan(250);
    await expectStillServing();
  });
});
