import { Hono } from "hono";
import type { AppEnv } from "../app-env.js";
import type { HealthCheck } from "../enforcement/health.js";

/** `GET /health`: 200 only when agentsh answers and enforcement is as required; 503 otherwise. */
export function createHealthRoutes(health: HealthCheck) {
  return new Hono<AppEnv>().get("/", async (c) => {
    const report = await health();
    c.header("Cache-Control", "no-store");
    return c.json(report, report.status === "ok" ? 200 : 503);
  });
}
