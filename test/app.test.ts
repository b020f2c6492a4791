import { describe, expect, it } from "vitest";
import { FakeExecutor } from "./support/fake-executor.js";
import { buildTestApp, readJson } from "./support/test-app.js";

describe("every route", () => {
  it("answers unknown routes with the JSON envelope", async () => {
    const { app } = buildTestApp();
    const res = await app.request("/nope");
    expect(res.status).toBe(404);
    expect((await readJson(res)).error).toMatchObject({
      code: "not_found",
      hint: "GET / lists the endpoints.",
    });
  });

  it("sends hardened headers and no framework banner", async () => {
    const { app } = buildTestApp();
    const res = await app.request("/health");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("x-frame-options")).toBe("SAMEORIGIN");
    expect(res.headers.get("x-powered-by")).toBeNull();
    expect(res.headers.get("x-request-id")).toEqual(expect.any(String));
  });

  it("hides internal errors behind a generic 500 without a stack", async () => {
    const executor = new FakeExecutor().respond(() => {
      throw new Error("secret internal detail at /srv/app/src/x.ts:12");
    });
    const { app, logLines } = buildTestApp({ executor });
    const res = await app.request("/execute", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: '{"command":"ls"}',
    });
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain("secret internal detail");
    expect(JSON.parse(text).error.code).toBe("internal_error");
    expect(logLines.join("\n")).toContain("secret internal detail");
  });
});
