import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { accepts } from "hono/accepts";
import { NONCE, type SecureHeadersVariables, secureHeaders } from "hono/secure-headers";
import type { AppEnv } from "../app-env.js";
import { errorAnswers, OPEN } from "../openapi/route-docs.js";
import { consolePage } from "./console-page.js";

type ConsoleEnv = { Variables: AppEnv["Variables"] & SecureHeadersVariables };

/**
 * `GET /console`: the browser console, one static page whose inline script calls the JSON API
 * (`/demo`, `/execute`, `/sessions`) with the key the user types in. Its own Content-Security-
 * Policy allows exactly the inline style and script carrying this response's nonce and requests
 * to this origin; the app-wide headers (`secureHeaders` in app.ts) still apply. Trusted Types
 * are required, so command output can only ever reach the page as text.
 */
const route = createRoute({
  method: "get",
  path: "/",
  operationId: "console",
  tags: ["service"],
  summary: "browser console (HTML): run demos and commands, streamed, in sessions",
  security: OPEN,
  responses: {
    200: { description: "The page.", content: { "text/html": { schema: z.string() } } },
    ...errorAnswers(),
  },
});

/**
 * The browser pages' security headers: scripts and styles only with this response's nonce,
 * requests only to this origin, no frames, no forms, Trusted Types required for every script
 * sink, with these `trustedTypes` policies (the console: none; `/docs`: DOMPurify's).
 */
export function pageSecureHeaders(trustedTypes: string[]) {
  return secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      scriptSrc: [NONCE],
      styleSrc: [NONCE],
      connectSrc: ["'self'"],
      imgSrc: ["data:"],
      baseUri: ["'none'"],
      formAction: ["'none'"],
      frameAncestors: ["'none'"],
      requireTrustedTypesFor: ["'script'"],
      trustedTypes,
    },
    crossOriginResourcePolicy: "same-origin",
  });
}

export function createConsoleRoutes() {
  const app = new OpenAPIHono<ConsoleEnv>();
  app.use(pageSecureHeaders(["'none'"]));
  return app.openapi(route, (c) => {
    c.header("Cache-Control", "no-store");
    return c.html(consolePage(c.get("secureHeadersNonce") ?? ""), 200);
  });
}

/**
 * Whether a request's Accept header ranks HTML above JSON: a browser's navigation does; API
 * clients (`application/json`, curl's "any type", or no Accept header) do not.
 */
export function prefersHtml(c: Context): boolean {
  return (
    accepts(c, {
      header: "Accept",
      supports: ["application/json", "text/html"],
      default: "application/json",
    }) === "text/html"
  );
}
