import { Hono, type MiddlewareHandler } from "hono";
import { describe, expect, it } from "vitest";
import type { AppEnv } from "../../src/app-env.js";
import { requireApiKey } from "../../src/http/api-key.js";
import { createErrorHandler } from "../../src/http/errors.js";
import { duplicateKey, strictJsonBody } from "../../src/http/json-body.js";
import type { Logger } from "../../src/logger.js";

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A small app of its own around one middleware: POST / answers 200 "through" when it passes. */
function guarded(middleware: MiddlewareHandler<AppEnv>) {
  return new Hono<AppEnv>()
    .post("/", middleware, (c) => c.text("through"))
    .onError(createErrorHandler(silent));
}

const codeOf = async (res: Response) =>
  ((await res.json()) as { error: { code: string } }).error.code;

describe("strictJsonBody", () => {
  const app = guarded(strictJsonBody);
  const post = (body: string | Uint8Array, type = "application/json") =>
    app.request("/", { method: "POST", headers: { "Content-Type": type }, body });

  it("lets a JSON body through (also +json and a charset parameter)", async () => {
    expect(await (await post('{"a":1}')).text()).toBe("through");
    expect((await post('{"a":1}', "application/vnd.x+json; charset=utf-8")).status).toBe(200);
  });

  it("refuses another media type with 415 unsupported_media_type", async () => {
    const res = await post('{"a":1}', "text/plain");
    expect([res.status, await codeOf(res)]).toEqual([415, "unsupported_media_type"]);
  });

  it("refuses bytes that are not UTF-8 with 400 invalid_encoding", async () => {
    const res = await post(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]));
    expect([res.status, await codeOf(res)]).toEqual([400, "invalid_encoding"]);
  });

  it("refuses a key given twice with 400 duplicate_key", async () => {
    const res = await post('{"command":"ls","command":"rm -rf /"}');
    expect([res.status, await codeOf(res)]).toEqual([400, "duplicate_key"]);
  });
});

describe("duplicateKey", () => {
  it.each([
    ['{"a":1,"a":2}', "a"],
    ['{"x":{"b":1,"b":2}}', "b"],
    ['[{"c":1},{"c":2}]', null],
    ['{"\\u0061":1,"a":2}', "a"],
    ['{"a":1', null],
  ])("%s → %s", (text, expected) => {
    expect(duplicateKey(text)).toBe(expected);
  });
});

describe("requireApiKey", () => {
  const KEY = "0123456789abcdef-key";

  it("without a configured key, everything passes", async () => {
    expect((await guarded(requireApiKey([])).request("/", { method: "POST" })).status).toBe(200);
  });

  it("with a key: missing → 401 api_key_missing, wrong → 401 api_key_invalid, both with WWW-Authenticate", async () => {
    const app = guarded(requireApiKey([KEY]));
    const missing = await app.request("/", { method: "POST" });
    const wrong = await app.request("/", { method: "POST", headers: { "X-API-Key": `${KEY}x` } });
    expect([missing.status, await codeOf(missing)]).toEqual([401, "api_key_missing"]);
    expect([wrong.status, await codeOf(wrong)]).toEqual([401, "api_key_invalid"]);
    expect(wrong.headers.get("WWW-Authenticate")).toContain("X-API-Key");
  });

  it.each([
    ["X-API-Key", "/", { "X-API-Key": KEY }],
    ["Bearer", "/", { Authorization: `Bearer ${KEY}` }],
    ["?api_key=", `/?api_key=${KEY}`, {}],
  ])("accepts the key as %s", async (_name, url, headers) => {
    const res = await guarded(requireApiKey([KEY])).request(url, { method: "POST", headers });
    expect(res.status).toBe(200);
  });

  it("with several keys: each is accepted and names its own owner", async () => {
    const other = "fedcba9876543210-key";
    const app = new Hono<AppEnv>()
      .use(requireApiKey([KEY, other]))
      .post("/", (c) => c.text(c.get("owner")));
    const owners = await Promise.all(
      [KEY, other].map(async (key) =>
        (await app.request("/", { method: "POST", headers: { "X-API-Key": key } })).text(),
      ),
    );
    expect(owners[0]).toMatch(/^key-[0-9a-f]{12}$/);
    expect(owners[1]).toMatch(/^key-[0-9a-f]{12}$/);
    expect(owners[0]).not.toBe(owners[1]);
    expect(owners.join()).not.toContain(KEY);
  });
});
