import { describe, expect, it } from "vitest";
import { metricValue, parseMetrics } from "../support/prometheus.js";
import { BASE_URL, type ExecuteResponse, expectBlocked, http } from "./harness.js";

/**
 * GET /metrics against the real stack, read with a Prometheus text-format parser: a command
 * agentsh blocks moves exactly the counter of its outcome, rule and layer.
 */
const KEY = process.env.E2E_API_KEY ?? "";

async function scrape() {
  const res = await fetch(`${BASE_URL}/metrics`, {
    headers: { Authorization: `Bearer ${KEY}` },
    signal: AbortSignal.timeout(10_000),
  });
  expect(res.status).toBe(200);
  return parseMetrics(await res.text());
}

const BLOCKED = { outcome: "blocked", rule: "deny-privilege-escalation", layer: "agentsh" };

describe("GET /metrics against the real agentsh", () => {
  it("counts a blocked command (sudo id) under its outcome, rule and layer, once", async () => {
    expect(KEY, "E2E_API_KEY (the stack's API key)").not.toBe("");
    const before = await scrape();
    const res = await http("/execute", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ command: "sudo id" }),
    });
    const body = (await res.json()) as ExecuteResponse;
    expect(res.status, JSON.stringify(body)).toBe(200);
    expectBlocked(body.result, "deny-privilege-escalation");
    const after = await scrape();
    expect(metricValue(after, "gexec_commands_total", BLOCKED)).toBe(
      metricValue(before, "gexec_commands_total", BLOCKED) + 1,
    );
    expect(metricValue(after, "gexec_commands_total", { outcome: "ok" })).toBe(
      metricValue(before, "gexec_commands_total", { outcome: "ok" }),
    );
  });

  it("reports enforcement enforced, every canary of the last round passed, and the slots", async () => {
    const m = await scrape();
    expect(metricValue(m, "gexec_enforcement_state", { mode: "enforced" })).toBe(1);
    const canaries = m.get("gexec_canary_passed")?.metrics ?? [];
    expect(canaries.length).toBeGreaterThan(3);
    expect(canaries.filter((c) => c.value !== "1").map((c) => c.labels)).toEqual([]);
    expect(
      metricValue(m, "gexec_command_slots", { state: "free" }) +
        metricValue(m, "gexec_command_slots", { state: "in_use" }),
    ).toBeGreaterThan(0);
    expect(m.get("gexec_process_resident_memory_bytes")).toBeDefined();
  });
});
