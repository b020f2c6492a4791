import { createRoute, OpenAPIHono, type z } from "@hono/zod-openapi";
import type { TypedResponse } from "hono";
import type { JSONParsed } from "hono/utils/types";
import type { AppEnv } from "../app-env.js";
import { openApiDocumentSchema } from "../openapi/response-schemas.js";
import { API_VERSION, errorAnswers, jsonAnswer, OPEN } from "../openapi/route-docs.js";

/** What the document says about itself; the operations and schemas come from the routes. */
export const DOCUMENT_HEADER = {
  openapi: "3.1.0",
  info: {
    title: "governed-executor",
    version: API_VERSION,
    description:
      "Runs AI agents' shell commands through agentsh policy enforcement. Every error is the JSON envelope `ErrorEnvelope`; each code goes with one status. Generated from the route declarations (`createRoute`) whose zod schemas validate the requests and type the answers.",
  },
  tags: [
    { name: "commands", description: "Run or explain a command." },
    { name: "sessions", description: "Working directory and variables kept between commands." },
    { name: "demo", description: "Scenario tables that show what is allowed and blocked." },
    { name: "service", description: "The service's own state." },
    { name: "audit", description: "What was run and decided." },
  ],
};

const route = createRoute({
  method: "get",
  path: "/",
  operationId: "openApiDocument",
  tags: ["service"],
  summary: "this API as an OpenAPI 3.1 document",
  security: OPEN,
  responses: {
    200: jsonAnswer("This document.", openApiDocumentSchema),
    ...errorAnswers(),
  },
});

/**
 * `GET /openapi.json`: the API as an OpenAPI 3.1 document, generated from the app's route
 * declarations on the first request and kept as text.
 */
export function createOpenApiRoutes(generate: () => object) {
  let document: string | undefined;
  const app = new OpenAPIHono<AppEnv>();
  // Referenced by each route's `security` (src/openapi/route-docs.ts).
  const schemes = {
    apiKeyHeader: { type: "apiKey", in: "header", name: "X-API-Key" },
    bearer: { type: "http", scheme: "bearer", description: "The API key as a bearer token." },
    apiKeyQuery: {
      type: "apiKey",
      in: "query",
      name: "api_key",
      description: "v0 compatibility; prefer the header.",
    },
  } as const;
  for (const [name, scheme] of Object.entries(schemes)) {
    app.openAPIRegistry.registerComponent("securitySchemes", name, scheme);
  }
  return app.openapi(route, (c) => {
    document ??= JSON.stringify(generate());
    // Sent as the text it is kept as; for the types, the JSON answer that text is.
    return c.body(document, 200, {
      "Content-Type": "application/json; charset=UTF-8",
    }) as unknown as TypedResponse<JSONParsed<z.output<typeof openApiDocumentSchema>>, 200, "json">;
  });
}
