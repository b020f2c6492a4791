import { timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
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
 * known, in a fixed window per tenant and instance.
 */
export function requireTenant(
  directory: TenantDirectory,
  now: () => number = Date.now,
): MiddlewareHandler<AppEnv> {
  const windows = new Map<string, { start: number; count: number }>();
  return async (c, next) => {
    const presented = presentedKey(c);
    const tenant = presented === undefined ? undefined : directory.tenantOf(presented);
    if (tenant === undefined) throw keyRefused(presented);
    const limited = tenant.rateLimits ? overRate(windows, tenant, now()) : null;
    if (limited !== null) {
      return errorResponse(
        c,
        {
          code: "rate_limited",
          message: `Too many requests: tenant ${tenant.name} may send ${tenant.rateLimits?.requests} per ${Math.ceil((tenant.rateLimits?.windowMs ?? 0) / 1000)} s.`,
          hint: "Wait for the window to reset (see Retry-After).",
        },
        { "Retry-After": String(limited) },
      );
    }
    c.set("owner", tenantOwner(tenant));
    c.set("tenant", tenant);
    await next();
  };
}

/** Seconds until the tenant's window resets when it is over its rate; null when within. */
function overRate(
  windows: Map<string, { start: number; count: number }>,
  tenant: Tenant,
  at: number,
): number | null {
  const limits = tenant.rateLimits;
  if (!limits) return null;
  let window = windows.get(tenant.name);
  if (!window || at - window.start >= limits.windowMs) {
    window = { start: at, count: 0 };
    windows.set(tenant.name, window);
  }
  window.count += 1;
  if (window.count <= limits.requests) return null;
  return Math.max(1, Math.ceil((window.start + limits.windowMs - at) / 1000));
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
  const tokenDigests = tokens.map((token) => digest(token));
  return async (c, next) => {
    const presented = presentedKey(c);
    const presentedDigest = presented === undefined ? undefined : digest(presented);
    let isToken = false;
    for (const token of tokenDigests) {
      if (presentedDigest && timingSafeEqual(presentedDigest, token)) isToken = true;
    }
    const tenant = presented === undefined ? undefined : directory.tenantOf(presented);
    if (!isToken && !tenant) {
      throw keyRefused(presented, {
        hint: "Use a tenant's key (its own series) or METRICS_TOKEN (every series).",
      });
    }
    c.set("owner", tenant ? tenantOwner(tenant) : "metrics-token");
    if (tenant) c.set("tenant", tenant);
    await next();
  };
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
  const tokenDigests = tokens.map((token) => digest(token));
  return async (c, next) => {
    const presented = presentedKey(c);
    const presentedDigest = presented === undefined ? undefined : digest(presented);
    let isToken = false;
    for (const token of tokenDigests) {
      if (presentedDigest && timingSafeEqual(presentedDigest, token)) isToken = true;
    }
    const tenant = presented === undefined ? undefined : directory.tenantOf(presented);
    if (!isToken && !tenant?.operator) {
      throw keyRefused(presented, {
        ...(tenant !== undefined
          ? {
              message: `Tenant ${tenant.name} is not an operator; this endpoint covers every tenant.`,
            }
          : {}),
        hint: "Use an operator tenant's key (operator: true in the tenants file).",
      });
    }
    c.set("owner", tenant ? tenantOwner(tenant) : "metrics-token");
    if (tenant) c.set("tenant", tenant);
    await next();
  };
}
