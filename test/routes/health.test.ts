import { describe, expect, it } from "vitest";
import { buildTestApp, readJson } from "../support/test-app.js";

describe("GET /health", () => {
  it("is 200 when agentsh answers and enforcement is verified", async () => {
    const { app } = buildTestApp();
    const res = await app.request("/health");
    expect(res.status).toBe(200);
    expect(await readJson(res)).toMatchObject({
      status: "ok",
      agentsh: { server: "reachable" },
      enforcement: { mode: "enforced" },
      bundle: { digest: "sha256:test" },
      commands: { slots: 4, inFlight: 0, queued: 0 },
    });
  });

  it("is 503 with the reason when the agentsh server does not answer", async () => {
    const { app } = buildTestApp({
      agentshProblem:
        "agentsh server at http://127.0.0.1:18080 is not reachable (connect ECONNREFUSED)",
    });
    const res = await app.request("/health");
    expect(res.status).toBe(503);
    const body = await readJson(res);
    expect(body).toMatchObject({ status: "unavailable", agentsh: { server: "unreachable" } });
    expect(body.reason).toContain("ECONNREFUSED");
  });

  it("is 503 when enforcement is degraded, naming the failed check", async () => {
    const { app } = buildTestApp({
      enforcement: {
        mode: "degraded",
        checks: { "landlock enabled in bundle": false },
        problems: ["failed: landlock enabled in bundle"],
      },
    });
    const res = await app.request("/health");
    expect(res.status).toBe(503);
    expect((await readJson(res)).reason).toContain("landlock enabled in bundle");
  });

  it("is never rate limited", async () => {
    const { app } = buildTestApp({ env: { RATE_LIMIT_DEMO: "1", RATE_LIMIT_EXECUTE: "1" } });
    for (let i = 0; i < 50; i++) expect((await app.request("/health")).status).toBe(200);
  });
});
