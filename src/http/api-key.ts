import { createHash, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env.js";
import { ApiError } from "./errors.js";

/** The owner of what a caller creates when the service has no API key. */
export const ANONYMOUS_OWNER = "anonymous";

/**
 * Guards a route with the service's API keys when any are configured. Accepted from the
 * `X-API-Key` header, `Authorization: Bearer`, or the v0-compatible `?api_key=` query.
 * Both sides are hashed first so the comparison is constant-time whatever the lengths.
 * Sets `owner`: a fingerprint of the key that matched (sessions belong to it).
 */
export function requireApiKey(apiKeys: readonly string[]): MiddlewareHandler<AppEnv> {
  if (apiKeys.length === 0) {
    return async (c, next) => {
      c.set("owner", ANONYMOUS_OWNER);
      await next();
    };
  }
  const expected = apiKeys.map((key) => ({ digest: digest(key), owner: ownerOf(key) }));
  return async (c, next) => {
    const presented = presentedKey(c);
    const presentedDigest = presented === undefined ? undefined : digest(presented);
    // Every key is compared (no early exit), so the time does not say which one matched.
    let owner: string | undefined;
    for (const key of expected) {
      if (presentedDigest && timingSafeEqual(presentedDigest, key.digest)) owner = key.owner;
    }
    if (owner === undefined) throw keyRefused(presented);
    c.set("owner", owner);
    await next();
  };
}

/**
 * For endpoints that must never be open (they publish what agents tried, or run commands on
 * demand): without a configured key they answer 403 `api_key_not_configured`, saying `why`;
 * with one they check it like `requireApiKey`.
 */
export function requireConfiguredApiKey(
  apiKeys: readonly string[],
  why: { message: string; hint: string },
): MiddlewareHandler<AppEnv> {
  if (apiKeys.length === 0) {
    return async () => {
      throw new ApiError({ code: "api_key_not_configured", ...why });
    };
  }
  return requireApiKey(apiKeys);
}

/** A key's public name: enough to tell keys apart in logs and ownership, useless as a key. */
export function ownerOf(apiKey: string): string {
  return `key-${createHash("sha256").update(apiKey, "utf8").digest("hex").slice(0, 12)}`;
}

/** The key a request presents: `X-API-Key`, `Authorization: Bearer`, or `?api_key=` (v0). */
export function presentedKey(c: Context<AppEnv>): string | undefined {
  const bearer = c.req.header("authorization")?.match(/^Bearer\s+(.+)$/i)?.[1];
  return c.req.header("x-api-key") ?? bearer ?? c.req.query("api_key");
}

/** 401 for a missing or unknown key (`message` and `hint` for a narrower refusal). */
export function keyRefused(
  presented: string | undefined,
  say: { message?: string; hint?: string } = {},
): ApiError {
  return new ApiError(
    {
      code: presented === undefined ? "api_key_missing" : "api_key_invalid",
      message:
        say.message ??
        (presented === undefined
          ? "This endpoint requires an API key."
          : "The API key is not valid."),
      hint: say.hint ?? "Send the key in the X-API-Key header.",
    },
    { "WWW-Authenticate": 'ApiKey header="X-API-Key"' },
  );
}

export function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
