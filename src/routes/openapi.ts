import { Hono } from "hono";
import type { AppEnv } from "../app-env.js";
import type { OperationDoc } from "../openapi/operations.js";

/**
 * `GET /openapi.json`: the API as an OpenAPI 3.1 document, generated from the operation table
 * on the first request and kept as text (about 43 KB; building it keeps about 0.6 MiB of heap
 * once).
 */
export function createOpenApiRoutes(operations: () => Promise<readonly OperationDoc[]>) {
  let document: Promise<string> | undefined;
  const generate = async () => {
    const { buildOpenApiDocument } = await import("../openapi/document.js");
    return JSON.stringify(buildOpenApiDocument(await operations()));
  };
  return new Hono<AppEnv>().get("/", async (c) => {
    document ??= generate();
    c.header("Content-Type", "application/json; charset=UTF-8");
    return c.body(await document);
  });
}
