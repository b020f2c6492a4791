import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { resolveClientAddress } from "../../../src/http/client-address.js";
import { buildTestApp } from "../../support/test-app.js";

/**
 * Property-based tests over the request layer (app.request, FakeExecutor at the process boundary).
 *
 * The model of a valid `POST /execute` body, as decided for this service:
 *   - at most MAX_BODY_BYTES (16 KiB) on the wire, else 413;
 *   - a JSON Content-Type, else 415;
 *   - valid UTF-8 (a leading UTF-8 BOM is ignored) holding one JSON text, else 400;
 *   - an object with only `command` and optionally `timeoutMs`;
 *   - `command`: a string of 1..1024 characters (code points, as zod 4.6 counts them), not blank
 *     by String.prototype.trim, no NUL, and well-formed Unicode (no lone surrogates);
 *   - `timeoutMs`: absent, or an integer in [100, MAX_COMMAND_TIMEOUT_MS].
 * A valid body runs exactly once with exactly that command string; anything else runs nothing.
 */

const MAX_BODY_BYTES = 16 * 1024;
const MAX_TIMEOUT_MS = 300_000;
const DEFAULT_TIMEOUT_MS = 30_000;
/** Override with FC_NUM_RUNS=… for a longer local soak. */
const NUM_RUNS = Number(process.env.FC_NUM_RUNS ?? 200);
const SOCKET = "192.0.2.10";
const enc = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

type Expected =
  | { run: true; command: string; timeoutMs: number }
  | { run: false; status: number; codes: string[] };

const reject = (status: number, ...codes: string[]): Expected => ({ run: false, status, codes });

/** Content types the service must treat as JSON, and ones it must refuse with 415. */
const JSON_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "Application/JSON",
  "application/vnd.api+json",
  "application/problem+json",
];
const OTHER_TYPES = [
  null,
  "text/plain",
  "text/json",
  "application/jsonx",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
];

const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function validRequest(value: unknown): { command: string; timeoutMs: number } | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  if (Object.keys(value).some((key) => key !== "command" && key !== "timeoutMs")) return undefined;
  const { command, timeoutMs } = value as Record<string, unknown>;
  if (typeof command !== "string") return undefined;
  if ([...command].length > 1024 || command.trim() === "" || command.includes("\0")) {
    return undefined;
  }
  if (LONE_SURROGATE.test(command)) return undefined;
  if (timeoutMs === undefined) return { command, timeoutMs: DEFAULT_TIMEOUT_MS };
  if (
    typeof timeoutMs !== "number" ||
    !Number.isInteger(timeoutMs) ||
    timeoutMs < 100 ||
    timeoutMs > MAX_TIMEOUT_MS
  ) {
    return undefined;
  }
  return { command, timeoutMs };
}

function expectedFor(body: Uint8Array, contentType: string | null): Expected {
  if (body.length > MAX_BODY_BYTES) return reject(413, "body_too_large");
  if (contentType === null || !JSON_TYPES.includes(contentType)) {
    return reject(415, "unsupported_media_type");
  }
  let text: string;
  try {
    text = strictUtf8.decode(body); // strips a leading BOM, throws on bad UTF-8
  } catch {
    return reject(400, "invalid_encoding");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return reject(400, "invalid_request", "validation_failed");
  }
  const valid = validRequest(value);
  return valid
    ? { run: true, ...valid }
    : reject(400, "validation_failed", "invalid_request", "duplicate_key");
}

/** One app for a whole property run; the executor is emptied before each example. */
function propertyApp(env: Record<string, string> = {}) {
  return buildTestApp({ env: { RATE_LIMIT_EXECUTE: "100000", ...env }, socketAddress: SOCKET });
}

async function checkExecute(
  built: ReturnType<typeof propertyApp>,
  body: Uint8Array,
  contentType: string | null,
) {
  const { app, executor } = built;
  executor.commands.length = 0;
  const res = await app.request("/execute", {
    method: "POST",
    headers: contentType === null ? {} : { "Content-Type": contentType },
    body,
  });
  expect([200, 400, 413, 415]).toContain(res.status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json\b/);
  const json = JSON.parse(await res.text());
  const expected = expectedFor(body, contentType);
  if (expected.run) {
    expect(res.status).toBe(200);
    expect(json.command).toBe(expected.command);
    expect(executor.commands.map((c) => [c.command, c.timeoutMs])).toEqual([
      [expected.command, expected.timeoutMs],
    ]);
  } else {
    expect(executor.commands).toEqual([]);
    expect(res.status).toBe(expected.status);
    expect(expected.codes).toContain(json.error.code);
    expect(json.requestId).toEqual(expect.any(String));
  }
}

// ---- generators -------------------------------------------------------------------------------

const blankish = fc.constantFrom(" ", "\n", "\t", "\r", "\u00a0", "\u2028", "\ufeff", "\u3000");
const commandArb = fc.oneof(
  { arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 40 }), weight: 4 },
  { arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }), weight: 2 },
  {
    arbitrary: fc.string({
      unit: fc.oneof(blankish, fc.constantFrom("a", "\0", "€")),
      maxLength: 8,
    }),
    weight: 2,
  },
  {
    arbitrary: fc
      .integer({ min: 1020, max: 1030 })
      .chain((n) =>
        fc.string({ unit: fc.constantFrom("a", "€", "😀", " ", "\n"), minLength: n, maxLength: n }),
      ),
    weight: 1,
  },
  { arbitrary: fc.jsonValue({ maxDepth: 2 }), weight: 1 },
);
const timeoutArb = fc.oneof(
  { arbitrary: fc.integer({ min: 100, max: MAX_TIMEOUT_MS }), weight: 5 },
  {
    arbitrary: fc.constantFrom(99, 100, MAX_TIMEOUT_MS, MAX_TIMEOUT_MS + 1, 0, -1, 1000.5),
    weight: 1,
  },
  { arbitrary: fc.integer(), weight: 1 },
  { arbitrary: fc.double(), weight: 1 },
  { arbitrary: fc.jsonValue({ maxDepth: 1 }), weight: 1 },
);
const extraKeys = fc.oneof(
  { arbitrary: fc.constant({}), weight: 4 },
  {
    arbitrary: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 1 }), {
      minKeys: 1,
      maxKeys: 2,
    }),
    weight: 1,
  },
);
/** Mostly request-shaped objects, so that a good share of examples is valid. */
const requestLike = fc
  .tuple(
    fc.record({ command: commandArb, timeoutMs: timeoutArb }, { requiredKeys: ["command"] }),
    fc.boolean(),
    extraKeys,
  )
  .map(([base, dropCommand, extra]) => {
    const request: Record<string, unknown> = { ...base, ...extra };
    if (dropCommand && Object.keys(extra).length > 0) delete request.command;
    return request;
  });

const jsonText = fc.oneof(
  { arbitrary: requestLike.map((v) => JSON.stringify(v)), weight: 5 },
  {
    arbitrary: fc.jsonValue({ stringUnit: "binary", maxDepth: 3 }).map((v) => JSON.stringify(v)),
    weight: 2,
  },
  {
    arbitrary: fc
      .integer({ min: MAX_BODY_BYTES - 40, max: MAX_BODY_BYTES + 40 })
      .map((n) => `{"command":"ls"}${" ".repeat(n - 16)}`),
    weight: 1,
  },
);
/** Valid-looking JSON with a few characters inserted somewhere. */
const mutated = fc
  .tuple(jsonText, fc.nat(), fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 3 }))
  .map(([text, at, junk]) => {
    const i = at % (text.length + 1);
    return text.slice(0, i) + junk + text.slice(i);
  });
const bodyText = fc.oneof(
  { arbitrary: jsonText, weight: 8 },
  { arbitrary: mutated, weight: 2 },
  { arbitrary: fc.string({ unit: "binary", maxLength: 60 }), weight: 1 },
  { arbitrary: fc.json({ stringUnit: "binary", maxDepth: 2 }), weight: 1 },
  // A UTF-8 BOM in front of anything.
  { arbitrary: jsonText.map((t) => `\ufeff${t}`), weight: 1 },
);
const contentTypeArb = fc.oneof(
  { arbitrary: fc.constantFrom(...JSON_TYPES), weight: 8 },
  { arbitrary: fc.constantFrom(...OTHER_TYPES), weight: 1 },
);

/** Values a Headers object accepts: Latin-1, no NUL/CR/LF. */
const headerValue = (maxLength: number) =>
  fc.string({ unit: "binary-ascii", maxLength }).filter((v) => !/[\0\r\n]/.test(v));

const stripOws = (value: string) => value.replace(/^[\t ]+|[\t ]+$/g, "");

// ---- properties -------------------------------------------------------------------------------

describe("POST /execute over arbitrary bodies", () => {
  it("answers 200/400/413/415 with JSON, never 5xx, and runs exactly the valid command", async () => {
    const built = propertyApp();
    let ran = 0;
    await fc.assert(
      fc.asyncProperty(bodyText, contentTypeArb, async (text, contentType) => {
        await checkExecute(built, enc.encode(text), contentType);
        ran += built.executor.commands.length;
      }),
      { numRuns: NUM_RUNS },
    );
    // The generators reach the executor in ~20% of examples (checked: mean ≈ 40 of 200); this
    // guards against a generator change that would leave the exact-command part untested.
    expect(ran).toBeGreaterThan(NUM_RUNS / 20);
  });

  it("never runs a command from a body that is not valid UTF-8", async () => {
    const invalidSequences = fc.constantFrom(
      [0xff],
      [0xfe],
      [0xff, 0xfe],
      [0x80],
      [0xc0, 0xaf], // overlong '/'
      [0xe0, 0x80, 0xaf], // overlong '/'
      [0xed, 0xa0, 0x80], // UTF-8-encoded lone high surrogate
      [0xed, 0xbf, 0xbf], // UTF-8-encoded lone low surrogate
      [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
      [0xe2, 0x82], // truncated '€'
      [0xf0, 0x9f, 0x98], // truncated emoji
    );
    const built = propertyApp();
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 20 }),
        fc.nat(),
        invalidSequences,
        async (command, at, bad) => {
          const text = enc.encode(JSON.stringify({ command: `x${command}` }));
          // Splice inside the command string: after `{"command":"` and before the closing `"}`.
          const i = 12 + (at % (text.length - 13));
          const body = new Uint8Array([...text.slice(0, i), ...bad, ...text.slice(i)]);
          await checkExecute(built, body, "application/json");
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it("never runs a command holding a lone surrogate (JSON \\uD800-style escapes)", async () => {
    const built = propertyApp();
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: "grapheme-ascii", maxLength: 20 }),
        fc.integer({ min: 0xd800, max: 0xdfff }),
        fc.string({ unit: "grapheme-ascii", maxLength: 20 }),
        async (before, unit, after) => {
          // JSON.stringify escapes the lone surrogate as \udXXX, so the wire bytes are valid UTF-8.
          const command = `x${before}${String.fromCharCode(unit)}${after}`;
          await checkExecute(built, enc.encode(JSON.stringify({ command })), "application/json");
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });
});

describe("X-API-Key over arbitrary header values", () => {
  const KEY = "prop-api-key-0123456789abcdef";

  it("accepts only the exact key (HTTP whitespace around a header value is not part of it)", async () => {
    const built = propertyApp({ API_KEY: KEY });
    const candidates = fc.oneof(
      headerValue(64),
      fc.constant(KEY),
      fc.constantFrom(
        ` ${KEY}`,
        `${KEY}\t`,
        KEY.toUpperCase(),
        `${KEY}${KEY}`,
        KEY.slice(1),
        `Bearer ${KEY}`,
      ),
      fc
        .tuple(fc.nat(KEY.length), fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 2 }))
        .map(([i, s]) => KEY.slice(0, i) + s + KEY.slice(i)),
      fc.nat(KEY.length - 1).map((i) => KEY.slice(0, i) + KEY.slice(i + 1)),
    );
    await fc.assert(
      fc.asyncProperty(
        candidates.filter((v) => !/[\0\r\n]/.test(v)),
        async (presented) => {
          const { app, executor } = built;
          executor.commands.length = 0;
          const res = await app.request("/execute", {
            method: "POST",
            headers: { "Content-Type": "application/json", "X-API-Key": presented },
            body: '{"command":"id"}',
          });
          const json = JSON.parse(await res.text());
          if (stripOws(presented) === KEY) {
            expect(res.status).toBe(200);
            expect(executor.commands).toHaveLength(1);
          } else {
            expect(res.status).toBe(401);
            expect(["api_key_invalid", "api_key_missing"]).toContain(json.error.code);
            expect(res.headers.get("www-authenticate")).toContain("X-API-Key");
            expect(executor.commands).toEqual([]);
          }
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it("accepts only the exact key in ?api_key= (no trimming there)", async () => {
    const built = propertyApp({ API_KEY: KEY });
    const candidates = fc.oneof(
      headerValue(40),
      fc.constant(KEY),
      fc.constantFrom(` ${KEY}`, `${KEY} `, `${KEY}\u0000`, KEY.toUpperCase()),
      fc
        .tuple(fc.nat(KEY.length), fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 2 }))
        .map(([i, s]) => KEY.slice(0, i) + s + KEY.slice(i)),
    );
    await fc.assert(
      fc.asyncProperty(candidates, async (presented) => {
        const { app, executor } = built;
        executor.commands.length = 0;
        const res = await app.request(`/execute?api_key=${encodeURIComponent(presented)}`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: '{"command":"id"}',
        });
        expect(res.status).toBe(presented === KEY ? 200 : 401);
        expect(executor.commands).toHaveLength(presented === KEY ? 1 : 0);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe("X-Forwarded-For over arbitrary strings", () => {
  const xffArb = fc
    .oneof(
      headerValue(200),
      fc
        .tuple(
          fc.array(
            fc.oneof(fc.ipV4(), fc.ipV6(), headerValue(12), fc.constantFrom("", " ", "unknown")),
            { maxLength: 12 },
          ),
          fc.constantFrom(",", ", ", " ,", ",,"),
        )
        .map(([parts, separator]) => parts.join(separator)),
      fc.integer({ min: 1, max: 70_000 }).map((n) => ",".repeat(n)),
    )
    .filter((v) => !/[\0\r\n]/.test(v));

  function clientOf(logLines: string[]): unknown {
    const line = logLines.findLast((l) => JSON.parse(l).message === "request");
    return line === undefined ? undefined : JSON.parse(line).client;
  }

  it("with TRUSTED_PROXY_HOPS=0 never changes the rate-limit bucket", async () => {
    await fc.assert(
      fc.asyncProperty(xffArb, xffArb, async (first, second) => {
        const { app, executor, logLines } = buildTestApp({
          env: { RATE_LIMIT_EXECUTE: "1" },
          socketAddress: SOCKET,
        });
        const send = (xff: string) =>
          app.request("/execute", {
            method: "POST",
            headers: { "Content-Type": "application/json", "X-Forwarded-For": xff },
            body: '{"command":"id"}',
          });
        expect((await send(first)).status).toBe(200);
        expect(clientOf(logLines)).toBe(SOCKET);
        const limited = await send(second);
        expect(limited.status).toBe(429);
        expect(JSON.parse(await limited.text()).error.code).toBe("rate_limited");
        expect(clientOf(logLines)).toBe(SOCKET);
        expect(executor.commands).toHaveLength(1);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("behind trusted proxies never breaks a request and picks the right hop", async () => {
    const apps = [1, 2, 3].map((hops) => ({
      hops,
      built: propertyApp({ TRUSTED_PROXY_HOPS: String(hops) }),
    }));
    await fc.assert(
      fc.asyncProperty(xffArb, fc.constantFrom(0, 1, 2), async (xff, which) => {
        const target = apps[which];
        if (!target) throw new Error(`no app for index ${which}`);
        const { hops, built } = target;
        built.executor.commands.length = 0;
        const res = await built.app.request("/execute", {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-Forwarded-For": xff },
          body: '{"command":"id"}',
        });
        expect(res.status).toBe(200);
        expect(built.executor.commands).toHaveLength(1);
        const normalized = stripOws(xff);
        expect(clientOf(built.logLines)).toBe(
          resolveClientAddress(normalized === "" ? undefined : normalized, SOCKET, hops),
        );
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
