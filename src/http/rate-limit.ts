import type { MiddlewareHandler } from "hono";
import { rateLimiter, type Store } from "hono-rate-limiter";
import type { AppEnv } from "../app-env.js";
import { errorResponse } from "./errors.js";

export interface RateLimitOptions {
  /** Distinguishes buckets of different route groups in a shared store. */
  name: string;
  windowMs: number;
  limit: number;
  store?: Store<AppEnv>;
}

/** Per-client fixed-window limit with standard RateLimit-* headers and a JSON 429. */
export function rateLimit(options: RateLimitOptions): MiddlewareHandler<AppEnv> {
  return rateLimiter<AppEnv>({
    windowMs: options.windowMs,
    limit: options.limit,
    standardHeaders: "draft-6",
    keyGenerator: (c) => `${options.name}:${c.get("clientAddress")}`,
    ...(options.store ? { store: options.store } : {}),
    handler: (c) => {
      const retryAfter = Math.ceil(options.windowMs / 1000);
      return errorResponse(
        c,
        {
          code: "rate_limited",
          message: `Too many requests: at most ${options.limit} per ${retryAfter} s for ${options.name}.`,
          hint: "Wait for the window to reset (see the RateLimit-Reset header).",
        },
        { "Retry-After": String(retryAfter) },
      );
    },
  }) as MiddlewareHandler<AppEnv>;
}
