import { zValidator } from "@hono/zod-validator";
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../app-env.js";
import { AUDIT_OUTCOMES, type AuditLog, InvalidCursorError } from "../audit/audit-log.js";
import { requireConfiguredApiKey } from "../http/api-key.js";
import { ApiError } from "../http/errors.js";

export const AUDIT_PAGE_DEFAULT = 50;
export const AUDIT_PAGE_MAX = 200;

const isoTime = z.iso
  .datetime({ offset: true, message: "must be an ISO 8601 date-time, e.g. 2026-01-01T00:00:00Z" })
  .transform((value) => new Date(value));

export const auditQuerySchema = z
  .strictObject({
    outcome: z.enum(AUDIT_OUTCOMES).optional(),
    rule: z.string().min(1).max(200).optional(),
    requestId: z.string().min(1).max(200).optional(),
    since: isoTime.optional(),
    until: isoTime.optional(),
    cursor: z.string().min(1).max(200).optional(),
    limit: z.coerce
      .number()
      .int()
      .min(1)
      .max(AUDIT_PAGE_MAX, `limit must be at most ${AUDIT_PAGE_MAX}`)
      .default(AUDIT_PAGE_DEFAULT),
    // The API key may come as a query parameter (v0 compatibility); it is not a filter.
    api_key: z.string().optional(),
  })
  .refine((q) => !q.since || !q.until || q.since < q.until, {
    path: ["until"],
    message: "until must be later than since",
  });

/**
 * `GET /audit`: the commands this instance ran (or refused), newest first. Needs the API key;
 * without one configured the route refuses outright rather than publish what agents tried.
 */
export function createAuditRoutes(options: {
  audit: Pick<AuditLog, "query">;
  apiKeys: readonly string[];
}) {
  return new Hono<AppEnv>().get(
    "/",
    requireConfiguredApiKey(options.apiKeys, {
      message: "The audit API is disabled because no API_KEY is configured.",
      hint: "Set API_KEY (at least 16 characters) and send it in the X-API-Key header.",
    }),
    zValidator("query", auditQuerySchema, (result) => {
      if (!result.success) {
        throw new ApiError({
          code: "validation_failed",
          message: result.error.issues
            .map((issue) => `${issue.path.join(".") || "query"}: ${issue.message}`)
            .join("; "),
          hint: `Filters: outcome, rule, requestId, since, until (ISO 8601), cursor, limit (1-${AUDIT_PAGE_MAX}).`,
          details: result.error.issues.map((issue) => ({
            path: issue.path.join("."),
            message: issue.message,
          })),
        });
      }
    }),
    (c) => {
      const { api_key: _key, ...filter } = c.req.valid("query");
      try {
        return c.json(
          options.audit.query({
            limit: filter.limit,
            ...(filter.outcome ? { outcome: filter.outcome } : {}),
            ...(filter.rule ? { rule: filter.rule } : {}),
            ...(filter.requestId ? { requestId: filter.requestId } : {}),
            ...(filter.since ? { since: filter.since } : {}),
            ...(filter.until ? { until: filter.until } : {}),
            ...(filter.cursor ? { cursor: filter.cursor } : {}),
          }),
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
  );
}
