import { describe, expect, it } from "vitest";
import { demoRoutes } from "../../src/demo-scenarios.js";
import type { Explanation } from "../../src/explain/explain.js";
import { demo, http } from "./harness.js";

async function explain(command: string): Promise<Explanation> {
  const res = await http("/explain", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ command }),
  });
  const body = (await res.json()) as Explanation;
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body;
}

interface Case {
  route: string;
  command: string;
  explained: string;
  real: string;
  agrees: boolean | null;
  why?: string;
}

/**
 * POST /explain against what the real agentsh did: every command of every demo route (the one
 * scenario table), run through its route, then explained. Explain may say it cannot decide; it
 * may never claim allowed or blocked and be wrong.
 */
describe("POST /explain agrees with real runs", () => {
  it("over every demo command: blocked with the same rule, allowed, or undecidable (said why)", async () => {
    const cases: Case[] = [];
    const engine = { checked: 0, disagreements: [] as string[] };
    for (const route of demoRoutes) {
      const entries = (await demo(route.name)).filter((e) => !("ranBy" in e));
      for (const [i, scenario] of route.scenarios.entries()) {
        const result = entries[i]?.result;
        if (!result)
          throw new Error(`/demo/${route.name} returned no result for ${scenario.command}`);
        // What running it did: agentsh's rule, a kernel refusal (no rule), or it was let run.
        const real = result.blocked
          ? `blocked ${result.decision?.rule}`
          : scenario.expect === "denied" && !result.success
            ? "denied (kernel, no rule)"
            : "allowed";
        const e = await explain(scenario.command);
        expect(e.executed).toBe(false);
        engine.checked += e.agentsh?.checked ?? 0;
        engine.disagreements.push(...(e.agentsh?.disagreements ?? []));
        const explained = e.verdict === "blocked" ? `blocked ${e.rule}` : e.verdict;
        cases.push({
          route: route.name,
          command: scenario.command,
          explained,
          real,
          agrees: e.verdict === "undecidable" ? null : explained === real,
          ...(e.verdict === "undecidable" ? { why: e.runtime.join("; ") } : {}),
        });
      }
    }
    const decided = cases.filter((c) => c.agrees !== null);
    const agreeing = decided.filter((c) => c.agrees);
    const undecidable = cases.filter((c) => c.agrees === null);
    const lines = [
      `explain vs real agentsh over ${cases.length} demo commands: ${decided.length} decided, ${agreeing.length} agree (${((100 * agreeing.length) / Math.max(decided.length, 1)).toFixed(1)}% of decided, ${((100 * agreeing.length) / cases.length).toFixed(1)}% of all); ${undecidable.length} undecidable:`,
      ...undecidable.map(
        (c) => `  /demo/${c.route}: ${c.command}\n    real: ${c.real}; why: ${c.why}`,
      ),
    ];
    lines.push(
      `agentsh's own engine (POST /api/v1/policy/test) on the same ${engine.checked} program/path/URL lookups: ${engine.checked - engine.disagreements.length} name the same rule`,
      ...engine.disagreements.map((d) => `  differs: ${d}`),
    );
    console.log(lines.join("\n"));
    expect(engine.checked).toBeGreaterThan(0);
    expect(engine.disagreements).toEqual([]);
    const wrong = decided.filter((c) => !c.agrees);
    expect(
      wrong.map((c) => `/demo/${c.route}: ${c.command}: explain ${c.explained}, real ${c.real}`),
    ).toEqual([]);
  });
});
