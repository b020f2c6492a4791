import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env.js";
import { ApiError } from "./errors.js";

/**
 * Guards a route with the service's API key when one is configured. Accepted from the
 * `X-API-Key` header, `Authorization: Bearer`, or the v0-compatible `?api_key=` query.
 * Both sides are hashed first so the comparison is constant-time whatever the lengths.
 */
export function requireApiKey(apiKey: string | undefined): MiddlewareHandler<AppEnv> {
  if (apiKey === undefined) return async (_c, next) => next();
  const expected = digest(apiKey);
  return async (c, next) => {
    const presented =
      c.req.header("x-api-key") ??
      bearerToken(c.req.header("authorization")) ??
      c.req.query("api_key");
    if (presented === undefined || !timingSafeEqual(digest(presented), expected)) {
      throw new ApiError(
        {
          code: presented === undefined ? "api_key_missing" : "api_key_invalid",
          message:
            presented === undefined
              ? "This endpoint requires an API key."
              : "The API key is not valid.",
          hint: "Send the key in the X-API-Key header.",
        },
        { "WWW-Authenticate": 'ApiKey header="X-API-Key"' },
      );
    }
    await next();
  };
}

/**
 * For endpoints that must never be open (they publish what agents tried, or run commands on
 * demand): without a configured key they answer 403 `api_key_not_configured`, saying `why`;
 * with one they check it like `requireApiKey`.
 */
export function requireConfiguredApiKey(
  apiKey: string | undefined,
  why: { message: string; hint: string },
): MiddlewareHandler<AppEnv> {
  if (apiKey === undefined) {
    return async () => {
      throw new ApiError({ code: "api_key_not_configured", ...why });
    };
  }
  return requireApiKey(apiKey);
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer\s+(.+)$/i);
  return match?.[1];
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
