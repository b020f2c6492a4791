import { describe, expect, it } from "vitest";
import type { FakeExecutor } from "../../support/fake-executor.js";
import { buildTestApp, postJson, readJson } from "../../support/test-app.js";

/**
 * "Bad input" battery over the request layer, through `app.request` (no socket: Node's HTTP
 * parser is not in the way here, so header sizes and Content-Length framing are NOT limited by
 * it — those are covered over a real socket in node-server.test.ts).
 *
 * Every rejected request must get the right status, the JSON error envelope
 * `{error: {code, message, hint?, details?}, requestId}` with a JSON content type, no stack trace
 * text, and nothing may reach the executor.
 */

const KEY = "bad-input-test-key-0123456789";
const enc = new TextEncoder();
const STACK_TRACE = /\n\s+at |\bat \S+ \(|\.(?:ts|js|mjs|cjs):\d+:\d+|node_modules|file:\/\//;

/** Concatenates text (as UTF-8) and raw byte arrays into one body. */
function bytes(...parts: Array<string | number[]>): Uint8Array {
  const chunks = parts.map((part) =>
    typeof part === "string" ? enc.encode(part) : Uint8Array.from(part),
  );
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** A POST whose body is sent as given; `contentType: null` sends no Content-Type of ours. */
function post(
  body: string | Uint8Array | FormData,
  contentType: string | null = "application/json",
  headers: Record<string, string> = {},
): RequestInit {
  return {
    method: "POST",
    headers: contentType === null ? headers : { "Content-Type": contentType, ...headers },
    body,
  };
}

/** A body that is produced on demand in `chunkSize` pieces, with no Content-Length. */
function streamedBody(totalBytes: number, chunkSize = 1024) {
  let produced = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (produced >= totalBytes) {
        controller.close();
        return;
      }
      const size = Math.min(chunkSize, totalBytes - produced);
      produced += size;
      controller.enqueue(new Uint8Array(size).fill(0x20));
    },
  });
  return { stream, produced: () => produced };
}

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  const queue = [...chunks];
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = queue.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
}

/** Asserts the envelope and returns the parsed body. */
async function expectEnvelope(res: Response, status: number, code?: string | string[]) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json\b/);
  const text = await res.text();
  expect(text).not.toMatch(STACK_TRACE);
  const body = JSON.parse(text);
  expect(Object.keys(body).sort()).toEqual(["error", "requestId"]);
  expect(typeof body.error.code).toBe("string");
  expect(typeof body.error.message).toBe("string");
  for (const key of Object.keys(body.error)) {
    expect(["code", "message", "hint", "details"]).toContain(key);
  }
  expect(body.requestId).toEqual(expect.any(String));
  expect(res.headers.get("x-request-id")).toBe(body.requestId);
  if (typeof code === "string") expect(body.error.code).toBe(code);
  else if (code) expect(code).toContain(body.error.code);
  return body;
}

function expectNothingRan(executor: FakeExecutor) {
  expect(executor.commands).toEqual([]);
}

interface BadCase {
  name: string;
  path?: string;
  init: () => RequestInit;
  status: number;
  code: string | string[];
  env?: Record<string, string>;
}

function runBattery(title: string, cases: BadCase[]) {
  describe(title, () => {
    it.each(cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
      const { app, executor } = buildTestApp({ env: c.env ?? {} });
      const res = await app.request(c.path ?? "/execute", c.init());
      await expectEnvelope(res, c.status, c.code);
      expectNothingRan(executor);
    });
  });
}

runBattery("invalid JSON → 400 invalid_request", [
  {
    name: "truncated string",
    init: () => post('{"command":"l'),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "truncated after the key",
    init: () => post('{"command":'),
    status: 400,
    code: "invalid_request",
  },
  { name: "only an opening brace", init: () => post("{"), status: 400, code: "invalid_request" },
  {
    name: "trailing garbage",
    init: () => post('{"command":"ls"} x'),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "two concatenated objects",
    init: () => post('{"command":"ls"}{"command":"id"}'),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "single quotes",
    init: () => post("{'command':'ls'}"),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "unquoted key",
    init: () => post('{command:"ls"}'),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "trailing comma",
    init: () => post('{"command":"ls",}'),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "a comment",
    init: () => post('{"command":"ls" /* x */}'),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "a raw newline inside the string",
    init: () => post('{"command":"ls\n-la"}'),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "a raw NUL byte inside the string",
    init: () => post(bytes('{"command":"ls', [0x00], '"}')),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "a bad \\u escape",
    init: () => post('{"command":"\\uZZZZ"}'),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "NaN as a value",
    init: () => post('{"command":"ls","timeoutMs":NaN}'),
    status: 400,
    code: "invalid_request",
  },
  { name: "an empty body", init: () => post(""), status: 400, code: "invalid_request" },
  {
    name: "a whitespace-only body",
    init: () => post(" \r\n\t "),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "a UTF-16LE body with its BOM (FF FE)",
    init: () =>
      post(
        bytes(
          [0xff, 0xfe],
          [...enc.encode('{"command":"ls"}')].flatMap((b) => [b, 0x00]),
        ),
        "application/json; charset=utf-16",
      ),
    status: 400,
    code: "invalid_encoding",
  },
  {
    name: "a UTF-8 BOM followed by nothing",
    init: () => post(bytes([0xef, 0xbb, 0xbf])),
    status: 400,
    code: "invalid_request",
  },
]);

runBattery("invalid UTF-8 in the body → 400 (decided: a clear 400, never a U+FFFD command)", [
  {
    name: "0xFF 0xFE inside the command",
    init: () => post(bytes('{"command":"l', [0xff, 0xfe], 's"}')),
    status: 400,
    code: ["invalid_encoding"],
  },
  {
    name: "a UTF-8-encoded lone surrogate (ED A0 80) inside the command",
    init: () => post(bytes('{"command":"l', [0xed, 0xa0, 0x80], 's"}')),
    status: 400,
    code: ["invalid_encoding"],
  },
  {
    name: "an overlong encoding of '/' (C0 AF) inside the command",
    init: () => post(bytes('{"command":"cat ', [0xc0, 0xaf], 'etc/passwd"}')),
    status: 400,
    code: ["invalid_encoding"],
  },
  {
    name: "a truncated multibyte sequence (E2 82) inside the command",
    init: () => post(bytes('{"command":"echo ', [0xe2, 0x82], '"}')),
    status: 400,
    code: ["invalid_encoding"],
  },
  {
    name: "a lone continuation byte outside any string",
    init: () => post(bytes('{"command":"ls"}', [0x80])),
    status: 400,
    code: "invalid_encoding",
  },
]);

runBattery("a command that is not well-formed Unicode → 400 (decided: cannot reach argv as-is)", [
  {
    name: "a JSON-escaped lone high surrogate",
    init: () => post('{"command":"echo \\ud800"}'),
    status: 400,
    code: "validation_failed",
  },
  {
    name: "a JSON-escaped lone low surrogate",
    init: () => post('{"command":"\\udc00 ls"}'),
    status: 400,
    code: "validation_failed",
  },
]);

runBattery("content types other than JSON → 415 unsupported_media_type", [
  {
    name: "text/plain",
    init: () => post('{"command":"ls"}', "text/plain"),
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "no Content-Type at all",
    init: () => post(enc.encode('{"command":"ls"}'), null),
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "multipart/form-data",
    init: () => {
      const form = new FormData();
      form.set("command", "ls");
      return post(form, null);
    },
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "application/x-www-form-urlencoded",
    init: () => post("command=ls", "application/x-www-form-urlencoded"),
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "text/json",
    init: () => post('{"command":"ls"}', "text/json"),
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "application/jsonx",
    init: () => post('{"command":"ls"}', "application/jsonx"),
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "application/json-seq",
    init: () => post('{"command":"ls"}', "application/json-seq"),
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "a list of types",
    init: () => post('{"command":"ls"}', "application/json, text/plain"),
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "bare 'json'",
    init: () => post('{"command":"ls"}', "json"),
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "an empty Content-Type",
    init: () => post('{"command":"ls"}', ""),
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "a 64 KiB Content-Type (no Node header limit through app.request)",
    init: () => post('{"command":"ls"}', `text/${"a".repeat(64 * 1024)}`),
    status: 415,
    code: "unsupported_media_type",
  },
]);

runBattery("bodies over MAX_BODY_BYTES (16 KiB) → 413 body_too_large", [
  {
    name: "one byte over the limit (valid JSON padded with spaces)",
    init: () => post(`{"command":"ls"}${" ".repeat(16 * 1024 - 15)}`),
    status: 413,
    code: "body_too_large",
  },
  {
    name: "10 MB",
    init: () => post(`{"command":"${"x".repeat(10 * 1024 * 1024)}"}`),
    status: 413,
    code: "body_too_large",
  },
  {
    name: "over the limit with a non-JSON type (the size is checked first)",
    init: () => post("x".repeat(20_000), "text/plain"),
    status: 413,
    code: "body_too_large",
  },
  {
    name: "over the limit without an API key (the size is checked first)",
    init: () => post("x".repeat(20_000)),
    env: { API_KEY: KEY },
    status: 413,
    code: "body_too_large",
  },
]);

describe("streamed bodies without Content-Length", () => {
  it("a 10 MB chunked stream is cut off early with 413 and nothing runs", async () => {
    const { app, executor } = buildTestApp();
    const body = streamedBody(10 * 1024 * 1024);
    const res = await app.request("/execute", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: body.stream,
      duplex: "half",
    } as RequestInit);
    await expectEnvelope(res, 413, "body_too_large");
    expectNothingRan(executor);
    // The limit is enforced while reading: the rest of the 10 MB is never pulled.
    expect(body.produced()).toBeLessThan(256 * 1024);
  });

  it("a small stream split inside a multibyte character is reassembled and runs exactly", async () => {
    const { app, executor } = buildTestApp();
    const whole = enc.encode('{"command":"echo €uro"}');
    const cut = whole.indexOf(0xe2) + 1; // in the middle of '€' (E2 82 AC)
    const res = await app.request("/execute", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: streamOf([whole.slice(0, cut), whole.slice(cut)]),
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(200);
    expect(executor.commands.map((c) => c.command)).toEqual(["echo €uro"]);
  });
});

runBattery("wrong shapes → 400 validation_failed", [
  ...(
    [
      ["a number", 42],
      ["true", true],
      ["false", false],
      ["null", null],
      ["an array of strings", ["ls"]],
      ["a nested object", { command: "ls" }],
      ["an empty object", {}],
    ] as const
  ).map(
    ([name, command]): BadCase => ({
      name: `command is ${name}`,
      init: () => postJson({ command }),
      status: 400,
      code: "validation_failed",
    }),
  ),
  ...(
    [
      ["an array", [{ command: "ls" }]],
      ["null", null],
      ["a string", "ls"],
      ["a number", 42],
      ["true", true],
    ] as const
  ).map(
    ([name, body]): BadCase => ({
      name: `the body is ${name}`,
      init: () => post(JSON.stringify(body)),
      status: 400,
      code: "validation_failed",
    }),
  ),
  {
    name: "no command",
    init: () => postJson({ timeoutMs: 1000 }),
    status: 400,
    code: "validation_failed",
  },
  {
    name: "an unknown key next to the command",
    init: () => postJson({ command: "ls", cwd: "/" }),
    status: 400,
    code: "validation_failed",
  },
  {
    name: "a deeply nested command (5000 levels)",
    init: () => post(`{"command":${"[".repeat(5000)}${"]".repeat(5000)}}`),
    status: 400,
    code: "validation_failed",
  },
  ...(
    [
      ["a string", "1000"],
      ["a float", 1000.5],
      ["null", null],
      ["negative", -1],
      ["zero", 0],
      ["just under the minimum", 99],
      ["over the maximum", 300_001],
      ["an object", { ms: 1000 }],
    ] as const
  ).map(
    ([name, timeoutMs]): BadCase => ({
      name: `timeoutMs is ${name}`,
      init: () => postJson({ command: "ls", timeoutMs }),
      status: 400,
      code: "validation_failed",
    }),
  ),
  {
    name: "timeoutMs overflows to Infinity (1e400)",
    init: () => post('{"command":"ls","timeoutMs":1e400}'),
    status: 400,
    code: "validation_failed",
  },
]);

runBattery("NUL bytes → 400 validation_failed", [
  {
    name: "NUL in the middle",
    init: () => postJson({ command: "ls\u0000 -la" }),
    status: 400,
    code: "validation_failed",
  },
  {
    name: "NUL at the end",
    init: () => postJson({ command: "ls\u0000" }),
    status: 400,
    code: "validation_failed",
  },
  {
    name: "only a NUL",
    init: () => postJson({ command: "\u0000" }),
    status: 400,
    code: "validation_failed",
  },
]);

runBattery("blank commands → 400 validation_failed", [
  ...["", " ", "\n", "\n\n\n", " \t\r\n ", "\u00a0", "\u2028\u2029", "\ufeff", "\u3000"].map(
    (command): BadCase => ({
      name: `command ${JSON.stringify(command)}`,
      init: () => postJson({ command }),
      status: 400,
      code: "validation_failed",
    }),
  ),
]);

runBattery("over 1024 characters → 400 validation_failed (zod 4.6 counts code points)", [
  {
    name: "1025 × 'a'",
    init: () => postJson({ command: "a".repeat(1025) }),
    status: 400,
    code: "validation_failed",
  },
  {
    name: "1025 × '€'",
    init: () => postJson({ command: "€".repeat(1025) }),
    status: 400,
    code: "validation_failed",
  },
  {
    name: "1025 × '😀' (2050 UTF-16 units)",
    init: () => postJson({ command: "😀".repeat(1025) }),
    status: 400,
    code: "validation_failed",
  },
  {
    name: "1024 × 'a' plus one '😀'",
    init: () => postJson({ command: `${"a".repeat(1024)}😀` }),
    status: 400,
    code: "validation_failed",
  },
]);

describe("length boundaries that are accepted", () => {
  it.each([
    ["1024 × 'a'", "a".repeat(1024)],
    ["1024 × '€' (3072 UTF-8 bytes)", "€".repeat(1024)],
    // 2048 UTF-16 code units: the installed zod (4.6) measures strings in code points.
    ["1024 × '😀' (2048 UTF-16 units, 1024 code points)", "😀".repeat(1024)],
    ["1023 × 'a' plus one '😀'", `${"a".repeat(1023)}😀`],
  ])("%s runs, byte-for-byte", async (_name, command) => {
    const { app, executor } = buildTestApp();
    const res = await app.request("/execute", postJson({ command }));
    expect(res.status).toBe(200);
    expect((await readJson(res)).command).toBe(command);
    expect(executor.commands.map((c) => c.command)).toEqual([command]);
  });
});

describe("duplicate keys (decided: ambiguous → 400; a proxy or log may read the first value)", () => {
  it.each([
    ['two "command" keys', '{"command":"echo safe","command":"rm -rf /"}'],
    ['two "timeoutMs" keys', '{"command":"ls","timeoutMs":1000,"timeoutMs":2000}'],
  ])("%s → 400 and nothing runs", async (_name, body) => {
    const { app, executor } = buildTestApp();
    const res = await app.request("/execute", post(body));
    await expectEnvelope(res, 400, ["duplicate_key"]);
    expectNothingRan(executor);
  });
});

describe("prototype-pollution keys → 400 validation_failed, and nothing is polluted", () => {
  it.each([
    ["__proto__ next to the command", '{"command":"ls","__proto__":{"polluted":true}}'],
    ["__proto__ carrying the command", '{"__proto__":{"command":"ls"}}'],
    ["constructor.prototype", '{"command":"ls","constructor":{"prototype":{"polluted":true}}}'],
    ["constructor alone", '{"constructor":{"prototype":{"command":"ls"}}}'],
    ["prototype", '{"command":"ls","prototype":{"polluted":true}}'],
    ["toString", '{"command":"ls","toString":"x"}'],
    ["hasOwnProperty", '{"command":"ls","hasOwnProperty":"x"}'],
    ["__proto__ inside the command", '{"command":{"__proto__":{"polluted":true}}}'],
  ])("%s", async (_name, body) => {
    const { app, executor } = buildTestApp();
    const res = await app.request("/execute", post(body));
    await expectEnvelope(res, 400, "validation_failed");
    expectNothingRan(executor);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).command).toBeUndefined();
  });
});

describe("overlong headers (app.request: no Node limit here; the 431 is in node-server.test.ts)", () => {
  const big = "k".repeat(64 * 1024);

  it.each([
    ["a 64 KiB X-API-Key", { "X-API-Key": big }],
    ["a 64 KiB Bearer token", { Authorization: `Bearer ${big}` }],
    ["the key followed by 64 KiB", { "X-API-Key": `${KEY}${big}` }],
  ])("%s → 401 api_key_invalid, nothing runs", async (_name, headers) => {
    const { app, executor, logLines } = buildTestApp({ env: { API_KEY: KEY } });
    const res = await app.request("/execute", postJson({ command: "id" }, headers));
    await expectEnvelope(res, 401, "api_key_invalid");
    expectNothingRan(executor);
    expect(logLines.join("\n")).not.toContain(big.slice(0, 1024));
  });

  it("a 64 KiB X-Forwarded-For neither breaks validation nor changes the bucket (0 trusted hops)", async () => {
    const { app, executor } = buildTestApp({ env: { RATE_LIMIT_EXECUTE: "1" } });
    const xff = "203.0.113.9, ".repeat(5000);
    const bad = await app.request(
      "/execute",
      post('{"command":', "application/json", { "X-Forwarded-For": xff }),
    );
    await expectEnvelope(bad, 400, "invalid_request");
    const again = await app.request(
      "/execute",
      postJson({ command: "id" }, { "X-Forwarded-For": `${xff}198.51.100.1` }),
    );
    await expectEnvelope(again, 429, "rate_limited");
    expectNothingRan(executor);
  });

  it("a 64 KiB X-Forwarded-For of only commas behind one trusted proxy falls back to the socket", async () => {
    const { app, executor, logLines } = buildTestApp({ env: { TRUSTED_PROXY_HOPS: "1" } });
    const res = await app.request(
      "/execute",
      postJson({ command: "id" }, { "X-Forwarded-For": ",".repeat(65536) }),
    );
    expect(res.status).toBe(200);
    expect(executor.commands).toHaveLength(1);
    expect(logLines.at(-1)).toContain('"client":"192.0.2.10"');
  });

  it("a hostile X-Request-Id is replaced by a generated one", async () => {
    const { app } = buildTestApp();
    for (const id of ['"><script>', "a b", "x".repeat(256), "id\u00e9"]) {
      const res = await app.request(
        "/execute",
        post("{", "application/json", { "X-Request-Id": id }),
      );
      const body = await expectEnvelope(res, 400, "invalid_request");
      expect(body.requestId).not.toBe(id);
      expect(body.requestId).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

runBattery("unknown routes → 404 not_found", [
  ...(["GET", "POST", "DELETE"] as const).map(
    (method): BadCase => ({
      name: `${method} /nope`,
      path: "/nope",
      init: () => ({ method }),
      status: 404,
      code: "not_found",
    }),
  ),
  {
    name: "POST /execute/extra with a valid body",
    path: "/execute/extra",
    init: () => postJson({ command: "ls" }),
    status: 404,
    code: "not_found",
  },
  {
    name: "GET /execute/extra",
    path: "/execute/extra",
    init: () => ({ method: "GET" }),
    status: 404,
    code: "not_found",
  },
  {
    name: "POST /EXECUTE (paths are case-sensitive)",
    path: "/EXECUTE",
    init: () => postJson({ command: "ls" }),
    status: 404,
    code: "not_found",
  },
  {
    name: "POST //execute",
    path: "//execute",
    init: () => postJson({ command: "ls" }),
    status: 404,
    code: "not_found",
  },
  {
    name: "POST /execute%00",
    path: "/execute%00",
    init: () => postJson({ command: "ls" }),
    status: 404,
    code: "not_found",
  },
  {
    name: "POST /execute%2f",
    path: "/execute%2f",
    init: () => postJson({ command: "ls" }),
    status: 404,
    code: "not_found",
  },
  {
    name: "POST /execute;x",
    path: "/execute;x",
    init: () => postJson({ command: "ls" }),
    status: 404,
    code: "not_found",
  },
  {
    name: "GET /demo/unknown",
    path: "/demo/unknown",
    init: () => ({ method: "GET" }),
    status: 404,
    code: "not_found",
  },
  {
    name: "GET /demo/allowed/extra",
    path: "/demo/allowed/extra",
    init: () => ({ method: "GET" }),
    status: 404,
    code: "not_found",
  },
  {
    name: "GET /demo/..%2f..%2fetc (encoded traversal stays one segment)",
    path: "/demo/..%2f..%2fetc",
    init: () => ({ method: "GET" }),
    status: 404,
    code: "not_found",
  },
  {
    name: "GET /demo/%2e%2e/%2e%2e/etc (dot segments resolve to /etc)",
    path: "/demo/%2e%2e/%2e%2e/etc",
    init: () => ({ method: "GET" }),
    status: 404,
    code: "not_found",
  },
  {
    name: "GET /demo/%ZZ (bad escape)",
    path: "/demo/%ZZ",
    init: () => ({ method: "GET" }),
    status: 404,
    code: "not_found",
  },
  {
    name: "GET /nope% (bad escape)",
    path: "/nope%",
    init: () => ({ method: "GET" }),
    status: 404,
    code: "not_found",
  },
  {
    name: "GET /health%00",
    path: "/health%00",
    init: () => ({ method: "GET" }),
    status: 404,
    code: "not_found",
  },
]);

describe("trailing slashes (decided: strict routes → 404, never a 405 that says 'use <this method>')", () => {
  it.each([
    ["POST", "/execute/"],
    ["POST", "/execute//"],
    ["GET", "/health/"],
    ["GET", "/demo/"],
    ["GET", "//"],
  ] as const)("%s %s → 404 not_found and nothing runs", async (method, path) => {
    const { app, executor } = buildTestApp();
    const init = method === "POST" ? postJson({ command: "ls" }) : { method };
    const res = await app.request(path, init);
    const allow = res.headers.get("allow");
    // Whatever the fix, a 405 must not list the method it refused.
    if (allow !== null) expect(allow.split(/,\s*/)).not.toContain(method);
    await expectEnvelope(res, 404, "not_found");
    expectNothingRan(executor);
  });
});

describe("wrong methods → 405 method_not_allowed with Allow", () => {
  it.each([
    ["PUT", "/execute", "POST"],
    ["DELETE", "/execute", "POST"],
    ["PATCH", "/execute", "POST"],
    ["OPTIONS", "/execute", "POST"],
    ["GET", "/execute", "POST"],
    ["FOO", "/execute", "POST"],
    ["POST", "/health", "GET"],
    ["PUT", "/health", "GET"],
    ["DELETE", "/health", "GET"],
    ["POST", "/demo", "GET"],
    ["POST", "/demo/allowed", "GET"],
    ["PUT", "/demo/allowed", "GET"],
    ["DELETE", "/demo/allowed", "GET"],
    ["PATCH", "/demo/allowed", "GET"],
    ["DELETE", "/demo/unknown", "GET"],
    ["POST", "/", "GET"],
    ["DELETE", "/", "GET"],
  ] as const)("%s %s → 405, Allow: %s", async (method, path, allow) => {
    const { app, executor } = buildTestApp();
    const init: RequestInit =
      method === "GET" || method === "OPTIONS"
        ? { method }
        : post('{"command":"ls"}', "application/json");
    const res = await app.request(path, { ...init, method });
    expect(res.headers.get("allow")).toBe(allow);
    await expectEnvelope(res, 405, "method_not_allowed");
    expectNothingRan(executor);
  });

  it("HEAD /execute → 405 with Allow and no body", async () => {
    const { app, executor } = buildTestApp();
    const res = await app.request("/execute", { method: "HEAD" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect(await res.text()).toBe("");
    expectNothingRan(executor);
  });
});

describe("query-string junk", () => {
  it.each([
    "/execute?%",
    "/execute?%ZZ&&&=&a=%",
    "/execute?command=rm%20-rf%20%2F",
    `/execute?${"a=1&".repeat(2000)}`,
    "/execute?__proto__[polluted]=1&constructor[prototype][polluted]=1",
  ])("%s with a bad body → 400, nothing runs", async (path) => {
    const { app, executor } = buildTestApp();
    const res = await app.request(path, post('{"command":'));
    await expectEnvelope(res, 400, "invalid_request");
    expectNothingRan(executor);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("is ignored next to a valid body: the body's command runs, not the query's", async () => {
    const { app, executor } = buildTestApp();
    const res = await app.request(
      "/execute?command=rm%20-rf%20%2F&%ZZ",
      postJson({ command: "id" }),
    );
    expect(res.status).toBe(200);
    expect(executor.commands.map((c) => c.command)).toEqual(["id"]);
  });

  it.each([
    ["a bad escape", "api_key=%ZZ"],
    ["a trailing %", `api_key=${KEY}%`],
    ["a NUL", `api_key=${KEY}%00`],
    ["an array form", `api_key[]=${KEY}`],
    ["the key second (the first value wins)", `api_key=wrong&api_key=${KEY}`],
    ["a leading '+' (space)", `api_key=+${KEY}`],
  ])("?api_key with %s → 401, nothing runs", async (_name, query) => {
    const { app, executor } = buildTestApp({ env: { API_KEY: KEY } });
    const res = await app.request(`/execute?${query}`, postJson({ command: "id" }));
    await expectEnvelope(res, 401, ["api_key_invalid", "api_key_missing"]);
    expectNothingRan(executor);
  });

  it.each([
    ["/health?%ZZ", 200],
    ["/demo?%%%", 200],
    ["/demo/unknown?%ZZ", 404],
  ])("GET %s → %i with JSON", async (path, status) => {
    const { app, executor } = buildTestApp();
    const res = await app.request(path);
    expect(res.status).toBe(status);
    expect(res.headers.get("content-type")).toMatch(/^application\/json\b/);
    expectNothingRan(executor);
  });
});

describe("accepted edge cases (documenting the decisions)", () => {
  it("a UTF-8 BOM before the JSON is ignored (RFC 8259 §8.1 allows it) and not part of the command", async () => {
    const { app, executor } = buildTestApp();
    const res = await app.request("/execute", post(bytes([0xef, 0xbb, 0xbf], '{"command":"ls"}')));
    expect(res.status).toBe(200);
    expect(executor.commands.map((c) => c.command)).toEqual(["ls"]);
  });

  it("whitespace around the JSON text is fine", async () => {
    const { app, executor } = buildTestApp();
    const res = await app.request("/execute", post(' \r\n\t{"command":"ls"}\r\n '));
    expect(res.status).toBe(200);
    expect(executor.commands.map((c) => c.command)).toEqual(["ls"]);
  });

  it("a body of exactly MAX_BODY_BYTES is accepted", async () => {
    const { app, executor } = buildTestApp();
    const body = `{"command":"ls"}${" ".repeat(16 * 1024 - 16)}`;
    expect(enc.encode(body).length).toBe(16 * 1024);
    expect((await app.request("/execute", post(body))).status).toBe(200);
    expect(executor.commands).toHaveLength(1);
  });

  it("leading/trailing whitespace and newlines in the command are kept byte-for-byte", async () => {
    const { app, executor } = buildTestApp();
    const command = "  echo 'a  b'\n\tls \r\n";
    const res = await app.request("/execute", postJson({ command }));
    expect(res.status).toBe(200);
    expect((await readJson(res)).command).toBe(command);
    expect(executor.commands.map((c) => c.command)).toEqual([command]);
  });

  it("a real U+FFFD sent as valid UTF-8 (EF BF BD) is accepted", async () => {
    const { app, executor } = buildTestApp();
    const res = await app.request(
      "/execute",
      post(bytes('{"command":"echo ', [0xef, 0xbf, 0xbd], '"}')),
    );
    expect(res.status).toBe(200);
    expect(executor.commands.map((c) => c.command)).toEqual(["echo \ufffd"]);
  });

  it.each([
    ["1e3", 1000],
    ["1000.0", 1000],
    ["100", 100],
    ["300000", 300_000],
  ])("timeoutMs written as %s is the integer %i", async (literal, expected) => {
    const { app, executor } = buildTestApp();
    const res = await app.request("/execute", post(`{"command":"ls","timeoutMs":${literal}}`));
    expect(res.status).toBe(200);
    expect(executor.commands[0]?.timeoutMs).toBe(expected);
  });

  it.each([
    "application/json",
    "application/json; charset=utf-8",
    'application/json;charset="UTF-8"',
    "application/json ; charset=utf-8",
    "APPLICATION/JSON",
    "application/vnd.api+json",
    "application/problem+json",
    // A +json structured-syntax suffix (RFC 6839); the body is still validated as {command}.
    "application/json-patch+json",
  ])("Content-Type %s is JSON", async (type) => {
    const { app, executor } = buildTestApp();
    const res = await app.request("/execute", post('{"command":"ls"}', type));
    expect(res.status).toBe(200);
    expect(executor.commands.map((c) => c.command)).toEqual(["ls"]);
  });

  it("a +json type the 415 check accepts is also parsed (no misleading 'command must be a string')", async () => {
    // requireJsonBody accepts '+' inside the suffix prefix; Hono's validator regex does not.
    const { app, executor } = buildTestApp();
    const res = await app.request("/execute", post('{"command":"ls"}', "application/vnd.a+b+json"));
    expect([200, 415]).toContain(res.status);
    if (res.status === 200) expect(executor.commands.map((c) => c.command)).toEqual(["ls"]);
    else expectNothingRan(executor);
  });
});
