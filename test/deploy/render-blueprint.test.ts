import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { z } from "zod";
import { CONFIG_KEYS, parseConfig } from "../../src/config.js";

/**
 * render.yaml against the Blueprint fields we use, written from Render's Blueprint reference
 * (render.com/docs/blueprint-spec). Strict objects: a misspelled field fails here instead of
 * being ignored by Render.
 */
const envVar = z.union([
  z.strictObject({ key: z.string().min(1), value: z.string() }),
  z.strictObject({ key: z.string().min(1), generateValue: z.literal(true) }),
  z.strictObject({ key: z.string().min(1), sync: z.literal(false) }),
  z.strictObject({
    key: z.string().min(1),
    fromService: z.strictObject({
      type: z.enum(["web", "pserv", "worker", "keyvalue", "redis"]),
      name: z.string().min(1),
      property: z.enum(["host", "port", "hostport", "connectionString"]).optional(),
      envVarKey: z.string().optional(),
    }),
  }),
]);
const region = z.enum(["oregon", "ohio", "virginia", "frankfurt", "singapore"]);

const webService = z.strictObject({
  type: z.literal("web"),
  name: z.string().min(1),
  runtime: z.literal("docker"),
  dockerfilePath: z.string().startsWith("./"),
  dockerContext: z.string(),
  plan: z.enum(["free", "starter", "standard", "pro", "pro plus", "pro max", "pro ultra"]),
  region,
  healthCheckPath: z.string().startsWith("/"),
  autoDeployTrigger: z.enum(["commit", "checksPass", "off"]),
  numInstances: z.number().int().min(1).optional(),
  scaling: z
    .strictObject({
      minInstances: z.number().int().min(1),
      maxInstances: z.number().int().min(1),
      targetCPUPercent: z.number().int().min(1).max(90).optional(),
      targetMemoryPercent: z.number().int().min(1).max(90).optional(),
    })
    .optional(),
  envVars: z.array(envVar),
});

const keyValueService = z.strictObject({
  type: z.literal("keyvalue"),
  name: z.string().min(1),
  plan: z.enum(["free", "starter", "standard", "pro", "pro plus"]),
  region,
  ipAllowList: z.array(z.strictObject({ source: z.string(), description: z.string().optional() })),
  maxmemoryPolicy: z
    .enum([
      "allkeys-lru",
      "volatile-lru",
      "allkeys-lfu",
      "volatile-lfu",
      "allkeys-random",
      "volatile-random",
      "volatile-ttl",
      "noeviction",
    ])
    .optional(),
});

const blueprint = z.strictObject({
  services: z.array(z.discriminatedUnion("type", [webService, keyValueService])),
});

const parsed = blueprint.parse(parse(readFileSync("render.yaml", "utf8")));
const web = parsed.services.find((s) => s.type === "web");
const keyValue = parsed.services.find((s) => s.type === "keyvalue");

describe("render.yaml", () => {
  it("is a valid Blueprint with one Docker web service and one Key Value instance", () => {
    expect(web?.name).toBe("governed-executor");
    expect(keyValue).toBeDefined();
  });

  it("checks health on /health and builds our Dockerfile", () => {
    expect(web?.healthCheckPath).toBe("/health");
    expect(web?.dockerfilePath).toBe("./Dockerfile");
    expect(readFileSync("Dockerfile", "utf8")).toMatch(/EXPOSE 10000/);
  });

  it("is secure by default: a generated API key, one trusted proxy hop", () => {
    const vars = new Map(web?.envVars.map((v) => [v.key, v]));
    expect(vars.get("API_KEY")).toEqual({ key: "API_KEY", generateValue: true });
    expect(vars.get("TRUSTED_PROXY_HOPS")).toEqual({ key: "TRUSTED_PROXY_HOPS", value: "1" });
  });

  it("wires REDIS_URL to the Key Value instance when it scales past one instance", () => {
    const redis = web?.envVars.find((v) => v.key === "REDIS_URL");
    expect(redis).toMatchObject({
      fromService: { type: "keyvalue", name: keyValue?.name, property: "connectionString" },
    });
    expect((web?.scaling?.maxInstances ?? web?.numInstances ?? 1) > 1).toBe(true);
  });

  it("sets only variables the service reads, with values its config parser accepts", () => {
    for (const { key } of web?.envVars ?? []) expect(CONFIG_KEYS, key).toContain(key);
    const literal = Object.fromEntries(
      (web?.envVars ?? []).flatMap((v) => ("value" in v ? [[v.key, v.value]] : [])),
    );
    expect(() =>
      parseConfig({ ...literal, API_KEY: "x".repeat(32), REDIS_URL: "redis://red-xyz:6379" }),
    ).not.toThrow();
  });
});
