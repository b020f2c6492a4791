import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env.js";
import { AUDIT_OUTCOMES, type AuditStore, InvalidCursorError } from "../audit/audit-log.js";
import { requireConfiguredApiKey } from "../http/api-key.js";
import { ApiError } from "../http/errors.js";
import { auditPageSchema } from "../openapi/response-schemas.js";
import {
  CONFIGURED_API_KEY_ERRORS,
  CONFIGURED_API_KEY_SECURITY,
  errorAnswers,
  jsonAnswer,
  QUERY_ERRORS,
} from "../openapi/route-docs.js";
import { visibleOwner } from "../tenants/guard.js";

export const AUDIT_PAGE_DEFAULT = 50;
export const AUDIT_PAGE_MAX = 200;

const isoTime = z.iso
  .datetime({ offset: true, message: "must be an ISO 8601 date-time, e.g. 2026-01-01T00:00:00Z" })
  .transform((value) => new Date(value));

export const auditQuerySchema = z
  .strictObject({
    outcome: z.enum(AUDIT_OUTCOMES).optional(),
    rule: z.string().min(1).max(200).optional().describe("The rule that blocked the command."),
    requestId: z.string().min(1).max(200).optional(),
    session: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe("The caller's session id (s-…) or agentsh's session id."),
    caller: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe("The API key's fingerprint (key-…, as in each entry's caller)."),
    instance: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe("The instance that answered (INSTANCE_TAG)."),
    since: isoTime.optional().describe("Entries at or after this time."),
    until: isoTime.optional().describe("Entries before this time."),
    cursor: z.string().min(1).max(200).optional().describe("A previous page's nextCursor."),
    limit: z.coerce
      .number()
      .int()
      .min(1)
      .max(AUDIT_PAGE_MAX, `limit must be at most ${AUDIT_PAGE_MAX}`)
      .default(AUDIT_PAGE_DEFAULT),
    // The API key may come as a query parameter (v0 compatibility); it is not a filter.
    api_key: z.string().optional().describe("The API key (v0 compatibility); prefer X-API-Key."),
  })
  .refine((q) => !q.since || !q.until || q.since < q.until, {
    path: ["until"],
    message: "until must be later than since",
  });

/**
 * `GET /audit`: the commands the service answered (run or refused), newest first; with
 * PostgreSQL, those of every instance. Needs the API key; without one configured the route
 * refuses outright rather than publish what agents tried. Read-only: entries are append-only.
 */
export function createAuditRoutes(options: {
  audit: Pick<AuditStore, "query">;
  apiKeys: readonly string[];
  /** Replaces the API-key check (a tenants file: src/tenants/guard.ts). */
  guard?: MiddlewareHandler<AppEnv>;
}) {
  const route = createRoute({
    method: "get",
    path: "/",
    operationId: "audit",
    tags: ["audit"],
    summary: "recent commands and decisions (API key required)",
    security: CONFIGURED_API_KEY_SECURITY,
    middleware: [
      options.guard ??
        requireConfiguredApiKey(options.apiKeys, {
          message: "The audit API is disabled because no API_KEY is configured.",
          hint: "Set API_KEY (at least 16 characters) and send it in the X-API-Key header.",
        }),
    ],
    request: { query: auditQuerySchema },
    responses: {
      200: jsonAnswer("One page of the audit log.", auditPageSchema),
      ...errorAnswers(CONFIGURED_API_KEY_ERRORS, QUERY_ERRORS, ["audit_unavailable"]),
    },
  });
  return new OpenAPIHono<AppEnv>().openapi(
    route,
    async (c) => {
      const { api_key: _key, ...filter } = c.req.valid("query");
      try {
        return c.json(
          await options.audit.query({
            limit: filter.limit,
            ...(filter.outcome ? { outcome: filter.outcome } : {}),
            ...(filter.rule ? { rule: filter.rule } : {}),
            ...(filter.requestId ? { requestId: filter.requestId } : {}),
            ...(filter.session ? { session: filter.session } : {}),
            // A tenant sees its own entries only (an operator, every tenant's).
            ...(visibleOwner(c) !== null
              ? { caller: visibleOwner(c) as string }
              : filter.caller
                ? { caller: filter.caller }
                : {}),
            ...(filter.instance ? { instance: filter.instance } : {}),
            ...(filter.since ? { since: filter.since } : {}),
            ...(filter.until ? { until: filter.until } : {}),
            ...(filter.cursor ? { cursor: filter.cursor } : {}),
          }),
          200,
        );
      } catch (error) {
        if (!(error instanceof InvalidCursorError)) throw error;
        throw new ApiError({
          code: "validation_failed",
          message: error.message,
          hint: "Start again without a cursor.",
        });
      }
    },
    (result): undefined => {
      if (!result.success) {
        throw new ApiError({
          code: "validation_failed",
          message: result.error.issues
            .map((issue) => `${issue.path.join(".") || "query"}: ${issue.message}`)
            .join("; "),
          hint: `Filters: outcome, rule, requestId, session, caller, instance, since, until (ISO 8601), cursor, limit (1-${AUDIT_PAGE_MAX}).`,
          details: result.error.issues.map((issue) => ({
            path: issue.path.join("."),
            message: issue.message,
          })),
        });
      }
    },
  );
}
