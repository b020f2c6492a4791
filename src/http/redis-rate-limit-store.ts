import { type RedisClient, RedisStore, type Store } from "hono-rate-limiter";
import type { Redis } from "ioredis";
import type { AppEnv } from "../app-env.js";

/**
 * Rate-limit counters in Redis (Render Key Value is Redis-compatible), so limits hold across
 * instances. hono-rate-limiter's RedisStore runs its own Lua scripts; this adapts ioredis's
 * calling convention to the client shape it expects.
 */
export function redisRateLimitStore(redis: Redis, prefix = "gexec:rl:"): () => Store<AppEnv> {
  const client: RedisClient = {
    scriptLoad: (script) => redis.script("LOAD", script) as Promise<string>,
    evalsha: <TArgs extends unknown[], TData = unknown>(
      sha1: string,
      keys: string[],
      args: TArgs,
    ) => redis.evalsha(sha1, keys.length, ...keys, ...args.map(String)) as Promise<TData>,
    decr: (key) => redis.decr(key),
    del: (key) => redis.del(key),
  };
  return () => new RedisStore<AppEnv>({ client, prefix });
}

/**
 * Fails boot when a configured Redis is unreachable, rather than serving without limits.
 * ioredis is loaded only here: it costs about 20 MiB of resident memory (measured), which a
 * service without REDIS_URL should not carry.
 */
export async function connectRedis(url: string): Promise<Redis> {
  const { Redis } = await import("ioredis");
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    connectTimeout: 5_000,
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new Error(`REDIS_URL is set but Redis is not reachable: ${String(error)}`);
  }
  return redis;
}
