import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "../app-env.js";
import type { Logger } from "../logger.js";

/**
 * One JSON error envelope for every 4xx/5xx the service sends:
 *   { "error": { "code": "...", "message": "...", "hint"?: "...", "details"?: [...] }, "requestId": "..." }
 */

export interface ErrorBody {
  code: string;
  message: string;
  /** What the caller can do about it. */
  hint?: string;
  details?: unknown;
}

/** Thrown anywhere in a request; `app.onError` turns it into the envelope. */
export class ApiError extends HTTPException {
  constructor(
    status: ContentfulStatusCode,
    readonly body: ErrorBody,
    readonly headers: Record<string, string> = {},
  ) {
    super(status, { message: body.message });
    this.name = "ApiError";
  }
}

export function errorResponse(
  c: Context<AppEnv>,
  status: ContentfulStatusCode,
  body: ErrorBody,
  headers: Record<string, string> = {},
) {
  for (const [name, value] of Object.entries(headers)) c.header(name, value);
  return c.json({ error: body, requestId: c.get("requestId") }, status);
}

/** Maps anything thrown to the envelope; never sends a stack trace. */
export function createErrorHandler(logger: Logger) {
  return (error: Error, c: Context<AppEnv>) => {
    if (error instanceof ApiError) {
      return errorResponse(c, error.status as ContentfulStatusCode, error.body, error.headers);
    }
    if (error instanceof HTTPException) {
      // Raised by Hono itself, e.g. the JSON validator on a malformed body.
      const status = error.status as ContentfulStatusCode;
      return errorResponse(c, status, {
        code: status === 400 ? "invalid_request" : "http_error",
        message: error.message || "The request could not be processed.",
      });
    }
    logger.error("unhandled error", {
      requestId: c.get("requestId"),
      path: c.req.path,
      error: error instanceof Error ? error.message : String(error),
    });
    return errorResponse(c, 500, {
      code: "internal_error",
      message: "The service hit an unexpected error. Nothing further was executed.",
      hint: "Retry later; if it persists, report the requestId.",
    });
  };
}
