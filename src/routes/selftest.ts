import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env.js";
import type { EnforcementMonitor } from "../enforcement/monitor.js";
import type { ProtectionReport } from "../enforcement/protections.js";
import { requireConfiguredApiKey } from "../http/api-key.js";
import { ApiError } from "../http/errors.js";
import { selftestResponseSchema } from "../openapi/response-schemas.js";
import {
  CONFIGURED_API_KEY_ERRORS,
  CONFIGURED_API_KEY_SECURITY,
  errorAnswers,
  jsonAnswer,
  RATE_LIMIT_ERRORS,
} from "../openapi/route-docs.js";

/**
 * `POST /selftest`: runs the enforcement canaries now and returns the fresh result. It makes the
 * service run commands on demand, so it exists only behind a configured API key.
 */
export function createSelftestRoutes(options: {
  monitor: Pick<EnforcementMonitor, "verify" | "lastProof">;
  protections: ProtectionReport;
  apiKeys: readonly string[];
  /** Replaces the API-key check (a tenants file: operators only). */
  guard?: MiddlewareHandler<AppEnv>;
}) {
  const route = createRoute({
    method: "post",
    path: "/",
    operationId: "selftest",
    tags: ["service"],
    summary: "run the enforcement canaries now (API key required)",
    security: CONFIGURED_API_KEY_SECURITY,
    middleware: [
      options.guard ??
        requireConfiguredApiKey(options.apiKeys, {
          message:
            "POST /selftest runs the enforcement canaries on demand, so it is only served when the service has an API key; none is configured.",
          hint: "Set API_KEY on the service. Without it, /health still shows the last scheduled self-test.",
        }),
    ],
    responses: {
      200: jsonAnswer("The fresh canary results.", selftestResponseSchema),
      ...errorAnswers(CONFIGURED_API_KEY_ERRORS, RATE_LIMIT_ERRORS, ["agentsh_unavailable"]),
    },
  });
  return new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
    let state: Awaited<ReturnType<typeof options.monitor.verify>>;
    try {
      state = await options.monitor.verify();
    } catch (error) {
      throw new ApiError(
        {
          code: "agentsh_unavailable",
          message: `The self-test could not run: ${error instanceof Error ? error.message : String(error)}.`,
          hint: "GET /health shows agentsh's state; retry once it reports ok.",
        },
        { "Retry-After": "5" },
      );
    }
    return c.json(
      {
        mode: state.mode,
        probedAt: options.monitor.lastProof()?.at ?? null,
        checks: state.checks,
        problems: state.problems,
        protections: options.protections(),
      },
      200,
    );
  });
}
