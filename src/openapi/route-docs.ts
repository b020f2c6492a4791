import { OpenAPIHono, type RouteConfig } from "@hono/zod-openapi";
import type { Hono } from "hono";
import type { z } from "zod";
import type { AppEnv } from "../app-env.js";
import { ERROR_CODES, type ErrorCode } from "../http/errors.js";
import { type ErrorEnvelope, errorEnvelope, errorEnvelopeSchema } from "./response-schemas.js";

/**
 * The vocabulary the routes declare themselves with (`createRoute` in src/routes/*.ts): answers,
 * the error codes each guard or check can send, and who may call. The OpenAPI document, `GET /`'s
 * endpoint list and the handlers' types all come from those declarations.
 */

/** The service's version (package.json), also the document's. */
export const API_VERSION = "0.1.0";

/** A JSON answer. */
export const jsonAnswer = <S extends z.ZodType>(description: string, schema: S) => ({
  description,
  content: { "application/json": { schema } },
});

// Error codes by what sends them; a route lists those of the checks it runs (and its own).

/** `requireApiKey` (src/http/api-key.ts) with a key configured. */
export const API_KEY_ERRORS = ["api_key_missing", "api_key_invalid"] as const;
/** `requireConfiguredApiKey`: refused outright (403) when no key is configured. */
export const CONFIGURED_API_KEY_ERRORS = [...API_KEY_ERRORS, "api_key_not_configured"] as const;
/** `rateLimit` (src/http/rate-limit.ts), applied per route group in src/app.ts. */
export const RATE_LIMIT_ERRORS = ["rate_limited"] as const;
/** A validated query: the validator's hook. */
export const QUERY_ERRORS = ["validation_failed"] as const;
/**
 * A JSON body: the app's body limit, `strictJsonBody` (media type, UTF-8, duplicate keys), Hono's
 * JSON parser (`invalid_request`) and the validator's hook.
 */
export const JSON_BODY_ERRORS = [
  "body_too_large",
  "unsupported_media_type",
  "invalid_encoding",
  "duplicate_key",
  "invalid_request",
  "validation_failed",
] as const;
/**
 * What may stop any command before or while it runs (`refusalError`); `canceled` is never seen
 * by a client (it has gone), so it is not listed.
 */
export const COMMAND_REFUSALS = [
  "enforcement_degraded",
  "busy",
  "agentsh_unavailable",
  "enforcement_failed",
  "audit_unavailable",
  "internal_error",
] as const;
/** Finding a caller's session: another key's session is a 404 too. */
export const SESSION_LOOKUP = ["session_not_found", "session_on_other_instance"] as const;

type StatusOf<C extends ErrorCode> = (typeof ERROR_CODES)[C];
type CodesWithStatus<C extends ErrorCode, S> = C extends ErrorCode
  ? StatusOf<C> extends S
    ? C
    : never
  : never;
type EnvelopeAnswer<C extends ErrorCode> = {
  description: string;
  content: { "application/json": { schema: z.ZodType<ErrorEnvelope<C>> } };
};
export type ErrorAnswers<C extends ErrorCode> = {
  [S in StatusOf<C>]: EnvelopeAnswer<CodesWithStatus<C, S>>;
} & { default: EnvelopeAnswer<ErrorCode> };

/**
 * A route's error answers: its codes grouped by the status each goes with (the envelope with
 * `error.code` narrowed to them), and `default` for any other error.
 */
export function errorAnswers<const C extends ErrorCode = never>(
  ...groups: ReadonlyArray<readonly C[]>
): ErrorAnswers<C> {
  const byStatus = new Map<number, C[]>();
  // In the order of ERROR_CODES, so each status lists its codes the same way everywhere.
  const listed = new Set<ErrorCode>(groups.flat());
  const codes = (Object.keys(ERROR_CODES) as C[]).filter((code) => listed.has(code));
  for (const code of codes) {
    const status = ERROR_CODES[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const answers: Record<string, unknown> = {};
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    answers[status] = {
      description: codes.map((code) => `\`${code}\``).join(", "),
      content: { "application/json": { schema: errorEnvelopeSchema(codes) } },
    };
  }
  answers.default = {
    description:
      "Any other error in the envelope, e.g. 500 `internal_error`, 405 `method_not_allowed`.",
    content: { "application/json": { schema: errorEnvelope } },
  };
  return answers as ErrorAnswers<C>;
}

// Who may call (the document's `components.securitySchemes`, registered in routes/openapi.ts).
type Security = NonNullable<RouteConfig["security"]>;
const KEY: Security = [{ apiKeyHeader: [] }, { bearer: [] }, { apiKeyQuery: [] }];
/** `requireApiKey`: without API_KEY the service runs open (v0); `{}` says no credentials work too. */
export const API_KEY_SECURITY: Security = [...KEY, {}];
/** `requireConfiguredApiKey`: always a key. */
export const CONFIGURED_API_KEY_SECURITY: Security = KEY;
export const OPEN: Security = [];

/**
 * The route declarations of an app built from them (an OpenAPIHono, e.g. `createApp`'s), in the
 * order the routes were registered.
 */
export function routeDeclarations(app: Hono<AppEnv>): RouteConfig[] {
  if (!(app instanceof OpenAPIHono)) throw new Error("not an app of route declarations");
  return app.openAPIRegistry.definitions.flatMap((definition) =>
    definition.type === "route" ? [definition.route] : [],
  );
}

/**
 * Each declared route's "METHOD /path" (as Hono writes the path) and summary, in order: `GET /`'s
 * endpoint list. Routes that only refuse (no 2xx or 3xx answer, e.g. GET /mcp) are in the
 * document but not here.
 */
export function endpointList(routes: readonly RouteConfig[]): Record<string, string> {
  return Object.fromEntries(
    routes.flatMap((route) =>
      Object.keys(route.responses).some((status) => /^[23]/.test(status))
        ? [[`${route.method.toUpperCase()} ${honoPath(route.path)}`, route.summary ?? ""]]
        : [],
    ),
  );
}

/** Hono writes `:name` where OpenAPI has `{name}`. */
export const honoPath = (openApiPath: string) => openApiPath.replace(/\{(\w+)\}/g, ":$1");
