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
  z.strictObject({
    key: z.string().min(1),
    fromDatabase: z.strictObject({
      name: z.string().min(1),
      property: z.enum(["host", "port", "database", "user", "password", "connectionString"]),
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

const database = z.strictObject({
  name: z.string().min(1),
  plan: z.enum([
    "free",
    "basic-256mb",
    "basic-1gb",
    "basic-4gb",
    "pro-4gb",
    "pro-8gb",
    "pro-16gb",
    "accelerated-16gb",
  ]),
  region,
  postgresMajorVersion: z.enum(["13", "14", "15", "16", "17"]),
  databaseName: z.string().regex(/^[a-z_][a-z0-9_]*$/),
  user: z.string().regex(/^[a-z_][a-z0-9_]*$/),
  diskSizeGB: z
    .number()
    .int()
    .refine((gb) => gb === 1 || gb % 5 === 0, "1 or a multiple of 5")
    .optional(),
  ipAllowList: z.array(z.strictObject({ source: z.string(), description: z.string().optional() })),
});

const blueprint = z.strictObject({
  services: z.array(z.discriminatedUnion("type", [webService, keyValueService])),
  databases: z.array(database).optional(),
});

const parsed = blueprint.parse(parse(readFileSync("render.yaml", "utf8")));
const web = parsed.services.find((s) => s.type === "web");
const keyValue = parsed.services.find((s) => s.type === "keyvalue");
const auditDb = parsed.databases?.[0];

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

  it("provisions a private Render Postgres for the audit trail and wires DATABASE_URL to it", () => {
    expect(auditDb).toMatchObject({ name: "governed-executor-audit", ipAllowList: [] });
    expect(auditDb?.region).toBe(web?.region);
    const url = web?.envVars.find((v) => v.key === "DATABASE_URL");
    expect(url).toEqual({
      key: "DATABASE_URL",
      fromDatabase: { name: auditDb?.name, property: "connectionString" },
    });
  });

  it("gives GET /metrics a generated token of its own", () => {
    const token = web?.envVars.find((v) => v.key === "METRICS_TOKEN");
    expect(token).toEqual({ key: "METRICS_TOKEN", generateValue: true });
  });

  it("sets only variables the service reads, with values its config parser accepts", () => {
    for (const { key } of web?.envVars ?? []) expect(CONFIG_KEYS, key).toContain(key);
    const literal = Object.fromEntries(
      (web?.envVars ?? []).flatMap((v) => ("value" in v ? [[v.key, v.value]] : [])),
    );
    expect(() =>
      parseConfig({
        ...literal,
        API_KEY: "x".repeat(32),
        METRICS_TOKEN: "y".repeat(32),
        REDIS_URL: "redis://red-xyz:6379",
        // The form of Render's internal connection string.
        DATABASE_URL: "postgresql://governed_executor:secret@dpg-xyz-a/governed_executor",
      }),
    ).not.toThrow();
  });
});
