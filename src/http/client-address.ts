import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env.js";

/** Where the TCP peer's address comes from; the runtime entry supplies it (Node: getConnInfo). */
export type SocketAddressOf = (c: Context) => string | undefined;

/**
 * The caller's address for rate limiting and logs. With `trustedHops` = 0 it is the socket peer.
 * Behind N trusted proxies that each append the address they saw to X-Forwarded-For, the client
 * is the N-th entry from the right; anything left of it was written by the client and is ignored,
 * so a spoofed header cannot buy a fresh rate-limit bucket.
 */
export function resolveClientAddress(
  forwardedFor: string | undefined,
  socketAddress: string | undefined,
  trustedHops: number,
): string {
  const socket = socketAddress ?? "unknown";
  if (trustedHops === 0 || !forwardedFor) return socket;
  const hops = forwardedFor
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
  return hops[hops.length - trustedHops] ?? socket;
}

export function clientAddress(
  socketAddressOf: SocketAddressOf,
  trustedHops: number,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.set(
      "clientAddress",
      resolveClientAddress(c.req.header("x-forwarded-for"), socketAddressOf(c), trustedHops),
    );
    await next();
  };
}
