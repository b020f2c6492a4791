import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env.js";
import { serviceIndexSchema } from "../openapi/response-schemas.js";
import { errorAnswers, jsonAnswer, OPEN } from "../openapi/route-docs.js";
import { prefersHtml } from "./console.js";

const route = createRoute({
  method: "get",
  path: "/",
  operationId: "serviceIndex",
  tags: ["service"],
  summary: "what this service is and its endpoints",
  security: OPEN,
  responses: {
    200: jsonAnswer("The endpoints.", serviceIndexSchema),
    303: {
      description: "A browser (its Accept ranks text/html above JSON) is sent to the console.",
      headers: { Location: { schema: { type: "string", const: "/console" } } },
    },
    ...errorAnswers(),
  },
});

/**
 * `GET /`: browsers are sent to the console; API clients get the endpoint list, which comes from
 * the route declarations, as the OpenAPI document does (`endpoints`, read on first use).
 */
export function createServiceIndexRoutes(endpoints: () => Record<string, string>) {
  let listed: Record<string, string> | undefined;
  return new OpenAPIHono<AppEnv>().openapi(route, (c) => {
    c.header("Vary", "Accept");
    if (prefersHtml(c)) return c.redirect("/console", 303);
    listed ??= endpoints();
    return c.json(
      {
        service: "governed-executor",
        description: "Runs shell commands through agentsh policy enforcement.",
        endpoints: listed,
      },
      200,
    );
  });
}
