import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../src/config.js";

describe("parseConfig", () => {
  it("has safe defaults", () => {
    const config = parseConfig({});
    expect(config).toMatchObject({
      port: 10000,
      apiKey: undefined,
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
    expect(parseConfig({ API_KEY: "" }).apiKey).toBeUndefined();
  });

  it("rejects a short API_KEY at boot", () => {
    expect(() => parseConfig({ API_KEY: "short" })).toThrow(/API_KEY: must be at least 16/);
  });
});
