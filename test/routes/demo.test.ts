import { describe, expect, it } from "vitest";
import { demoRoutes } from "../../src/demo-scenarios.js";
import { blockedResult, FakeExecutor, okResult } from "../support/fake-executor.js";
import { buildTestApp, INSTALLATION, readJson } from "../support/test-app.js";

const SEED_DEMOS = [
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

/** A fake agentsh that answers each scenario the way the table expects the policy to. */
function policyLikeExecutor() {
  const expectations = new Map(
    demoRoutes.flatMap((route) => route.scenarios.map((s) => [s.command, s.expect] as const)),
  );
  return new FakeExecutor().respond((request) => {
    const expect = expectations.get(request.command);
    if (expect === "blocked") return blockedResult();
    if (expect === "denied") return okResult("", { outcome: "failed", exitCode: 1 });
    return undefined;
  });
}

describe("GET /demo/:name", () => {
  it("has every demo route of the seed", () => {
    expect(demoRoutes.map((route) => route.name).sort()).toEqual([...SEED_DEMOS].sort());
  });

  it.each(demoRoutes.map((route) => [route.name, route] as const))(
    "/demo/%s runs its scenario table in order",
    async (name, route) => {
      const executor = policyLikeExecutor();
      const { app } = buildTestApp({ executor });
      const res = await app.request(`/demo/${name}`);
      expect(res.status).toBe(200);
      const body = await readJson(res);
      const all = route.note ? body.results : body;
      if (route.note)
        expect(body).toMatchObject({ description: route.description, note: route.note });
      // The service's own installation report comes first; the governed results follow.
      const serviceEntries = route.includeInstallationReport ? INSTALLATION.entries : [];
      expect(all.slice(0, serviceEntries.length)).toEqual(serviceEntries);
      const results = all.slice(serviceEntries.length);
      expect(executor.commands.map((c) => c.command)).toEqual(
        route.scenarios.map((s) => s.command),
      );
      expect(results).toHaveLength(route.scenarios.length);
      for (const [i, scenario] of route.scenarios.entries()) {
        expect(results[i]).toMatchObject({
          command: scenario.command,
          expected: scenario.expect,
          asExpected: true,
          result: {
            blocked: scenario.expect === "blocked",
            success: scenario.expect === "allowed",
          },
        });
      }
    },
  );

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
    expect(probe).toMatchObject({ expect: "blocked", layer: "command" });
  });

  it("clients that look entries up by the first command containing a text find the intended one", async () => {
    // The seed's clients match on a substring of the command and take the first hit, so order
    // matters where two commands share a text: the dev server before agentsh's API on 127.0.0.1,
    // the service's installation report before anything else naming agentsh.
    const firstContaining = (entries: Array<{ command: string }>, text: string) =>
      entries.find((e) => e.command.includes(text));
    const { app } = buildTestApp({ executor: policyLikeExecutor() });
    for (const name of ["ssrf", "network"]) {
      const body = await readJson(await app.request(`/demo/${name}`));
      expect(firstContaining(body, "127.0.0.1")).toMatchObject({ expected: "allowed" });
    }
    const status = await readJson(await app.request("/demo/status"));
    for (const command of ["agentsh --version", "agentsh detect"])
      expect(firstContaining(status.results, command)).toMatchObject({ command, ranBy: "service" });
  });

  it("flags a result that contradicts the expectation", async () => {
    const { app } = buildTestApp(); // fake allows everything
    const body = await readJson(await app.request("/demo/commands"));
    const sudo = body.find((entry: { command: string }) => entry.command === "sudo whoami");
    expect(sudo).toMatchObject({
      expected: "blocked",
      asExpected: false,
      result: { blocked: false },
    });
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
    const { createRedactor, compileRedactionPatterns } = await import(
      "../../src/bundle/redactor.js"
    );
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
