import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env.js";
import type { HealthCheck } from "../enforcement/health.js";
import { healthReportSchema } from "../openapi/response-schemas.js";
import { errorAnswers, jsonAnswer, OPEN } from "../openapi/route-docs.js";

const route = createRoute({
  method: "get",
  path: "/",
  operationId: "health",
  tags: ["service"],
  summary: "agentsh and enforcement state",
  security: OPEN,
  responses: {
    200: jsonAnswer("agentsh answers and enforcement is proven.", healthReportSchema),
    503: jsonAnswer("Commands are refused now: `reason` says why.", healthReportSchema),
    ...errorAnswers(),
  },
});

/** `GET /health`: 200 only when agentsh answers and enforcement is as required; 503 otherwise. */
export function createHealthRoutes(health: HealthCheck) {
  return new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
    const report = await health();
    c.header("Cache-Control", "no-store");
    return report.status === "ok" ? c.json(report, 200) : c.json(report, 503);
  });
}
