import { describe, expect, it } from "vitest";
import { resolveClientAddress } from "../../../src/http/client-address.js";
import { buildTestApp, postJson, readJson } from "../../support/test-app.js";

const KEY = `${"k".repeat(12)}-correct-key`;

describe("API key on /execute", () => {
  it("stays open without API_KEY (v0 behaviour) and logs no warning per request", async () => {
    const { app, logLines } = buildTestApp();
    const before = logLines.length;
    expect((await app.request("/execute", postJson({ command: "id" }))).status).toBe(200);
    expect((await app.request("/execute", postJson({ command: "id" }))).status).toBe(200);
    const levels = logLines.slice(before).map((line) => JSON.parse(line).level);
    expect(levels).not.toContain("warn");
  });

  it.each([
    ["missing", {}, "api_key_missing"],
    ["wrong", { "X-API-Key": "wrong-key-0000000000" }, "api_key_invalid"],
    ["prefix of the key", { "X-API-Key": KEY.slice(0, -1) }, "api_key_invalid"],
  ])("rejects a %s key with 401 JSON and runs nothing", async (_name, headers, code) => {
    const { app, executor, logLines } = buildTestApp({ env: { API_KEY: KEY } });
    const res = await app.request(
      "/execute",
      postJson({ command: "id" }, headers as Record<string, string>),
    );
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain("X-API-Key");
    expect((await readJson(res)).error.code).toBe(code);
    expect(executor.commands).toHaveLength(0);
    expect(logLines.join("\n")).not.toContain(KEY);
  });

  it.each([
    ["X-API-Key header", "/execute", { "X-API-Key": KEY }],
    ["Bearer token", "/execute", { Authorization: `Bearer ${KEY}` }],
    ["seed ?api_key= query", `/execute?api_key=${KEY}`, {}],
  ])("accepts the key as %s", async (_name, url, headers) => {
    const { app, executor, logLines } = buildTestApp({ env: { API_KEY: KEY } });
    expect(
      (await app.request(url, postJson({ command: "id" }, headers as Record<string, string>)))
        .status,
    ).toBe(200);
    expect(executor.commands).toHaveLength(1);
    expect(logLines.join("\n")).not.toContain(KEY);
  });
});

describe("rate limits", () => {
  it("limits /execute per client with standard headers and a JSON 429", async () => {
    const { app, executor } = buildTestApp({ env: { RATE_LIMIT_EXECUTE: "3" } });
    const statuses = [];
    for (let i = 0; i < 5; i++)
      statuses.push((await app.request("/execute", postJson({ command: "id" }))).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(executor.commands).toHaveLength(3);
    const res = await app.request("/execute", postJson({ command: "id" }));
    expect(res.headers.get("ratelimit-limit")).toBe("3");
    expect(res.headers.get("ratelimit-remaining")).toBe("0");
    expect(res.headers.get("retry-after")).toEqual(expect.any(String));
    expect((await readJson(res)).error.code).toBe("rate_limited");
  });

  it("limits /demo/* per client, counting the demo group together", async () => {
    const { app } = buildTestApp({ env: { RATE_LIMIT_DEMO: "2" } });
    expect((await app.request("/demo/allowed")).status).toBe(200);
    expect((await app.request("/demo")).status).toBe(200);
    expect((await app.request("/demo/devtools")).status).toBe(429);
    // /execute has its own bucket.
    expect((await app.request("/execute", postJson({ command: "id" }))).status).toBe(200);
  });

  it("counts unauthenticated attempts, so key guessing is rate limited too", async () => {
    const { app } = buildTestApp({ env: { RATE_LIMIT_EXECUTE: "2", API_KEY: KEY } });
    const statuses = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await app.request("/execute", postJson({ command: "id" }))).status);
    expect(statuses).toEqual([401, 401, 429]);
  });

  it("ignores X-Forwarded-For when no proxy is trusted", async () => {
    const { app } = buildTestApp({ env: { RATE_LIMIT_EXECUTE: "1" } });
    const spoofed = (ip: string) => postJson({ command: "id" }, { "X-Forwarded-For": ip });
    expect((await app.request("/execute", spoofed("1.1.1.1"))).status).toBe(200);
    expect((await app.request("/execute", spoofed("2.2.2.2"))).status).toBe(429);
  });

  it("behind one trusted proxy, a client-supplied X-Forwarded-For entry buys no fresh bucket", async () => {
    const { app } = buildTestApp({ env: { RATE_LIMIT_EXECUTE: "1", TRUSTED_PROXY_HOPS: "1" } });
    // The proxy appends the real client (203.0.113.7) after whatever the client sent.
    const viaProxy = (spoof: string) =>
      postJson({ command: "id" }, { "X-Forwarded-For": `${spoof}203.0.113.7` });
    expect((await app.request("/execute", viaProxy(""))).status).toBe(200);
    expect((await app.request("/execute", viaProxy("1.1.1.1, "))).status).toBe(429);
    expect((await app.request("/execute", viaProxy("9.9.9.9, 8.8.8.8, "))).status).toBe(429);
    // A different real client has its own bucket.
    const other = postJson({ command: "id" }, { "X-Forwarded-For": "198.51.100.4" });
    expect((await app.request("/execute", other)).status).toBe(200);
  });
});

describe("resolveClientAddress", () => {
  it.each([
    [undefined, "10.1.1.1", 0, "10.1.1.1"],
    ["1.1.1.1", "10.1.1.1", 0, "10.1.1.1"],
    ["1.1.1.1", "10.1.1.1", 1, "1.1.1.1"],
    ["6.6.6.6, 1.1.1.1", "10.1.1.1", 1, "1.1.1.1"],
    ["6.6.6.6, 1.1.1.1, 10.2.2.2", "10.1.1.1", 2, "1.1.1.1"],
    ["1.1.1.1", "10.1.1.1", 2, "10.1.1.1"],
    [" , ", "10.1.1.1", 1, "10.1.1.1"],
  ])("XFF %s, socket %s, %i hops → %s", (xff, socket, hops, expected) => {
    expect(resolveClientAddress(xff, socket, hops)).toBe(expected);
  });
});
