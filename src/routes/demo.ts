import { Hono } from "hono";
import type { InstallationReport } from "../agentsh/installation-report.js";
import type { AppEnv } from "../app-env.js";
import type { CommandResult } from "../command-result.js";
import type { DemoRoute, Expectation } from "../demo-scenarios.js";
import type { HealthCheck } from "../enforcement/health.js";
import { ApiError, refusalError } from "../http/errors.js";
import type { RunCommand } from "../run-command.js";

/** `GET /demo/:name`: runs a scenario table from `demo-scenarios.ts`, in order. */
export function createDemoRoutes(options: {
  demos: readonly DemoRoute[];
  runCommand: RunCommand;
  timeoutMs: number;
  health: HealthCheck;
  installation: InstallationReport;
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
      // comes first so that the seed's lookups by command text find it.
      const results: unknown[] = route.includeInstallationReport ? [...installation.entries] : [];
      for (const scenario of route.scenarios) {
        const run = await runCommand(scenario.command, timeoutMs, signal);
        if (run.outcome !== "result") throw refusalError(run);
        const result = run.result;
        results.push({
          command: scenario.command,
          expected: scenario.expect,
          asExpected: meetsExpectation(scenario.expect, result),
          result,
        });
      }
      // The seed returns a bare array, except for routes that carry an explanation.
      if (route.note) {
        const service = route.includeServiceStatus ? { service: await options.health() } : {};
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
