import { describe, expect, it } from "vitest";
import { buildTestApp, readJson } from "../support/test-app.js";

/** What Chromium sends when it navigates to a page. */
const BROWSER_ACCEPT =
  "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

async function docsPage() {
  const { app } = buildTestApp({ env: { API_KEY: "docs-test-key-0123456789" } });
  const res = await app.request("/docs", { headers: { Accept: BROWSER_ACCEPT } });
  const page = await res.text();
  const csp = res.headers.get("content-security-policy") ?? "";
  const nonce = csp.match(/script-src 'nonce-([^']+)'/)?.[1];
  return { app, res, page, csp, nonce };
}

/** The directives of a Content-Security-Policy header, by name. */
const directives = (csp: string) =>
  Object.fromEntries(
    csp
      .split(";")
      .map((part) => part.trim().split(/\s+/))
      .filter(([name]) => name)
      .map(([name, ...values]) => [name, values]),
  );

describe("GET /docs", () => {
  it("serves the reference page without an API key", async () => {
    const { res, page } = await docsPage();
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html; charset=utf-8/i);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(page).toContain('<div id="swagger-ui"></div>');
    expect(page).toContain('url: "/openapi.json"');
  });

  it("has the console's CSP: this response's nonce only, requests to itself, Trusted Types", async () => {
    const { csp, nonce } = await docsPage();
    expect(nonce).toMatch(/^[A-Za-z0-9+/=]{16,}$/);
    expect(directives(csp)).toEqual({
      "default-src": ["'none'"],
      "script-src": [`'nonce-${nonce}'`],
      "style-src": [`'nonce-${nonce}'`],
      "connect-src": ["'self'"],
      "img-src": ["data:"],
      "base-uri": ["'none'"],
      "form-action": ["'none'"],
      "frame-ancestors": ["'none'"],
      "require-trusted-types-for": ["'script'"],
      // DOMPurify's own policies and the page's default policy, which sanitizes with it.
      "trusted-types": ["default", "dompurify", "dompurify#docs"],
    });
    expect(csp).not.toContain("unsafe");
    expect((await docsPage()).nonce).not.toBe(nonce);
  });

  it("loads only its own files, each with the nonce, and no CDN", async () => {
    const { page, nonce } = await docsPage();
    const tags = [...page.matchAll(/<(script|link)\b[^>]*>/g)].map((m) => m[0]);
    expect(tags).toHaveLength(4);
    for (const tag of tags) expect(tag).toContain(`nonce="${nonce}"`);
    const urls = [...page.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(urls).toEqual([
      expect.stringMatching(/^\/docs\/assets\/swagger-ui\.css\?v=\d+\.\d+\.\d+$/),
      expect.stringMatching(/^\/docs\/assets\/purify\.min\.js\?v=\d+\.\d+\.\d+$/),
      expect.stringMatching(/^\/docs\/assets\/swagger-ui-bundle\.js\?v=\d+\.\d+\.\d+$/),
    ]);
    expect(page).not.toMatch(/https?:\/\//);
    // The page's own script: the default Trusted Types policy is DOMPurify, then Swagger UI.
    expect(page).toContain(
      'trustedTypes.createPolicy("default", { createHTML: (html) => DOMPurify.sanitize(html) });',
    );
  });

  it("keeps the app-wide hardened headers", async () => {
    const { res } = await docsPage();
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("cross-origin-resource-policy")).toBe("same-origin");
    expect(res.headers.get("x-powered-by")).toBeNull();
  });

  it("answers other methods with 405 and Allow: GET", async () => {
    const { app } = buildTestApp();
    const res = await app.request("/docs", { method: "POST" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET");
  });
});

describe("GET /docs/assets/:file", () => {
  it.each([
    ["swagger-ui-bundle.js", "text/javascript", "SwaggerUIBundle"],
    ["swagger-ui.css", "text/css", ".swagger-ui"],
    ["purify.min.js", "text/javascript", "DOMPurify"],
  ])("serves %s from node_modules, cacheable for good", async (file, type, marker) => {
    const { app, page } = await docsPage();
    const url = page.match(new RegExp(`"(/docs/assets/${file.replace(".", "\\.")}[^"]*)"`))?.[1];
    expect(url).toBeDefined();
    const res = await app.request(url ?? "");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(`${type}; charset=utf-8`);
    expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    const text = await res.text();
    expect(text.length).toBeGreaterThan(10_000);
    expect(text).toContain(marker);
  });

  it("serves no other file of the packages", async () => {
    const { app } = buildTestApp();
    for (const file of ["index.html", "swagger-initializer.js", "..%2Fpackage.json", "purify.js"]) {
      const res = await app.request(`/docs/assets/${file}`);
      expect(res.status, file).toBe(404);
      expect((await readJson(res)).error.code).toBe("not_found");
    }
  });
});
