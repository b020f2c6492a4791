import { describe, expect, it } from "vitest";
import { buildTestApp, readJson } from "../support/test-app.js";

const KEY = "s".repeat(24);
const post = (headers: Record<string, string> = {}) => ({ method: "POST", headers });

describe("POST /selftest", () => {
  it("403 with an explanation when the service has no API key", async () => {
    const { app } = buildTestApp();
    const res = await app.request("/selftest", post());
    expect(res.status).toBe(403);
    const body = await readJson(res);
    expect(body.error.code).toBe("api_key_not_configured");
    expect(body.error.message).toMatch(/only served when the service has an API key/);
  });

  it("needs the key", async () => {
    const { app } = buildTestApp({ env: { API_KEY: KEY } });
    expect((await app.request("/selftest", post())).status).toBe(401);
    expect((await app.request("/selftest", post({ "X-API-Key": "x".repeat(24) }))).status).toBe(
      401,
    );
  });

  it("runs the canaries now and returns the fresh result with the probe time", async () => {
    const { app } = buildTestApp({ env: { API_KEY: KEY } });
    const res = await app.request("/selftest", post({ "X-API-Key": KEY }));
    expect(res.status).toBe(200);
    const body = await readJson(res);
    expect(body.mode).toBe("enforced");
    expect(Date.parse(body.probedAt)).not.toBeNaN();
    expect(body.protections[0]).toMatchObject({
      category: "sandbox wrapper",
      proof: { probedAt: body.probedAt },
    });
  });

  it("reports a failing round as degraded, and /health answers 503 with it", async () => {
    const failing = {
      mode: "degraded" as const,
      checks: { "canary: sudo denied": false },
      problems: ["failed: canary: sudo denied"],
    };
    const broken = buildTestApp({ env: { API_KEY: KEY }, enforcement: failing });
    const res = await broken.app.request("/selftest", post({ "X-API-Key": KEY }));
    expect((await readJson(res)).mode).toBe("degraded");
    expect((await broken.app.request("/health")).status).toBe(503);
  });

  it("is rate limited", async () => {
    const { app } = buildTestApp({ env: { API_KEY: KEY, RATE_LIMIT_SELFTEST: "1" } });
    expect((await app.request("/selftest", post({ "X-API-Key": KEY }))).status).toBe(200);
    expect((await app.request("/selftest", post({ "X-API-Key": KEY }))).status).toBe(429);
  });
});

describe("GET /demo/status protections", () => {
  it("per category: the bundle's claim and the last probe (null before the first)", async () => {
    const { app, monitor } = buildTestApp();
    let body = await readJson(await app.request("/demo/status"));
    expect(body.protections[0].proof).toMatchObject({ proved: null, probedAt: null });
    await monitor.verify();
    body = await readJson(await app.request("/demo/status"));
    const file = body.protections.find((p: { category: string }) => p.category === "file rules");
    expect(file.claim).toEqual({ claimed: false, by: { "seccomp file monitor enabled": false } });
    expect(file.proof.probedAt).toMatch(/^\d{4}-/);
  });
});
