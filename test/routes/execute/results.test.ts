import { describe, expect, it } from "vitest";
import { blockedResult, FakeExecutor, notRun, okResult } from "../../support/fake-executor.js";
import { buildTestApp, postJson, readJson } from "../../support/test-app.js";

describe("POST /execute", () => {
  it("runs the command through the executor and returns the seed's shape plus the decision", async () => {
    const { app, executor } = buildTestApp();
    const res = await app.request("/execute", postJson({ command: "echo hi" }));
    expect(res.status).toBe(200);
    const body = await readJson(res);
    expect(body).toMatchObject({
      command: "echo hi",
      result: {
        success: true,
        stdout: "ran: echo hi\n",
        stderr: "",
        exitCode: 0,
        blocked: false,
        outcome: "ok",
        decision: null,
      },
    });
    expect(executor.commands.map((c) => c.command)).toEqual(["echo hi"]);
    expect(executor.commands[0]?.timeoutMs).toBe(30_000);
  });

  it("says where the answer's time went (Server-Timing: the executor's phases and the total)", async () => {
    const { app } = buildTestApp();
    const res = await app.request("/execute", postJson({ command: "echo hi" }));
    expect(res.status).toBe(200);
    const timing = res.headers.get("server-timing") ?? "";
    expect(timing).toMatch(/(^|,)agentsh;dur=3(\.0)?(,|$)/);
    expect(timing).toMatch(/total;dur=[\d.]+/);
  });

  it("reports which rule blocked a command", async () => {
    const executor = new FakeExecutor().respond(() => blockedResult());
    const { app } = buildTestApp({ executor });
    const body = await readJson(await app.request("/execute", postJson({ command: "sudo id" })));
    expect(body.result).toMatchObject({
      success: false,
      blocked: true,
      outcome: "blocked",
      exitCode: 126,
      message: "Blocked by policy rule 'deny-privilege-escalation' (execve /usr/bin/sudo)",
      decision: { rule: "deny-privilege-escalation", kind: "command", target: "/usr/bin/sudo" },
    });
  });

  it("honours a per-request timeout within the server maximum", async () => {
    const { app, executor } = buildTestApp({
      env: { MAX_COMMAND_TIMEOUT_MS: "5000", COMMAND_TIMEOUT_MS: "1000" },
    });
    expect(
      (await app.request("/execute", postJson({ command: "sleep 1", timeoutMs: 2000 }))).status,
    ).toBe(200);
    expect(executor.commands[0]?.timeoutMs).toBe(2000);
    const tooLong = await app.request(
      "/execute",
      postJson({ command: "sleep 1", timeoutMs: 6000 }),
    );
    expect(tooLong.status).toBe(400);
    expect(executor.commands).toHaveLength(1);
  });

  it("hands the executor the request's own abort signal (a disconnect reaches the command)", async () => {
    const { app, executor } = buildTestApp();
    const client = new AbortController();
    await app.request("/execute", { ...postJson({ command: "true" }), signal: client.signal });
    const given = executor.commands[0]?.signal;
    expect(given?.aborted).toBe(false);
    client.abort();
    expect(given?.aborted).toBe(true);
  });

  it("marks truncated output and a timeout", async () => {
    const executor = new FakeExecutor().respond(() =>
      okResult("aaaa", {
        outcome: "timed_out",
        exitCode: 124,
        problem: "the command exceeded its time limit and was killed",
        stdout: { text: "aaaa", truncated: true, totalBytes: 10_000_000 },
      }),
    );
    const { app } = buildTestApp({ executor });
    const body = await readJson(await app.request("/execute", postJson({ command: "yes" })));
    expect(body.result).toMatchObject({
      success: false,
      blocked: false,
      outcome: "timed_out",
      message: "the command exceeded its time limit and was killed",
      truncated: { stdout: true, stderr: false, stdoutBytes: 10_000_000 },
    });
  });

  it("answers 503 agentsh_unavailable with the reason and Retry-After when nothing ran", async () => {
    const executor = new FakeExecutor().respond(() =>
      notRun("unavailable", "the agentsh server is not reachable"),
    );
    const { app } = buildTestApp({ executor });
    const res = await app.request("/execute", postJson({ command: "ls" }));
    expect(res.status).toBe(503);
    expect(res.headers.get("Retry-After")).toBe("5");
    expect((await readJson(res)).error).toMatchObject({
      code: "agentsh_unavailable",
      message: expect.stringContaining("the agentsh server is not reachable"),
    });
  });

  it("answers 503 busy with Retry-After when no command slot is free", async () => {
    const executor = new FakeExecutor().respond(() => notRun("busy", "all 4 slots are busy"));
    const { app } = buildTestApp({ executor });
    const res = await app.request("/execute", postJson({ command: "ls" }));
    expect(res.status).toBe(503);
    expect(res.headers.get("Retry-After")).toBe("2");
    expect((await readJson(res)).error).toMatchObject({ code: "busy" });
  });

  it("answers with code canceled when the caller went away before a result", async () => {
    const executor = new FakeExecutor().respond(() =>
      notRun("canceled", "the request was canceled"),
    );
    const { app } = buildTestApp({ executor });
    const res = await app.request("/execute", postJson({ command: "ls" }));
    expect((await readJson(res)).error).toMatchObject({ code: "canceled" });
  });

  it("refuses to run anything when enforcement is not verified", async () => {
    const enforcement = {
      mode: "degraded" as const,
      checks: { landlock: false },
      problems: ["failed: landlock"],
    };
    const { app, executor } = buildTestApp({ enforcement });
    const res = await app.request("/execute", postJson({ command: "ls" }));
    expect(res.status).toBe(503);
    expect((await readJson(res)).error.code).toBe("enforcement_degraded");
    expect(executor.commands).toHaveLength(0);
  });

  it("runs in degraded mode only when ALLOW_DEGRADED is set", async () => {
    const enforcement = {
      mode: "degraded" as const,
      checks: { landlock: false },
      problems: ["failed: landlock"],
    };
    const { app, executor } = buildTestApp({ enforcement, env: { ALLOW_DEGRADED: "true" } });
    expect((await app.request("/execute", postJson({ command: "ls" }))).status).toBe(200);
    expect(executor.commands).toHaveLength(1);
  });
});

describe("POST /execute validation: clear JSON errors and nothing runs", () => {
  const cases: Array<[string, RequestInit, number, string]> = [
    ["missing command", postJson({}), 400, "validation_failed"],
    ["empty command", postJson({ command: "" }), 400, "validation_failed"],
    ["blank command", postJson({ command: "   \n" }), 400, "validation_failed"],
    ["non-string command", postJson({ command: 42 }), 400, "validation_failed"],
    ["nested command", postJson({ command: { cmd: "ls" } }), 400, "validation_failed"],
    ["array command", postJson({ command: ["ls", "-la"] }), 400, "validation_failed"],
    ["command over 1024 chars", postJson({ command: "a".repeat(1025) }), 400, "validation_failed"],
    ["NUL byte", postJson({ command: "ls\u0000rm" }), 400, "validation_failed"],
    ["unknown field", postJson({ command: "ls", cmd: "rm" }), 400, "validation_failed"],
    ["invalid JSON", postJson("{command: ls"), 400, "invalid_request"],
    ["JSON null", postJson("null"), 400, "validation_failed"],
    ["JSON array", postJson("[]"), 400, "validation_failed"],
    [
      "no content type",
      { method: "POST", body: '{"command":"ls"}' },
      415,
      "unsupported_media_type",
    ],
    [
      "form content type",
      {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: "command=ls",
      },
      415,
      "unsupported_media_type",
    ],
    ["huge body", postJson({ command: "ls", pad: "x".repeat(100_000) }), 413, "body_too_large"],
  ];

  it.each(cases)("%s → %s %s", async (_name, init, status, code) => {
    const { app, executor } = buildTestApp();
    const res = await app.request("/execute", init);
    expect(res.status).toBe(status);
    expect(res.headers.get("content-type")).toMatch(/application\/json/);
    const body = await readJson(res);
    expect(body.error.code).toBe(code);
    expect(typeof body.error.message).toBe("string");
    expect(body.requestId).toEqual(expect.any(String));
    expect(JSON.stringify(body)).not.toMatch(/at .+\.(ts|js):\d+/);
    expect(executor.commands).toHaveLength(0);
  });

  it("accepts exactly 1024 characters", async () => {
    const { app, executor } = buildTestApp();
    expect((await app.request("/execute", postJson({ command: "a".repeat(1024) }))).status).toBe(
      200,
    );
    expect(executor.commands).toHaveLength(1);
  });

  it("answers 405 with Allow for a wrong method", async () => {
    const { app, executor } = buildTestApp();
    const res = await app.request("/execute", { method: "GET" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect((await readJson(res)).error.code).toBe("method_not_allowed");
    expect(executor.commands).toHaveLength(0);
  });
});

describe("fail closed when agentsh skips its sandbox", () => {
  it("withholds the output, answers 500 and refuses later commands until restart", async () => {
    const executor = new FakeExecutor().respond((request) =>
      request.command === "leak" ? okResult("secret output", { sandboxed: false }) : undefined,
    );
    const { app } = buildTestApp({ executor });
    const res = await app.request("/execute", postJson({ command: "leak" }));
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain("secret output");
    expect(JSON.parse(text).error.code).toBe("enforcement_failed");

    const next = await app.request("/execute", postJson({ command: "echo hi" }));
    expect(next.status).toBe(503);
    expect((await readJson(next)).error.code).toBe("enforcement_degraded");
    expect(executor.commands.map((c) => c.command)).toEqual(["leak"]);
    const health = await app.request("/health");
    expect(health.status).toBe(503);
    expect((await readJson(health)).enforcement.checks["sandbox applied to every command"]).toBe(
      false,
    );
  });
});
