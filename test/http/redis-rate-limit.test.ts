import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createServer } from "node:net";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisRateLimitStore } from "../../src/http/redis-rate-limit-store.js";
import type { Tenant, TenantDirectory } from "../../src/tenants/tenants.js";
import { buildTestApp, postJson } from "../support/test-app.js";

/**
 * Two app instances sharing one real redis-server (Debian's package; scripts/test installs it).
 * The server is started here on a free loopback port and stopped afterwards.
 */
let server: ChildProcess | undefined;
let redis: Redis;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(),
      );
    });
  });
}

beforeAll(async () => {
  const bin = execFileSync("bash", ["-c", "command -v redis-server || true"], {
    encoding: "utf8",
  }).trim();
  if (!bin)
    throw new Error(
      "redis-server is not installed: run scripts/test (it installs Debian's redis-server)",
    );
  const port = await freePort();
  server = spawn(
    bin,
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    {
      stdio: "ignore",
    },
  );
  redis = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on("error", () => {}); // connection refusals while the server starts are expected
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      await redis.connect();
      await redis.ping();
      break;
    } catch (error) {
      redis.disconnect();
      if (Date.now() > deadline)
        throw new Error(`redis-server did not answer in 5 s: ${String(error)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
});

afterAll(() => {
  redis?.disconnect();
  server?.kill("SIGTERM");
});

/** Two instances of the service behind the same proxy, sharing the Redis counters. */
function twoInstances(limit: number) {
  const store = redisRateLimitStore(redis, `test-${randomUUID()}:`);
  const env = {
    RATE_LIMIT_EXECUTE: String(limit),
    RATE_LIMIT_DEMO: String(limit),
    TRUSTED_PROXY_HOPS: "1",
  };
  return [
    buildTestApp({ env, rateLimitStore: store }),
    buildTestApp({ env, rateLimitStore: store }),
  ] as const;
}

const from = (client: string) => postJson({ command: "id" }, { "X-Forwarded-For": client });

describe("rate limits shared through Redis", () => {
  it("hold across two instances: the limit counts requests to either", async () => {
    const [a, b] = twoInstances(3);
    const statuses = [];
    for (const app of [a, b, a, b, a]) {
      statuses.push((await app.app.request("/execute", from("203.0.113.7"))).status);
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(a.executor.commands.length + b.executor.commands.length).toBe(3);
  });

  it("keep separate buckets per client and per route group", async () => {
    const [a, b] = twoInstances(1);
    expect((await a.app.request("/execute", from("203.0.113.7"))).status).toBe(200);
    expect((await b.app.request("/execute", from("203.0.113.8"))).status).toBe(200);
    expect((await b.app.request("/execute", from("203.0.113.7"))).status).toBe(429);
    expect(
      (await b.app.request("/demo", { headers: { "X-Forwarded-For": "203.0.113.7" } })).status,
    ).toBe(200);
  });

  it("send the standard headers from the shared count", async () => {
    const [a, b] = twoInstances(2);
    await a.app.request("/execute", from("198.51.100.1"));
    const res = await b.app.request("/execute", from("198.51.100.1"));
    expect(res.headers.get("ratelimit-limit")).toBe("2");
    expect(res.headers.get("ratelimit-remaining")).toBe("0");
  });
});

describe("a tenant's own rate limit, shared through Redis", () => {
  it("holds across two instances: the tenant's window counts requests to either", async () => {
    const key = "t".repeat(24);
    const tenant: Tenant = {
      name: "team-a",
      policy: "default",
      workspaceRoot: "/sessions/tenant-team-a",
      slots: undefined,
      rateLimits: { windowMs: 60_000, requests: 2 },
      sessionQuota: undefined,
      operator: false,
      limits: undefined,
    };
    const tenants: TenantDirectory = {
      tenantOf: (presented) => (presented === key ? tenant : undefined),
      list: () => [tenant],
      reload: async () => ({ ok: true, tenants: 1, keys: 1 }),
    };
    const store = redisRateLimitStore(redis, `test-${randomUUID()}:`);
    // The per-address limits stay out of the way; only the tenant's own counts here.
    const env = { RATE_LIMIT_EXECUTE: "1000" };
    const [a, b] = [
      buildTestApp({ env, rateLimitStore: store, tenants }),
      buildTestApp({ env, rateLimitStore: store, tenants }),
    ];
    const statuses = [];
    for (const app of [a, b, a, b]) {
      const res = await app.app.request(
        "/execute",
        postJson({ command: "id" }, { "X-API-Key": key }),
      );
      statuses.push(res.status);
    }
    expect(statuses).toEqual([200, 200, 429, 429]);
    expect(a.executor.commands.length + b.executor.commands.length).toBe(2);
  });
});
