import { describe, expect, it } from "vitest";
import { compileRedactionPatterns, createRedactor } from "../../src/bundle/redactor.js";
import { demoRoutes } from "../../src/demo-scenarios.js";
import type { GovernedResult } from "../../src/executor.js";
import { blockedResult, FakeExecutor, okResult } from "../support/fake-executor.js";
import { buildTestApp, INSTALLATION, readJson } from "../support/test-app.js";

/** v0's demo routes: clients call them by these names. */
const V0_DEMOS = [
  "status",
  "allowed",
  "blocked",
  "commands",
  "privilege-escalation",
  "filesystem",
  "cloud-metadata",
  "ssrf",
  "dlp",
  "devtools",
  "network",
];

/** A fake agentsh that answers every command with one fixed result (it never reads the table). */
const answering = (result: GovernedResult) => new FakeExecutor().respond(() => result);
const FAILED = okResult("", { outcome: "failed", exitCode: 1 });

describe("GET /demo/:name", () => {
  it("serves every v0 demo name", async () => {
    const { app } = buildTestApp();
    for (const name of V0_DEMOS)
      expect((await app.request(`/demo/${name}`)).status, name).toBe(200);
  });

  it.each(demoRoutes.map((route) => [route.name, route] as const))(
    "/demo/%s runs each of its commands once and answers in the table's order",
    async (name, route) => {
      const { app, executor } = buildTestApp();
      const body = await readJson(await app.request(`/demo/${name}`));
      const all = route.note ? body.results : body;
      if (route.note)
        expect(body).toMatchObject({ description: route.description, note: route.note });
      // The service's own installation report comes first; the governed results follow.
      const serviceEntries = route.includeInstallationReport ? INSTALLATION.entries : [];
      expect(all.slice(0, serviceEntries.length)).toEqual(serviceEntries);
      const results = all.slice(serviceEntries.length);
      expect(results.map((r: { command: string }) => r.command)).toEqual(
        route.scenarios.map((s) => s.command),
      );
      expect(executor.commands.map((c) => c.command).sort()).toEqual(
        route.scenarios.map((s) => s.command).sort(),
      );
      for (const [i, r] of results.entries()) {
        expect(r.expected).toBe(route.scenarios[i]?.expect);
        expect(r.result.stdout).toBe(`ran: ${r.command}\n`); // each entry carries its own result
      }
    },
  );

  it.each([
    ["allowed", okResult("x"), true],
    ["allowed", blockedResult(), false],
    ["blocked", blockedResult(), true],
    ["blocked", okResult("x"), false],
    ["blocked", FAILED, false],
    ["denied", FAILED, true],
    ["denied", okResult("x"), false],
  ] as const)(
    "expected %s, got %j.outcome: asExpected is %s",
    async (expected, result, verdict) => {
      const route = demoRoutes.find((r) => r.scenarios.some((s) => s.expect === expected));
      const { app } = buildTestApp({ executor: answering(result) });
      const body = await readJson(await app.request(`/demo/${route?.name}`));
      const entries = (route?.note ? body.results : body).filter(
        (e: { expected?: string; ranBy?: string }) => !e.ranBy && e.expected === expected,
      );
      expect(entries.length).toBeGreaterThan(0);
      for (const e of entries) expect(e.asExpected).toBe(verdict);
    },
  );

  it("every blocked scenario names the rule expected to stop it (the e2e suite checks it)", () => {
    for (const route of demoRoutes)
      for (const s of route.scenarios)
        if (s.expect === "blocked") expect(s.rule, s.command).toMatch(/^(deny|default-deny)-/);
  });

  it("a demo whose commands build on each other runs them one after another", async () => {
    const order: string[] = [];
    const executor = new FakeExecutor().respond((request) => {
      order.push(request.command);
      return undefined;
    });
    const { app } = buildTestApp({ executor });
    await app.request("/demo/filesystem");
    const filesystem = demoRoutes.find((r) => r.name === "filesystem");
    expect(filesystem?.sequential).toBe(true);
    expect(order).toEqual(filesystem?.scenarios.map((s) => s.command));
  });

  it("/demo/status serves the service's installation report, never running agentsh governed", async () => {
    const { app, executor } = buildTestApp();
    const body = await readJson(await app.request("/demo/status"));
    expect(body.results.slice(0, 2)).toEqual([
      expect.objectContaining({ command: "agentsh --version", ranBy: "service" }),
      expect.objectContaining({ command: "agentsh detect", ranBy: "service" }),
    ]);
    expect(body.results[1].result.stderr).toContain("Protection Score");
    expect(body.service.enforcement.mode).toBe("enforced");
    // Governed commands never include the report's commands; the governed probe is a block.
    const governed = executor.commands.map((c) => c.command);
    expect(governed).not.toContain("agentsh --version");
    expect(governed).not.toContain("agentsh detect");
    const probe = demoRoutes
      .find((r) => r.name === "status")
      ?.scenarios.find((s) => s.command.startsWith("agentsh"));
    expect(probe).toMatchObject({ expect: "blocked", rule: "default-deny-execve" });
  });

  it("clients that look entries up by the first command containing a text find the intended one", async () => {
    // v0 clients match on a substring of the command and take the first hit, so order
    // matters where two commands share a text: the dev server before agentsh's API on 127.0.0.1,
    // the service's installation report before anything else naming agentsh.
    const firstContaining = (entries: Array<{ command: string }>, text: string) =>
      entries.find((e) => e.command.includes(text));
    const { app } = buildTestApp();
    for (const name of ["ssrf", "network"]) {
      const body = await readJson(await app.request(`/demo/${name}`));
      expect(firstContaining(body, "127.0.0.1")).toMatchObject({ expected: "allowed" });
    }
    const status = await readJson(await app.request("/demo/status"));
    for (const command of ["agentsh --version", "agentsh detect"])
      expect(firstContaining(status.results, command)).toMatchObject({ command, ranBy: "service" });
  });

  it("lists the demos at /demo", async () => {
    const { app, executor } = buildTestApp();
    const body = await readJson(await app.request("/demo"));
    expect(body.demos.map((d: { path: string }) => d.path)).toContain("/demo/ssrf");
    expect(executor.commands).toHaveLength(0);
  });

  it("answers 404 JSON naming the available demos for an unknown one", async () => {
    const { app, executor } = buildTestApp();
    const res = await app.request("/demo/nope");
    expect(res.status).toBe(404);
    const body = await readJson(res);
    expect(body.error.code).toBe("not_found");
    expect(body.error.hint).toContain("privilege-escalation");
    expect(executor.commands).toHaveLength(0);
  });

  it("redacts secrets in the DLP demo's output", async () => {
    const { patterns } = compileRedactionPatterns({ patterns: { api_keys: true, email: true } });
    const executor = new FakeExecutor().respond((request) => ({
      ...blockedResult(),
      outcome: "ok",
      exitCode: 0,
      decision: null,
      denials: [],
      stdout: {
        text: `${request.command.replace(/^echo "|"$/g, "")}\n`,
        truncated: false,
        totalBytes: 10,
      },
      stderr: { text: "", truncated: false, totalBytes: 0 },
    }));
    const { app } = buildTestApp({ executor, redact: createRedactor(patterns) });
    const body = await readJson(await app.request("/demo/dlp"));
    const text = JSON.stringify(
      body.results.map((r: { result: { stdout: string } }) => r.result.stdout),
    );
    expect(text).not.toContain("AKIAIOSFODNN7EXAMPLE");
    expect(text).not.toContain("sk-1234567890abcdef");
    expect(text).not.toContain("user@example.com");
    expect(text).toContain("[REDACTED:api_key]");
    expect(body.results[1].result.redactions).toEqual({ api_keys: 1 });
  });
});
