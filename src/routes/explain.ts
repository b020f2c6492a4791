import { Hono, type MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env.js";
import type { Explainer } from "../explain/explain.js";
import { strictJsonBody } from "../http/json-body.js";
import { validCommandBody } from "./execute.js";

/**
 * `POST /explain {command}`: what the loaded policy would do with the command, without running
 * it. The body is /execute's (timeoutMs is accepted and ignored), so a caller can ask first and
 * send the same body to /execute.
 */
export function createExplainRoutes(options: {
  explain: Explainer;
  maxTimeoutMs: number;
  guard: MiddlewareHandler<AppEnv>;
}) {
  return new Hono<AppEnv>().post(
    "/",
    options.guard,
    strictJsonBody,
    validCommandBody(
      options.maxTimeoutMs,
      'Send {"command": "<shell command>"}, the same body as POST /execute.',
    ),
    async (c) => c.json(await options.explain(c.req.valid("json").command)),
  );
}
