import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { Registry } from "prom-client";
import type { AppEnv } from "../app-env.js";
import { requireConfiguredApiKey } from "../http/api-key.js";
import { onlyTenantSeries } from "../metrics/service-metrics.js";
import {
  CONFIGURED_API_KEY_ERRORS,
  CONFIGURED_API_KEY_SECURITY,
  errorAnswers,
} from "../openapi/route-docs.js";

/**
 * `GET /metrics`: Prometheus text format. Needs METRICS_TOKEN (a scraper's own credential,
 * `Authorization: Bearer …`) or an API key; with neither configured it is refused outright.
 */
export function createMetricsRoutes(options: {
  registry: Registry;
  tokens: readonly string[];
  /** Replaces the token check (a tenants file: tenants' keys and METRICS_TOKEN). */
  guard?: MiddlewareHandler<AppEnv>;
}) {
  const route = createRoute({
    method: "get",
    path: "/",
    operationId: "metrics",
    tags: ["service"],
    summary: "Prometheus metrics (METRICS_TOKEN as a Bearer token, or the API key)",
    description:
      "Commands by outcome, rule and layer; latency; command slots and queue; enforcement state; the last canary round; sessions; the audit trail's write queue.",
    security: CONFIGURED_API_KEY_SECURITY,
    middleware: [
      options.guard ??
        requireConfiguredApiKey(options.tokens, {
          message:
            "The metrics endpoint is disabled because neither METRICS_TOKEN nor API_KEY is set.",
          hint: "Set METRICS_TOKEN (at least 16 characters) and send it as Authorization: Bearer <token>.",
        }),
    ],
    responses: {
      200: {
        description: "The metrics.",
        content: {
          "text/plain": {
            schema: z.string().describe("Prometheus text exposition format 0.0.4"),
          },
        },
      },
      ...errorAnswers(CONFIGURED_API_KEY_ERRORS),
    },
  });
  return new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
    c.header("Cache-Control", "no-store");
    const text = await options.registry.metrics();
    // A tenant that is not an operator sees its own series only.
    const tenant = c.get("tenant");
    return c.text(tenant && !tenant.operator ? onlyTenantSeries(text, tenant.name) : text, 200, {
      "Content-Type": options.registry.contentType,
    });
  });
}
