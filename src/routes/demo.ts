import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { InstallationReport, ServiceRunEntry } from "../agentsh/installation-report.js";
import type { AppEnv } from "../app-env.js";
import type { CommandResult } from "../command-result.js";
import type { DemoRoute, DemoScenario, Expectation } from "../demo-scenarios.js";
import type { HealthCheck } from "../enforcement/health.js";
import type { ProtectionReport } from "../enforcement/protections.js";
import { ApiError, refusalError } from "../http/errors.js";
import { demoListSchema, demoRunSchema } from "../openapi/response-schemas.js";
import {
  COMMAND_REFUSALS,
  errorAnswers,
  jsonAnswer,
  OPEN,
  RATE_LIMIT_ERRORS,
} from "../openapi/route-docs.js";
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
  const listDemos = createRoute({
    method: "get",
    path: "/",
    operationId: "listDemos",
    tags: ["demo"],
    summary: "list of demo scenarios",
    security: OPEN,
    responses: {
      200: jsonAnswer("The demo routes.", demoListSchema),
      ...errorAnswers(RATE_LIMIT_ERRORS),
    },
  });
  const runDemo = createRoute({
    method: "get",
    path: "/{name}",
    operationId: "runDemo",
    tags: ["demo"],
    summary: "run a demo scenario table",
    description:
      "Runs each command of the named table through agentsh and says whether it was allowed or blocked as expected.",
    security: OPEN,
    request: {
      // Any name reaches the route, which answers 404 with the names it has.
      params: z.object({ name: z.string().openapi({ enum: [...byName.keys()] }) }),
    },
    responses: {
      200: jsonAnswer("The results.", demoRunSchema),
      ...errorAnswers(RATE_LIMIT_ERRORS, ["not_found"], COMMAND_REFUSALS),
    },
  });
  return new OpenAPIHono<AppEnv>()
    .openapi(listDemos, (c) =>
      c.json(
        {
          demos: routes.map((route) => ({
            path: `/demo/${route.name}`,
            description: route.description,
            commands: route.scenarios.length,
          })),
        },
        200,
      ),
    )
    .openapi(runDemo, async (c) => {
      const { name } = c.req.valid("param");
      const route = byName.get(name);
      if (!route) {
        throw new ApiError({
          code: "not_found",
          message: `There is no demo named '${name}'.`,
          hint: `Available: ${[...byName.keys()].join(", ")}.`,
        });
      }
      const signal = c.req.raw.signal;
      // The installation report was produced by the service at boot, outside the sandbox; it
      // comes first so that v0 clients' lookups by command text find it.
      const results: Array<ServiceRunEntry | ScenarioResult> = route.includeInstallationReport
        ? [...installation.entries]
        : [];
      // Independent commands run at once (each in its own slot); a route whose commands build
      // on each other runs them in order. Results keep the table's order either way.
      const runScenario = async (scenario: DemoScenario): Promise<ScenarioResult> => {
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
        return c.json(
          { description: route.description, note: route.note, ...service, results },
          200,
        );
      }
      return c.json(results, 200);
    });
}

interface ScenarioResult {
  command: string;
  expected: Expectation;
  asExpected: boolean;
  result: CommandResult;
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
