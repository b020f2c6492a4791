import { Hono } from "hono";
import type { InstallationReport } from "../agentsh/installation-report.js";
import type { AppEnv } from "../app-env.js";
import type { CommandResult } from "../command-result.js";
import type { DemoRoute, DemoScenario, Expectation } from "../demo-scenarios.js";
import type { HealthCheck } from "../enforcement/health.js";
import type { ProtectionReport } from "../enforcement/protections.js";
import { ApiError, refusalError } from "../http/errors.js";
import type { RunCommand } from "../run-command.js";

/** `GET /demo/:name`: runs a scenario table from `demo-scenarios.ts`. */
export function createDemoRoutes(options: {
  demos: readonly DemoRoute[];
  runCommand: RunCommand;
  timeoutMs: number;
  health: HealthCheck;
  installation: InstallationReport;
  protections: ProtectionReport;
}) {
  const { demos: routes, runCommand, timeoutMs, installation } = options;
  const byName = new Map(routes.map((route) => [route.name, route]));
  return new Hono<AppEnv>()
    .get("/", (c) =>
      c.json({
        demos: routes.map((route) => ({
          path: `/demo/${route.name}`,
          description: route.description,
          commands: route.scenarios.length,
        })),
      }),
    )
    .get("/:name", async (c) => {
      const route = byName.get(c.req.param("name"));
      if (!route) {
        throw new ApiError({
          code: "not_found",
          message: `There is no demo named '${c.req.param("name")}'.`,
          hint: `Available: ${[...byName.keys()].join(", ")}.`,
        });
      }
      const signal = c.req.raw.signal;
      // The installation report was produced by the service at boot, outside the sandbox; it
      // comes first so that v0 clients' lookups by command text find it.
      const results: unknown[] = route.includeInstallationReport ? [...installation.entries] : [];
      // Independent commands run at once (each in its own slot); a route whose commands build
      // on each other runs them in order. Results keep the table's order either way.
      const runScenario = async (scenario: DemoScenario) => {
        const run = await runCommand({
          command: scenario.command,
          timeoutMs,
          signal,
          requestId: c.get("requestId"),
        });
        if (run.outcome !== "result") throw refusalError(run);
        return {
          command: scenario.command,
          expected: scenario.expect,
          asExpected: meetsExpectation(scenario.expect, run.result),
          result: run.result,
        };
      };
      if (route.sequential) {
        for (const scenario of route.scenarios) results.push(await runScenario(scenario));
      } else {
        results.push(...(await Promise.all(route.scenarios.map(runScenario))));
      }
      // v0 shape: a bare array, except for routes that carry an explanation.
      if (route.note) {
        // What the bundle claims per protection next to what the last canary round proved.
        const service = route.includeServiceStatus
          ? { service: await options.health(), protections: options.protections() }
          : {};
        return c.json({ description: route.description, note: route.note, ...service, results });
      }
      return c.json(results);
    });
}

function meetsExpectation(expect: Expectation, result: CommandResult): boolean {
  switch (expect) {
    case "allowed":
      return !result.blocked;
    case "blocked":
      return result.blocked;
    case "denied":
      return !result.success;
  }
}
