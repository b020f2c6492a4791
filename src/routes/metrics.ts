import { Hono } from "hono";
import type { Registry } from "prom-client";
import type { AppEnv } from "../app-env.js";
import { requireConfiguredApiKey } from "../http/api-key.js";

/**
 * `GET /metrics`: Prometheus text format. Needs METRICS_TOKEN (a scraper's own credential,
 * `Authorization: Bearer …`) or an API key; with neither configured it is refused outright.
 */
export function createMetricsRoutes(options: { registry: Registry; tokens: readonly string[] }) {
  return new Hono<AppEnv>().get(
    "/",
    requireConfiguredApiKey(options.tokens, {
      message: "The metrics endpoint is disabled because neither METRICS_TOKEN nor API_KEY is set.",
      hint: "Set METRICS_TOKEN (at least 16 characters) and send it as Authorization: Bearer <token>.",
    }),
    async (c) => {
      c.header("Content-Type", options.registry.contentType);
      c.header("Cache-Control", "no-store");
      return c.body(await options.registry.metrics());
    },
  );
}
