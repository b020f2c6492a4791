import { zValidator } from "@hono/zod-validator";
import { Hono, type MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env.js";
import type { Explainer } from "../explain/explain.js";
import { ApiError } from "../http/errors.js";
import { strictJsonBody } from "../http/json-body.js";
import { executeBodySchema } from "./execute.js";

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
  const schema = executeBodySchema(options.maxTimeoutMs);
  return new Hono<AppEnv>().post(
    "/",
    options.guard,
    strictJsonBody,
    zValidator("json", schema, (result) => {
      if (!result.success) {
        throw new ApiError({
          code: "validation_failed",
          message: result.error.issues.map((issue) => issue.message).join("; "),
          hint: 'Send {"command": "<shell command>"}, the same body as POST /execute.',
          details: result.error.issues.map((issue) => ({
            path: issue.path.join("."),
            message: issue.message,
          })),
        });
      }
    }),
    async (c) => c.json(await options.explain(c.req.valid("json").command)),
  );
}
