import { Hono } from "hono";
import type { AppEnv } from "../app-env.js";
import type { ServiceStatus } from "../service-status.js";

/** `GET /health`: 200 only when agentsh answers and enforcement is as required; 503 otherwise. */
export function createHealthRoutes(status: ServiceStatus) {
  return new Hono<AppEnv>().get("/", async (c) => {
    const report = await status.check();
    c.header("Cache-Control", "no-store");
    return c.json(report, report.status === "ok" ? 200 : 503);
  });
}
