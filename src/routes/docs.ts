import { createReadStream, readFileSync } from "node:fs";
import { createRequire, findPackageJSON } from "node:module";
import { Readable } from "node:stream";
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { SecureHeadersVariables } from "hono/secure-headers";
import type { AppEnv } from "../app-env.js";
import { ApiError } from "../http/errors.js";
import { errorAnswers, OPEN } from "../openapi/route-docs.js";
import { pageSecureHeaders } from "./console.js";

type DocsEnv = { Variables: AppEnv["Variables"] & SecureHeadersVariables };

const require = createRequire(import.meta.url);

/**
 * The reference's files, served from node_modules (a deployed service depends on no CDN):
 * Swagger UI, and DOMPurify for the page's Trusted Types default policy. Each URL carries the
 * package's version, so a browser may keep the file for good.
 */
const ASSETS = {
  "swagger-ui-bundle.js": asset("swagger-ui-dist/swagger-ui-bundle.js", "text/javascript"),
  "swagger-ui.css": asset("swagger-ui-dist/swagger-ui.css", "text/css"),
  "purify.min.js": asset("dompurify/purify.min.js", "text/javascript"),
};

function asset(specifier: string, type: string) {
  const path = require.resolve(specifier);
  const packageJson = findPackageJSON(specifier, import.meta.url);
  if (!packageJson) throw new Error(`no package.json for ${specifier}`);
  const { version } = JSON.parse(readFileSync(packageJson, "utf8")) as { version: string };
  return { path, type: `${type}; charset=utf-8`, version };
}

const url = (file: keyof typeof ASSETS) => `/docs/assets/${file}?v=${ASSETS[file].version}`;

/**
 * The page's Content-Security-Policy: the console's (src/routes/console.ts), with the Trusted
 * Types policies Swagger UI needs. Scripts and styles only with this response's nonce, requests
 * only to this origin. Swagger UI writes rendered Markdown with innerHTML, so `trusted-types
 * 'none'` would stop it: the policies allowed are DOMPurify's own (the bundle's copy, and the
 * page's, named `dompurify#docs`) and a `default` policy that passes every HTML string through
 * DOMPurify. There is no policy for scripts or script URLs.
 */
const docsHeaders = pageSecureHeaders(["default", "dompurify", "dompurify#docs"]);

function docsPage(nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>governed-executor API reference</title>
<link rel="stylesheet" nonce="${nonce}" href="${url("swagger-ui.css")}">
</head>
<body>
<div id="swagger-ui"></div>
<script nonce="${nonce}" src="${url("purify.min.js")}" data-tt-policy-suffix="docs"></script>
<script nonce="${nonce}" src="${url("swagger-ui-bundle.js")}"></script>
<script nonce="${nonce}">
"use strict";
trustedTypes.createPolicy("default", { createHTML: (html) => DOMPurify.sanitize(html) });
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: "none",
  deepLinking: true,
});
</script>
</body>
</html>
`;
}

const page = createRoute({
  method: "get",
  path: "/",
  operationId: "docs",
  tags: ["service"],
  summary: "interactive API reference (HTML, Swagger UI) of GET /openapi.json",
  security: OPEN,
  responses: {
    200: { description: "The page.", content: { "text/html": { schema: z.string() } } },
    ...errorAnswers(),
  },
});

const file = createRoute({
  method: "get",
  path: "/assets/{file}",
  operationId: "docsAsset",
  tags: ["service"],
  summary: "a script or stylesheet of the API reference",
  security: OPEN,
  request: {
    // Any name reaches the route, which answers 404 for a file it does not serve.
    params: z.object({ file: z.string().openapi({ enum: Object.keys(ASSETS) }) }),
  },
  responses: {
    200: {
      description: "The file (immutable: its URL carries its package's version).",
      content: {
        "text/javascript": { schema: z.string() },
        "text/css": { schema: z.string() },
      },
    },
    ...errorAnswers(["not_found"]),
  },
});

/** `GET /docs`: the API reference, and `GET /docs/assets/*`: the files it loads. */
export function createDocsRoutes() {
  const app = new OpenAPIHono<DocsEnv>();
  app.use("/", docsHeaders);
  return app
    .openapi(page, (c) => {
      c.header("Cache-Control", "no-store");
      return c.html(docsPage(c.get("secureHeadersNonce") ?? ""), 200);
    })
    .openapi(file, (c) => {
      const name = c.req.valid("param").file;
      const found = Object.hasOwn(ASSETS, name) ? ASSETS[name as keyof typeof ASSETS] : undefined;
      if (!found) {
        throw new ApiError({
          code: "not_found",
          message: `There is no file ${name.slice(0, 100)} here.`,
          hint: "GET /docs loads the files it needs.",
        });
      }
      c.header("Content-Type", found.type);
      c.header("Cache-Control", "public, max-age=31536000, immutable");
      return c.body(Readable.toWeb(createReadStream(found.path)) as ReadableStream, 200);
    });
}
