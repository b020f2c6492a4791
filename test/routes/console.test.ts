import { Script } from "node:vm";
import { describe, expect, it } from "vitest";
import { buildTestApp, readJson } from "../support/test-app.js";

/** What Chromium sends when it navigates to a page. */
const BROWSER_ACCEPT =
  "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

const KEY = "console-test-key-0123456789";

async function consolePage() {
  const { app } = buildTestApp({ env: { API_KEY: KEY } });
  const res = await app.request("/console", { headers: { Accept: BROWSER_ACCEPT } });
  const page = await res.text();
  const csp = res.headers.get("content-security-policy") ?? "";
  const nonce = csp.match(/script-src 'nonce-([^']+)'/)?.[1];
  const script = page.match(/<script nonce="([^"]+)">([\s\S]*)<\/script>/);
  return { res, page, csp, nonce, scriptNonce: script?.[1], script: script?.[2] ?? "" };
}

describe("GET /console", () => {
  it("serves the page without an API key (the key is typed into the page)", async () => {
    const { res, page } = await consolePage();
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html; charset=utf-8/i);
    expect(res.headers.get("cache-control")).toBe("no-store");
    for (const id of ["key-form", "run-form", "command", "stream", "use-session", "demo-list"]) {
      expect(page).toContain(`id="${id}"`);
    }
  });

  it("has a CSP of its own: only this response's nonce'd inline code, requests to itself", async () => {
    const { csp, nonce, scriptNonce, page } = await consolePage();
    expect(nonce).toMatch(/^[A-Za-z0-9+/=]{16,}$/);
    expect(scriptNonce).toBe(nonce);
    expect(page).toContain(`<style nonce="${nonce}">`);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`style-src 'nonce-${nonce}'`);
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("require-trusted-types-for 'script'");
    expect(csp).not.toContain("unsafe-inline");
    const again = await consolePage();
    expect(again.nonce).not.toBe(nonce);
  });

  it("keeps the app-wide hardened headers", async () => {
    const { res } = await consolePage();
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("cross-origin-resource-policy")).toBe("same-origin");
    expect(res.headers.get("x-powered-by")).toBeNull();
  });

  it("inlines a script that compiles and never parses strings as markup", async () => {
    const { script } = await consolePage();
    expect(script.length).toBeGreaterThan(1000);
    expect(() => new Script(script)).not.toThrow();
    expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
  });

  it("calls only the API's own paths", async () => {
    const { script } = await consolePage();
    const paths = [...script.matchAll(/"(\/[a-z]+)\/?"/g)].map((m) => m[1]);
    expect(new Set(paths)).toEqual(
      new Set(["/sessions", "/execute", "/demo", "/health", "/audit", "/approvals"]),
    );
  });

  it("answers other methods with 405 and Allow: GET", async () => {
    const { app } = buildTestApp();
    const res = await app.request("/console", { method: "POST" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET");
  });
});

describe("GET /", () => {
  it("redirects browsers (Accept prefers text/html) to the console", async () => {
    const { app } = buildTestApp();
    const res = await app.request("/", { headers: { Accept: BROWSER_ACCEPT } });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/console");
    expect(res.headers.get("vary")).toBe("Accept");
  });

  it.each([
    ["no Accept header", undefined],
    ["curl's default", "*/*"],
    ["JSON", "application/json"],
    ["JSON first, HTML as well", "application/json, text/html"],
    ["HTML refused", "application/json, text/html;q=0"],
  ])("keeps answering JSON to API clients (%s)", async (_name, accept) => {
    const { app } = buildTestApp();
    const res = await app.request("/", accept ? { headers: { Accept: accept } } : {});
    expect(res.status).toBe(200);
    expect(res.headers.get("vary")).toBe("Accept");
    const body = await readJson(res);
    expect(body.service).toBe("governed-executor");
    expect(body.endpoints["GET /console"]).toEqual(expect.any(String));
  });
});

describe("the API answers the console relies on", () => {
  it("GET /demo lists each demo's path, description and command count", async () => {
    const { app } = buildTestApp();
    const body = await readJson(await app.request("/demo"));
    expect(body.demos.length).toBeGreaterThan(0);
    for (const demo of body.demos) {
      expect(demo).toEqual({
        path: expect.stringMatching(/^\/demo\/[a-z-]+$/),
        description: expect.any(String),
        commands: expect.any(Number),
      });
    }
    expect(body.demos.map((d: { path: string }) => d.path)).toContain("/demo/privilege-escalation");
  });

  it("an error is the envelope the page shows (code, message, hint)", async () => {
    const { app } = buildTestApp({ env: { API_KEY: KEY } });
    const res = await app.request("/execute", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ command: "echo hello" }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect((await readJson(res)).error).toEqual({
      code: "api_key_missing",
      message: expect.any(String),
      hint: expect.stringContaining("X-API-Key"),
    });
  });
});
