import { timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { rateLimiter, type Store } from "hono-rate-limiter";
import type { AppEnv } from "../app-env.js";
import { digest, keyRefused, presentedKey } from "../http/api-key.js";
import { errorResponse } from "../http/errors.js";
import type { SessionTenant } from "../sessions/contract.js";
import { type Tenant, type TenantDirectory, tenantOwner } from "./tenants.js";

/**
 * The API-key guard when a tenants file is in use: the key must belong to a tenant, which then
 * owns what the request creates (`owner` = `tenant-<name>`) and whose settings the routes read
 * (`tenant`). The key is read from the same places as without tenants (X-API-Key, Bearer,
 * `?api_key=`). A tenant's own request rate (rate_limits) is counted here, after the key is
 * known, by hono-rate-limiter keyed by the tenant: in the shared store (Redis) when the service
 * has one, so every instance counts the same window.
 */
export function requireTenant(
  directory: TenantDirectory,
  store?: () => Store<AppEnv>,
): MiddlewareHandler<AppEnv> {
  // One limiter per tenant and setting (a reload may change a tenant's window or count).
  const limiters = new Map<string, MiddlewareHandler<AppEnv>>();
  const limiterOf = (tenant: Tenant, limits: { windowMs: number; requests: number }) => {
    const id = `${tenant.name}:${limits.windowMs}:${limits.requests}`;
    let limiter = limiters.get(id);
    if (!limiter) {
      const seconds = Math.ceil(limits.windowMs / 1000);
      limiter = rateLimiter<AppEnv>({
        windowMs: limits.windowMs,
        limit: limits.requests,
        standardHeaders: "draft-6",
        keyGenerator: () => `tenant:${id}`,
        ...(store ? { store: store() } : {}),
        handler: (c) =>
          errorResponse(
            c,
            {
              code: "rate_limited",
              message: `Too many requests: tenant ${tenant.name} may send ${limits.requests} per ${seconds} s.`,
              hint: "Wait for the window to reset (see the RateLimit-Reset header).",
            },
            { "Retry-After": c.res.headers.get("RateLimit-Reset") ?? String(seconds) },
          ),
      }) as MiddlewareHandler<AppEnv>;
      limiters.set(id, limiter);
    }
    return limiter;
  };
  return async (c, next) => {
    const presented = presentedKey(c);
    const tenant = presented === undefined ? undefined : directory.tenantOf(presented);
    if (tenant === undefined) throw keyRefused(presented);
    c.set("owner", tenantOwner(tenant));
    c.set("tenant", tenant);
    if (tenant.rateLimits) return limiterOf(tenant, tenant.rateLimits)(c, next);
    await next();
  };
}

/** Operators see every tenant; others only their own (null: no filter). */
export function visibleOwner(c: Context<AppEnv>): string | null {
  const tenant = c.get("tenant");
  if (!tenant || tenant.operator) return null;
  return tenantOwner(tenant);
}

/** A tenant's say in the sessions it creates (undefined without tenants). */
export function sessionTenant(tenant: Tenant | undefined): SessionTenant | undefined {
  return tenant ? { policy: tenant.policy, quota: tenant.sessionQuota } : undefined;
}

/**
 * `/metrics` with a tenants file: any tenant's key (the route then shows a non-operator only its
 * own series), or one of `tokens` (METRICS_TOKEN: everything).
 */
export function requireTenantOrToken(
  directory: TenantDirectory,
  tokens: readonly string[] = [],
): MiddlewareHandler<AppEnv> {
  return tenantOrToken(directory, tokens, () => null, {
    hint: "Use a tenant's key (its own series) or METRICS_TOKEN (every series).",
  });
}

/**
 * For routes about the whole service (`/selftest`) with a tenants file: an
 * operator tenant's key, or one of `tokens` (METRICS_TOKEN). Other tenants' keys are refused:
 * the service's totals are every tenant's activity.
 */
export function requireOperator(
  directory: TenantDirectory,
  tokens: readonly string[] = [],
): MiddlewareHandler<AppEnv> {
  return tenantOrToken(
    directory,
    tokens,
    (tenant) =>
      tenant.operator
        ? null
        : `Tenant ${tenant.name} is not an operator; this endpoint covers every tenant.`,
    { hint: "Use an operator tenant's key (operator: true in the tenants file)." },
  );
}

/**
 * A tenant's key that `refusal` does not refuse (null: admitted; else why not), or one of
 * `tokens`, compared in constant time. Sets `owner` and `tenant` like requireTenant.
 */
function tenantOrToken(
  directory: TenantDirectory,
  tokens: readonly string[],
  refusal: (tenant: Tenant) => string | null,
  help: { hint: string },
): MiddlewareHandler<AppEnv> {
  const tokenDigests = tokens.map((token) => digest(token));
  return async (c, next) => {
    const presented = presentedKey(c);
    const presentedDigest = presented === undefined ? undefined : digest(presented);
    let isToken = false;
    for (const token of tokenDigests) {
      if (presentedDigest && timingSafeEqual(presentedDigest, token)) isToken = true;
    }
    const tenant = presented === undefined ? undefined : directory.tenantOf(presented);
    const refused = tenant === undefined ? "" : refusal(tenant);
    if (!isToken && refused !== null) {
      throw keyRefused(presented, { ...(refused ? { message: refused } : {}), ...help });
    }
    c.set("owner", tenant ? tenantOwner(tenant) : "metrics-token");
    if (tenant) c.set("tenant", tenant);
    await next();
  };
}
