import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../src/config.js";

describe("parseConfig", () => {
  it("has safe defaults", () => {
    const config = parseConfig({});
    expect(config).toMatchObject({
      port: 10000,
      apiKeys: [],
      agentsh: { bin: "agentsh", serverUrl: "http://127.0.0.1:18080", workspace: "/workspace" },
      limits: { defaultTimeoutMs: 30_000, maxTimeoutMs: 300_000, outputLimitBytes: 65_536 },
      rateLimits: { windowMs: 60_000, demo: 30, execute: 10 },
      trustedProxyHops: 0,
      allowDegraded: false,
    });
  });

  it("names every bad key in one error", () => {
    try {
      parseConfig({
        PORT: "http",
        WORKSPACE: "relative",
        TRUSTED_PROXY_HOPS: "-1",
        ALLOW_DEGRADED: "maybe",
      });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as ConfigError).message;
      for (const key of ["PORT", "WORKSPACE", "TRUSTED_PROXY_HOPS", "ALLOW_DEGRADED"]) {
        expect(message).toContain(key);
      }
    }
  });

  it("treats an empty API_KEY as unset (Render renders unset vars as empty)", () => {
    expect(parseConfig({ API_KEY: "" }).apiKeys).toEqual([]);
  });

  it("accepts API_KEY and API_KEYS together, each once", () => {
    const a = "a".repeat(16);
    const b = "b".repeat(16);
    expect(parseConfig({ API_KEY: a, API_KEYS: ` ${b}, ${a} ,` }).apiKeys).toEqual([a, b]);
    expect(() => parseConfig({ API_KEYS: `${a},short` })).toThrow(/API_KEYS: each key/);
  });

  it("names the instance in session ids: INSTANCE_TAG, else Render's instance id, else local", () => {
    expect(parseConfig({}).sessions.instanceTag).toBe("local");
    expect(parseConfig({ INSTANCE_TAG: "abc1" }).sessions.instanceTag).toBe("abc1");
    expect(parseConfig({ RENDER_INSTANCE_ID: "srv-x-5d8f" }).sessions.instanceTag).toMatch(
      /^[0-9a-f]{8}$/,
    );
    expect(() => parseConfig({ INSTANCE_TAG: "Bad-Tag" })).toThrow(/INSTANCE_TAG/);
  });

  it("rejects a short API_KEY at boot", () => {
    expect(() => parseConfig({ API_KEY: "short" })).toThrow(/API_KEY: must be at least 16/);
  });
});
