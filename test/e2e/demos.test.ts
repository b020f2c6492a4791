import { describe, expect, it } from "vitest";
import { demoRoutes } from "../../src/demo-scenarios.js";
import { demo } from "./harness.js";

/**
 * Every demo route against the real agentsh, from the one scenario table (src/demo-scenarios.ts):
 * each command ends as the table says, and each blocked one by the rule the table names. The
 * per-category files add what a table cannot say (canary connection counts, files on disk).
 */
describe.each(demoRoutes.map((route) => [route.name, route] as const))(
  "/demo/%s",
  (_name, route) => {
    it("every command ends as the table says; blocked ones by the table's rule", async () => {
      const entries = (await demo(route.name)).filter((e) => !("ranBy" in e));
      expect(entries.map((e) => e.command)).toEqual(route.scenarios.map((s) => s.command));
      for (const [i, scenario] of route.scenarios.entries()) {
        const { result, asExpected } = entries[i] ?? {};
        expect(asExpected, `${scenario.command}: ${JSON.stringify(result)}`).toBe(true);
        if (scenario.expect === "blocked") {
          expect(result?.decision?.rule, scenario.command).toBe(scenario.rule);
        } else {
          expect(result?.blocked, scenario.command).toBe(false);
        }
      }
    });
  },
);
