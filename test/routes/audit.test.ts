import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { AuditStore } from "../../src/audit/audit-log.js";
import { openSqliteAuditStore } from "../../src/audit/sqlite-store.js";
import { compileRedactionPatterns, createRedactor } from "../../src/bundle/redactor.js";
import { ownerOf } from "../../src/http/api-key.js";
import { blockedResult, FakeExecutor, gate, notRun } from "../support/fake-executor.js";
import { buildTestApp, postJson, readJson } from "../support/test-app.js";

const KEY = `${"a".repeat(12)}-audit-key-ok`;
const ENV = { API_KEY: KEY, RATE_LIMIT_EXECUTE: "10000" };
const AUTH: Record<string, string> = { "X-API-Key": KEY };

/** An app whose fake agentsh blocks `sudo …`, answers `busy` for `wait …` and runs the rest. */
function auditApp(options: Parameters<typeof buildTestApp>[0] = {}) {
  const executor = new FakeExecutor()
    .respond((r) => (r.command.startsWith("sudo") ? blockedResult() : undefined))
    .respond((r) => (r.command.startsWith("wait") ? notRun("busy") : undefined));
  return buildTestApp({ env: ENV, executor, ...options });
}

async function execute(app: ReturnType<typeof buildTestApp>["app"], command: string) {
  const res = await app.request("/execute", postJson({ command }, AUTH));
  return { status: res.status, body: await readJson(res) };
}

const audit = (app: ReturnType<typeof buildTestApp>["app"], query = "", headers = AUTH) =>
  app.request(`/audit${query}`, { headers });

describe("GET /audit: access", () => {
  it("answers 403 api_key_not_configured when no API_KEY is configured, saying what to set", async () => {
    const { app } = buildTestApp();
    await app.request("/execute", postJson({ command: "echo hi" }));
    const res = await app.request("/audit");
    expect(res.status).toBe(403);
    const body = await readJson(res);
    expect(body.error.code).toBe("api_key_not_configured");
    expect(body.error.message).toContain("API_KEY");
    expect(body.requestId).toBe(res.headers.get("x-request-id"));
  });

  it.each([
    ["missing", {}, 401, "api_key_missing"],
    ["wrong", { "X-API-Key": "wrong-key-0000000000" }, 401, "api_key_invalid"],
  ])("refuses a %s key", async (_name, headers, status, code) => {
    const { app } = auditApp();
    const res = await audit(app, "", headers);
    expect(res.status).toBe(status);
    expect((await readJson(res)).error.code).toBe(code);
  });

  it("accepts the key as ?api_key= like /execute (not taken for a filter)", async () => {
    const { app } = auditApp();
    await execute(app, "echo one");
    const res = await audit(app, `?api_key=${KEY}`, {});
    expect(res.status).toBe(200);
    expect((await readJson(res)).entries).toHaveLength(1);
  });
});

describe("GET /audit: what is recorded", () => {
  it("finds a blocked command by the requestId of its /execute response, with the rule", async () => {
    const { app } = auditApp();
    await execute(app, "echo before");
    const { status, body } = await execute(app, "sudo id");
    expect(status).toBe(200);
    expect(body.requestId).toMatch(/^[0-9a-f-]{36}$/);
    await execute(app, "echo after");

    const res = await audit(app, `?requestId=${body.requestId}`);
    expect(res.status).toBe(200);
    const page = await readJson(res);
    expect(page).toEqual({
      entries: [
        {
          id: expect.stringMatching(
            /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
          ),
          time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
          instance: "local",
          caller: ownerOf(KEY),
          session: null,
          requestId: body.requestId,
          command: "sudo id",
          outcome: "blocked",
          errorCode: null,
          rule: "deny-privilege-escalation",
          layer: "agentsh",
          kind: "command",
          operation: "execve",
          target: "/usr/bin/sudo",
          exitCode: 126,
          durationMs: 3,
          sessionId: null,
          commandId: null,
        },
      ],
      nextCursor: null,
    });
  });

  it("records refusals that never reached agentsh, and the error envelope's requestId finds them", async () => {
    const { app } = auditApp();
    const { status, body } = await execute(app, "wait for a slot");
    expect(status).toBe(503);
    const page = await readJson(await audit(app, `?requestId=${body.requestId}`));
    expect(page.entries).toMatchObject([
      { outcome: "busy", errorCode: "busy", rule: null, exitCode: null },
    ]);
  });

  it("records a command refused before it ran (unknown session) with the error code answered", async () => {
    const { app } = auditApp();
    const sessionId = "s-local-0123456789abcdef01234567";
    const res = await app.request("/execute", postJson({ command: "ls", sessionId }, AUTH));
    expect(res.status).toBe(404);
    const { requestId } = await readJson(res);
    const page = await readJson(await audit(app, `?requestId=${requestId}`));
    expect(page.entries).toMatchObject([
      {
        command: "ls",
        outcome: "rejected",
        errorCode: "session_not_found",
        session: sessionId,
        caller: ownerOf(KEY),
      },
    ]);
  });

  it("names the caller's session, and finds the session's commands by its id", async () => {
    const { app } = auditApp();
    const created = await readJson(
      await app.request("/sessions", { method: "POST", headers: AUTH }),
    );
    const sessionId = created.session.id as string;
    await app.request("/execute", postJson({ command: "cd /tmp", sessionId }, AUTH));
    await execute(app, "echo elsewhere");
    const page = await readJson(await audit(app, `?session=${sessionId}`));
    expect(page.entries).toMatchObject([{ command: "cd /tmp", session: sessionId }]);
    const mine = await readJson(await audit(app, `?caller=${ownerOf(KEY)}`));
    expect(mine.entries).toHaveLength(2);
    expect((await readJson(await audit(app, "?caller=key-000000000000"))).entries).toEqual([]);
  });

  it("answers only once the entry is durable: the answer waits for the store", async () => {
    const inner = openSqliteAuditStore(":memory:");
    const held = gate(5_000, "audit write");
    let appended = 0;
    const slow: AuditStore = {
      ...inner,
      append: async (entry) => {
        await held.promise;
        await inner.append(entry);
        appended += 1;
      },
    };
    const { app } = auditApp({ audit: slow });
    let answered = false;
    const answer = Promise.resolve(
      app.request("/execute", postJson({ command: "echo 1" }, AUTH)),
    ).then((res) => {
      answered = true;
      return res;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answered).toBe(false);
    held.open();
    expect((await answer).status).toBe(200);
    expect(appended).toBe(1);
  });

  it("withholds the result with 503 audit_unavailable when the entry cannot be stored", async () => {
    const closed = openSqliteAuditStore(":memory:");
    await closed.close();
    const { app, executor } = auditApp({ audit: closed });
    const res = await app.request("/execute", postJson({ command: "echo secret-output" }, AUTH));
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(JSON.parse(text).error.code).toBe("audit_unavailable");
    expect(text).not.toContain("secret-output\n");
    expect(executor.commands).toHaveLength(1);
  });

  it("has each of many concurrent answered commands exactly once", async () => {
    const { app } = auditApp();
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => execute(app, i % 5 === 0 ? "sudo x" : `echo ${i}`)),
    );
    const page = await readJson(await audit(app, "?limit=200"));
    const ids = page.entries.map((e: { requestId: string }) => e.requestId).sort();
    expect(ids).toEqual(answers.map((a) => a.body.requestId).sort());
  });

  it("logs agentsh's session and command ids on the request line of /execute", async () => {
    const executor = new FakeExecutor().respond(() => ({
      ...blockedResult(),
      sessionId: "gexec-3",
      commandId: "cmd-42",
    }));
    const { app, logLines } = buildTestApp({ env: ENV, executor });
    const { body } = await execute(app, "sudo id");
    const line = logLines
      .map((l) => JSON.parse(l))
      .find((l) => l.message === "request" && l.requestId === body.requestId);
    expect(line).toMatchObject({
      path: "/execute",
      agentsh: { sessionId: "gexec-3", commandId: "cmd-42" },
    });
    const page = await readJson(await audit(app));
    expect(page.entries[0]).toMatchObject({ sessionId: "gexec-3", commandId: "cmd-42" });
  });

  it("redacts the command with the bundle's DLP patterns: no secret /execute would redact", async () => {
    const secret = `sk-ant-${"x".repeat(30)}`;
    const { patterns } = compileRedactionPatterns({ patterns: { api_keys: true } });
    const { app, logLines } = auditApp({ redact: createRedactor(patterns) });
    await execute(app, `curl -H 'x-api-key: ${secret}' https://api.example.com`);
    const res = await audit(app);
    const text = await res.text();
    expect(text).not.toContain(secret);
    expect(JSON.parse(text).entries[0].command).toBe(
      "curl -H 'x-api-key: [REDACTED:api_key]' https://api.example.com",
    );
    expect(logLines.join("\n")).not.toContain(secret);
  });
});

describe("GET /audit: filters and paging", () => {
  it("filters by outcome and rule, newest first", async () => {
    const { app } = auditApp();
    for (const command of ["echo 1", "sudo a", "echo 2", "sudo b", "wait"]) {
      await execute(app, command);
    }
    const blocked = await readJson(await audit(app, "?outcome=blocked"));
    expect(blocked.entries.map((e: { command: string }) => e.command)).toEqual([
      "sudo b",
      "sudo a",
    ]);
    const byRule = await readJson(await audit(app, "?rule=deny-privilege-escalation&limit=1"));
    expect(byRule.entries.map((e: { command: string }) => e.command)).toEqual(["sudo b"]);
    expect(byRule.nextCursor).toEqual(expect.any(String));
    const none = await readJson(await audit(app, "?rule=no-such-rule"));
    expect(none).toEqual({ entries: [], nextCursor: null });
    const all = await readJson(await audit(app));
    expect(all.entries.map((e: { outcome: string }) => e.outcome)).toEqual([
      "busy",
      "blocked",
      "ok",
      "blocked",
      "ok",
    ]);
  });

  it("filters by time range: since inclusive, until exclusive", async () => {
    const { app } = auditApp();
    await execute(app, "echo old");
    const old = (await readJson(await audit(app))).entries[0].time as string;
    await new Promise((resolve) => setTimeout(resolve, 5));
    await execute(app, "echo new");
    const fresh = (await readJson(await audit(app))).entries[0].time as string;
    const commands = async (query: string) =>
      (await readJson(await audit(app, query))).entries.map((e: { command: string }) => e.command);
    expect(await commands(`?since=${fresh}`)).toEqual(["echo new"]);
    expect(await commands(`?until=${fresh}`)).toEqual(["echo old"]);
    expect(await commands(`?since=${old}&until=${fresh}`)).toEqual(["echo old"]);
    expect(await commands("?since=2100-01-01T00:00:00Z")).toEqual([]);
  });

  it("pages with an opaque cursor through every entry exactly once", async () => {
    const { app } = auditApp();
    for (let i = 0; i < 7; i++) await execute(app, `echo ${i}`);
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const query: string = `?limit=3${cursor ? `&cursor=${cursor}` : ""}`;
      const page = await readJson(await audit(app, query));
      expect(page.entries.length).toBeLessThanOrEqual(3);
      seen.push(...page.entries.map((e: { command: string }) => e.command));
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(["echo 6", "echo 5", "echo 4", "echo 3", "echo 2", "echo 1", "echo 0"]);
  });

  it("defaults to 50 per page and allows at most 200", async () => {
    const { app } = auditApp();
    for (let i = 0; i < 60; i++) await execute(app, `echo ${i}`);
    const first = await readJson(await audit(app));
    expect(first.entries).toHaveLength(50);
    expect(first.nextCursor).toEqual(expect.any(String));
    expect((await readJson(await audit(app, "?limit=200"))).entries).toHaveLength(60);
  });

  it.each([
    ["limit=0", "limit"],
    ["limit=201", "limit"],
    ["limit=ten", "limit"],
    ["outcome=exploded", "outcome"],
    ["since=yesterday", "since"],
    ["since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "until"],
    ["cursor=bm90LWEtY3Vyc29y", "cursor"],
    ["colour=red", "colour"],
  ])("answers 400 validation_failed on %s", async (query, field) => {
    const { app, executor } = auditApp();
    await execute(app, "echo 1");
    const res = await audit(app, `?${query}`);
    expect(res.status).toBe(400);
    const body = await readJson(res);
    expect(body.error.code).toBe("validation_failed");
    if (field !== "cursor") {
      expect(body.error.details.map((d: { path: string }) => d.path).join()).toContain(
        field === "colour" ? "" : field,
      );
    }
    expect(executor.commands).toHaveLength(1);
  });

  it("keeps entries and cursors across a restart of the service (SQLite in the state dir)", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "audit-route-"));
    try {
      const file = path.join(dir, "audit.db");
      const before = openSqliteAuditStore(file);
      const first = auditApp({ audit: before });
      for (let i = 0; i < 3; i++) await execute(first.app, `echo ${i}`);
      const { nextCursor } = await readJson(await audit(first.app, "?limit=1"));
      await before.close();
      const after = openSqliteAuditStore(file);
      const second = auditApp({ audit: after });
      const res = await audit(second.app, `?cursor=${nextCursor}`);
      expect(res.status).toBe(200);
      expect((await readJson(res)).entries.map((e: { command: string }) => e.command)).toEqual([
        "echo 1",
        "echo 0",
      ]);
      await after.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
