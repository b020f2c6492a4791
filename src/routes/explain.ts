import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env.js";
import type { Explainer } from "../explain/explain.js";
import { strictJsonBody } from "../http/json-body.js";
import { explanationSchema } from "../openapi/response-schemas.js";
import {
  API_KEY_ERRORS,
  API_KEY_SECURITY,
  errorAnswers,
  JSON_BODY_ERRORS,
  jsonAnswer,
  RATE_LIMIT_ERRORS,
} from "../openapi/route-docs.js";
import type { Tenant } from "../tenants/tenants.js";
import { commandBodyHook, executeBodySchema } from "./execute.js";

/**
 * `POST /explain {command}`: what the loaded policy would do with the command, without running
 * it. The body is /execute's (timeoutMs is accepted and ignored), so a caller can ask first and
 * send the same body to /execute.
 */
export function createExplainRoutes(options: {
  explain: Explainer;
  /** A tenant's explainer (its policy as agentsh applies it: src/tenants/explain.ts). */
  explainFor?: (tenant: Tenant) => Promise<Explainer>;
  maxTimeoutMs: number;
  guard: MiddlewareHandler<AppEnv>;
}) {
  const route = createRoute({
    method: "post",
    path: "/",
    operationId: "explain",
    tags: ["commands"],
    summary: 'the policy\'s verdict on {"command"}; nothing is run',
    description: "Takes the body of POST /execute (timeoutMs is accepted and ignored).",
    security: API_KEY_SECURITY,
    middleware: [options.guard, strictJsonBody],
    request: {
      body: {
        required: true,
        content: {
          "application/json": {
            schema: executeBodySchema(options.maxTimeoutMs).openapi("ExecuteRequest"),
          },
        },
      },
    },
    responses: {
      200: jsonAnswer("The verdict and why.", explanationSchema),
      ...errorAnswers(API_KEY_ERRORS, RATE_LIMIT_ERRORS, JSON_BODY_ERRORS),
    },
  });
  return new OpenAPIHono<AppEnv>().openapi(
    route,
    async (c) => {
      const tenant = c.get("tenant");
      const explain =
        tenant && options.explainFor ? await options.explainFor(tenant) : options.explain;
      return c.json(await explain(c.req.valid("json").command), 200);
    },
    commandBodyHook('Send {"command": "<shell command>"}, the same body as POST /execute.'),
  );
}
