import { describe, expect, it } from "vitest";
import { CANARIES } from "../../src/agentsh/self-test.js";
import { blockedResult, FakeExecutor, gate, notRun } from "../support/fake-executor.js";
import { metricValue, parseMetrics, sampleOf } from "../support/prometheus.js";
import { buildTestApp, postJson, readJson } from "../support/test-app.js";

const KEY = `${"m".repeat(12)}-metrics-key-ok`;
const TOKEN = `${"t".repeat(12)}-scraper-token`;
const ENV = { API_KEY: KEY, METRICS_TOKEN: TOKEN, RATE_LIMIT_EXECUTE: "10000" };
const AUTH = { "X-API-Key": KEY };

type App = ReturnType<typeof buildTestApp>["app"];

async function scrape(app: App, headers: Record<string, string> = AUTH) {
  const res = await app.request("/metrics", { headers });
  expect(res.status).toBe(200);
  return parseMetrics(await res.text());
}

describe("GET /metrics: access", () => {
  it("serves Prometheus text to the scraper's own token (Bearer) and to the API key", async () => {
    const { app } = buildTestApp({ env: ENV });
    const res = await app.request("/metrics", { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    expect((await scrape(app, AUTH)).size).toBeGreaterThan(5);
  });

  it.each([
    ["no credential", {}, 401],
    ["a wrong token", { Authorization: "Bearer wrong-token-0000000000" }, 401],
  ])("refuses %s", async (_name, headers, status) => {
    const { app } = buildTestApp({ env: ENV });
    const res = await app.request("/metrics", { headers });
    expect(res.status).toBe(status);
  });

  it("accepts METRICS_TOKEN alone (no API key), and the token opens nothing else", async () => {
    const { app } = buildTestApp({ env: { METRICS_TOKEN: TOKEN } });
    const bearer = { Authorization: `Bearer ${TOKEN}` };
    expect((await app.request("/metrics", { headers: bearer })).status).toBe(200);
    expect((await app.request("/audit", { headers: bearer })).status).toBe(403);
  });

  it("is refused outright (403) with neither an API key nor a metrics token", async () => {
    const { app } = buildTestApp();
    const res = await app.request("/metrics");
    expect(res.status).toBe(403);
    expect((await readJson(res)).error.code).toBe("api_key_not_configured");
  });
});

describe("GET /metrics: what it counts", () => {
  it("counts commands by outcome, rule and layer, once each, with a latency histogram", async () => {
    const executor = new FakeExecutor()
      .respond((r) => (r.command === "sudo id" ? blockedResult() : undefined))
      .respond((r) =>
        r.command === "launcher" ? blockedResult({ layer: "launcher", rule: null }) : undefined,
      )
      .respond((r) => (r.command === "wait" ? notRun("busy") : undefined));
    const { app } = buildTestApp({ env: ENV, executor });
    for (const command of ["echo 1", "echo 2", "sudo id", "launcher", "wait"]) {
      await app.request("/execute", postJson({ command }, AUTH));
    }
    const m = await scrape(app);
    expect(m.get("gexec_commands_total")?.type).toBe("COUNTER");
    expect(metricValue(m, "gexec_commands_total", { outcome: "ok", rule: "", layer: "" })).toBe(2);
    expect(
      metricValue(m, "gexec_commands_total", {
        outcome: "blocked",
        rule: "deny-privilege-escalation",
        layer: "agentsh",
      }),
    ).toBe(1);
    expect(
      metricValue(m, "gexec_commands_total", { outcome: "blocked", rule: "", layer: "launcher" }),
    ).toBe(1);
    expect(metricValue(m, "gexec_commands_total", { outcome: "busy" })).toBe(1);
    const latency = sampleOf(m, "gexec_command_duration_seconds");
    expect(m.get("gexec_command_duration_seconds")?.type).toBe("HISTOGRAM");
    expect(Number(latency?.count)).toBe(5);
    expect(latency?.buckets?.["+Inf"]).toBe("5");
    // Every answer waited for its audit entry: the write time is measured too.
    expect(Number(sampleOf(m, "gexec_audit_write_seconds")?.count)).toBe(5);
  });

  it("counts a command refused before it ran (unknown session) as rejected", async () => {
    const { app } = buildTestApp({ env: ENV });
    const sessionId = "s-local-0123456789abcdef01234567";
    await app.request("/execute", postJson({ command: "ls", sessionId }, AUTH));
    expect(metricValue(await scrape(app), "gexec_commands_total", { outcome: "rejected" })).toBe(1);
  });

  it("reports command slots in use and the queue while commands run", async () => {
    const { app } = buildTestApp({ env: { ...ENV, MAX_CONCURRENT_COMMANDS: "3" } });
    const m = await scrape(app);
    expect(metricValue(m, "gexec_command_slots", { state: "free" })).toBe(3);
    expect(metricValue(m, "gexec_command_slots", { state: "in_use" })).toBe(0);
    expect(metricValue(m, "gexec_command_queue_depth")).toBe(0);
  });

  it("reports the enforcement state and the last canary result per canary", async () => {
    const enforced = await scrape(buildTestApp({ env: ENV }).app);
    expect(metricValue(enforced, "gexec_enforcement_state", { mode: "enforced" })).toBe(1);
    expect(metricValue(enforced, "gexec_enforcement_state", { mode: "degraded" })).toBe(0);

    const { app, monitor } = buildTestApp({
      env: ENV,
      enforcement: {
        mode: "degraded",
        checks: Object.fromEntries(CANARIES.map((c, i) => [c.name, i !== 1])),
        problems: ["sudo ran"],
      },
    });
    await monitor.verify();
    const m = await scrape(app);
    expect(metricValue(m, "gexec_enforcement_state", { mode: "degraded" })).toBe(1);
    const canaries = m.get("gexec_canary_passed")?.metrics ?? [];
    expect(canaries.length).toBeGreaterThan(0);
    expect(canaries).toHaveLength(CANARIES.length);
    expect(
      metricValue(m, "gexec_canary_passed", {
        canary: CANARIES[1]?.name ?? "",
        category: CANARIES[1]?.category ?? "",
      }),
    ).toBe(0);
    for (const sample of canaries) {
      expect(sample.labels).toEqual({ category: expect.any(String), canary: expect.any(String) });
      expect(["0", "1"]).toContain(sample.value);
    }
    expect(metricValue(m, "gexec_canary_last_run_timestamp_seconds")).toBeGreaterThan(1.7e9);
  });

  it("reports the sessions held, and has the resource-limit counter ready", async () => {
    const { app } = buildTestApp({ env: ENV });
    await app.request("/sessions", { method: "POST", headers: AUTH });
    await app.request("/sessions", { method: "POST", headers: AUTH });
    const m = await scrape(app);
    expect(metricValue(m, "gexec_sessions")).toBe(2);
    expect(m.get("gexec_limit_hits_total")?.type).toBe("COUNTER");
  });

  it("reports audit entries waiting for their batch", async () => {
    const executor = new FakeExecutor();
    const { app } = buildTestApp({ env: ENV, executor });
    const held = gate(5_000, "command");
    executor.respond(async () => {
      await held.promise;
      return undefined;
    });
    const running = app.request("/execute", postJson({ command: "echo 1" }, AUTH));
    const m = await scrape(app);
    expect(metricValue(m, "gexec_audit_pending_entries")).toBe(0);
    held.open();
    expect((await running).status).toBe(200);
  });
});
