import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "../app-env.js";
import { AuditUnavailableError, AuditWriteError } from "../audit/audit-log.js";
import type { Logger } from "../logger.js";
import type { Refusal } from "../run-command.js";

/**
 * One JSON error envelope for every 4xx/5xx the service sends:
 *   { "error": { "code": "...", "message": "...", "hint"?: "...", "details"?: [...] }, "requestId": "..." }
 */

/**
 * Every error code the service sends: one closed list, with the status each one goes with.
 * The error table in docs/api.md is checked against it (test/http/errors.test.ts).
 */
export const ERROR_CODES = {
  validation_failed: 400,
  invalid_request: 400,
  invalid_encoding: 400,
  duplicate_key: 400,
  api_key_missing: 401,
  api_key_invalid: 401,
  api_key_not_configured: 403,
  approval_refused: 403,
  not_an_approver: 403,
  not_found: 404,
  approval_not_found: 404,
  session_not_found: 404,
  method_not_allowed: 405,
  session_busy: 409,
  body_too_large: 413,
  unsupported_media_type: 415,
  session_on_other_instance: 421,
  rate_limited: 429,
  session_limit: 429,
  internal_error: 500,
  enforcement_failed: 500,
  agentsh_unavailable: 503,
  audit_unavailable: 503,
  enforcement_degraded: 503,
  busy: 503,
  canceled: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  /** What the caller can do about it. */
  hint?: string;
  /** validation_failed: each problem, by field. */
  details?: Array<{ path: string; message: string }>;
}

/** Thrown anywhere in a request; `app.onError` turns it into the envelope. */
export class ApiError extends HTTPException {
  constructor(
    readonly body: ErrorBody,
    readonly headers: Record<string, string> = {},
  ) {
    super(ERROR_CODES[body.code], { message: body.message });
    this.name = "ApiError";
  }
}

/** How each refusal of the command runner reaches the caller. Nothing ran for any of them
 * except `unenforced` (ran unsandboxed; output withheld) and `canceled` (the caller is gone). */
export function refusalError(refusal: Refusal): ApiError {
  switch (refusal.outcome) {
    case "degraded":
      return new ApiError({
        code: "enforcement_degraded",
        message: `The command was not run: ${refusal.detail}.`,
        hint: "GET /health shows which protection is missing. ALLOW_DEGRADED=true overrides (not recommended).",
      });
    case "busy":
      return new ApiError(
        {
          code: "busy",
          message: `The command was not run: the service is at capacity (${refusal.detail}).`,
          hint: "Retry after the number of seconds in Retry-After.",
        },
        { "Retry-After": "2" },
      );
    case "canceled":
      // The client is gone; the status is for the logs only.
      return new ApiError({ code: "canceled", message: refusal.detail });
    case "unavailable":
      return new ApiError(
        {
          code: "agentsh_unavailable",
          message: `The command was not run: ${refusal.detail}.`,
          hint: "GET /health shows agentsh's state; retry once it reports ok.",
        },
        { "Retry-After": "5" },
      );
    case "unenforced":
      return new ApiError({
        code: "enforcement_failed",
        message: `${refusal.detail}; its output is withheld and the service now refuses commands.`,
        hint: "Check the agentsh server log and that agentsh-unixwrap is installed, then restart the service.",
      });
  }
}

/** The envelope, with the status that goes with its code. */
export function errorResponse(
  c: Context<AppEnv>,
  body: ErrorBody,
  headers: Record<string, string> = {},
) {
  for (const [name, value] of Object.entries(headers)) c.header(name, value);
  return c.json({ error: body, requestId: c.get("requestId") }, ERROR_CODES[body.code]);
}

/**
 * Anything thrown, as the envelope's body and headers; never a stack trace. What is not an
 * ApiError (or Hono's own 400) is a bug: it is logged with `context` and answered internal_error.
 * Shared by the error handler, the event stream of /execute and the MCP tools.
 */
export function errorBodyOf(
  error: unknown,
  logger: Logger,
  context: Record<string, unknown>,
): { body: ErrorBody; headers: Record<string, string> } {
  if (error instanceof ApiError) return { body: error.body, headers: error.headers };
  if (error instanceof AuditWriteError) {
    // The command may have run; without its audit entry the answer is withheld (fail closed).
    logger.error("audit write failed", { ...context, error: error.message });
    return {
      body: {
        code: "audit_unavailable",
        message:
          "The command's audit entry could not be stored, so its result is withheld. The command may have run.",
        hint: "GET /health and the service log say why the audit database is unreachable; retry once it is back.",
      },
      headers: { "Retry-After": "5" },
    };
  }
  if (error instanceof AuditUnavailableError) {
    logger.error("audit read failed", { ...context, error: error.message });
    return {
      body: {
        code: "audit_unavailable",
        message: "The audit trail cannot be read right now.",
        hint: "The service log says why the audit database is unreachable; retry once it is back.",
      },
      headers: { "Retry-After": "5" },
    };
  }
  if (error instanceof HTTPException && error.status === 400) {
    // Raised by Hono itself, e.g. the JSON validator on a malformed body.
    const message = error.message || "The request could not be processed.";
    return { body: { code: "invalid_request", message }, headers: {} };
  }
  logger.error("unhandled error", {
    ...context,
    error: error instanceof Error ? error.message : String(error),
  });
  return {
    body: {
      code: "internal_error",
      message: "The service hit an unexpected error. Nothing further was executed.",
      hint: "Retry later; if it persists, report the requestId.",
    },
    headers: {},
  };
}

/** Maps anything thrown to the envelope. */
export function createErrorHandler(logger: Logger) {
  return (error: Error, c: Context<AppEnv>) => {
    const { body, headers } = errorBodyOf(error, logger, {
      requestId: c.get("requestId"),
      path: c.req.path,
    });
    return errorResponse(c, body, headers);
  };
}
