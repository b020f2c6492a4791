import { describe, expect, it } from "vitest";
import type { GovernedCommand } from "../../src/executor.js";
import { FakeExecutor, gate, notRun, okResult } from "../support/fake-executor.js";
import { buildTestApp, postJson, readJson } from "../support/test-app.js";

const KEY_A = "key-a-0123456789abcdef";
const KEY_B = "key-b-0123456789abcdef";
const ENV = { API_KEY: KEY_A, API_KEYS: KEY_B, RATE_LIMIT_EXECUTE: "10000" };
const ID = /^s-local-[0-9a-f]{24}$/;
const OTHER_INSTANCE_ID = `s-elsewhere-${"ab".repeat(12)}`;

type App = ReturnType<typeof buildTestApp>["app"];

function call(app: App, method: string, path: string, key?: string, body?: string) {
  return app.request(path, {
    method,
    headers: {
      ...(key ? { "X-API-Key": key } : {}),
      ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body } : {}),
  });
}

async function createSession(app: App, key = KEY_A): Promise<{ id: string; workspace: string }> {
  const res = await call(app, "POST", "/sessions", key);
  expect(res.status).toBe(201);
  return (await readJson(res)).session;
}

function execute(app: App, body: Record<string, unknown>, key = KEY_A) {
  return app.request("/execute", postJson(body, { "X-API-Key": key }));
}

/** Waits for the executor to be handed `count` commands (bounded). */
async function commandsReached(executor: FakeExecutor, count: number, deadlineMs = 2_000) {
  const deadline = Date.now() + deadlineMs;
  while (executor.commands.length < count) {
    if (Date.now() > deadline) throw new Error(`the executor saw no command ${count}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("/sessions", () => {
  it("POST creates a session: 201 with its info and the requestId; agentsh gets its own session", async () => {
    const { app, executor } = buildTestApp({ env: ENV });
    const res = await call(app, "POST", "/sessions", KEY_A);
    expect(res.status).toBe(201);
    const body = await readJson(res);
    expect(body).toEqual({
      session: {
        id: expect.stringMatching(ID),
        createdAt: expect.any(String),
        lastUsedAt: expect.any(String),
        expiresAt: expect.any(String),
        workspace: `/workspace/sessions/${body.session.id}`,
        cwd: `/workspace/sessions/${body.session.id}`,
        env: [],
        commands: 0,
        busy: false,
        isolated: false,
      },
      requestId: expect.any(String),
    });
    expect(Date.parse(body.session.expiresAt) - Date.parse(body.session.lastUsedAt)).toBe(600_000);
    expect(executor.sessions.get(body.session.id)).toBe(body.session.workspace);
  });

  it("POST accepts {} as the body too", async () => {
    const { app } = buildTestApp({ env: ENV });
    expect((await call(app, "POST", "/sessions", KEY_A, "{}")).status).toBe(201);
    expect((await call(app, "POST", "/sessions", KEY_A, " {}\n")).status).toBe(201);
    expect((await call(app, "POST", "/sessions", KEY_A, "{ }")).status).toBe(201);
  });

  it.each([['{"cwd":"/etc"}'], ["not json"], ["[]"]])(
    "POST refuses a body with content (%s): 400 validation_failed, nothing created",
    async (body) => {
      const { app, executor, sessions } = buildTestApp({ env: ENV });
      const res = await call(app, "POST", "/sessions", KEY_A, body);
      expect(res.status).toBe(400);
      expect((await readJson(res)).error.code).toBe("validation_failed");
      expect(sessions.size).toBe(0);
      expect(executor.sessions.size).toBe(0);
    },
  );

  it("GET lists the caller's own sessions only", async () => {
    const { app } = buildTestApp({ env: ENV });
    const a1 = await createSession(app, KEY_A);
    const a2 = await createSession(app, KEY_A);
    const b1 = await createSession(app, KEY_B);
    const listA = await readJson(await call(app, "GET", "/sessions", KEY_A));
    expect(listA.sessions.map((s: { id: string }) => s.id).sort()).toEqual([a1.id, a2.id].sort());
    expect(listA.requestId).toEqual(expect.any(String));
    const listB = await readJson(await call(app, "GET", "/sessions", KEY_B));
    expect(listB.sessions.map((s: { id: string }) => s.id)).toEqual([b1.id]);
  });

  it("GET /sessions/:id answers the owner; another key and an unknown id get 404 session_not_found", async () => {
    const { app } = buildTestApp({ env: ENV });
    const a = await createSession(app, KEY_A);
    const own = await call(app, "GET", `/sessions/${a.id}`, KEY_A);
    expect(own.status).toBe(200);
    expect(await readJson(own)).toMatchObject({
      session: { id: a.id },
      requestId: expect.any(String),
    });
    for (const [key, id] of [
      [KEY_B, a.id],
      [KEY_A, `s-local-${"0".repeat(24)}`],
      [KEY_A, "nonsense"],
    ] as const) {
      const res = await call(app, "GET", `/sessions/${id}`, key);
      expect(res.status).toBe(404);
      const body = await readJson(res);
      expect(body.error.code).toBe("session_not_found");
      expect(body.error.hint).toContain("POST /sessions");
    }
  });

  it("DELETE ends the session: 200 with deleted: true; agentsh's session closed; then 404", async () => {
    const { app, executor } = buildTestApp({ env: ENV });
    const a = await createSession(app, KEY_A);
    const res = await call(app, "DELETE", `/sessions/${a.id}`, KEY_A);
    expect(res.status).toBe(200);
    expect(await readJson(res)).toMatchObject({
      session: { id: a.id },
      deleted: true,
      requestId: expect.any(String),
    });
    expect(executor.sessions.has(a.id)).toBe(false);
    expect((await call(app, "GET", `/sessions/${a.id}`, KEY_A)).status).toBe(404);
    expect((await call(app, "DELETE", `/sessions/${a.id}`, KEY_A)).status).toBe(404);
  });

  it("DELETE of another key's session is 404 and leaves it alone", async () => {
    const { app, executor } = buildTestApp({ env: ENV });
    const a = await createSession(app, KEY_A);
    const res = await call(app, "DELETE", `/sessions/${a.id}`, KEY_B);
    expect(res.status).toBe(404);
    expect((await readJson(res)).error.code).toBe("session_not_found");
    expect(executor.sessions.has(a.id)).toBe(true);
    expect((await call(app, "GET", `/sessions/${a.id}`, KEY_A)).status).toBe(200);
    // Its owner still runs commands in it, still lists it, and is the one who can end it.
    expect((await execute(app, { command: "pwd", sessionId: a.id })).status).toBe(200);
    expect(executor.commands.map((c) => c.session?.agentshSessionId)).toEqual([a.id]);
    const listed = await readJson(await call(app, "GET", "/sessions", KEY_A));
    expect(listed.sessions.map((s: { id: string }) => s.id)).toEqual([a.id]);
    expect((await call(app, "DELETE", `/sessions/${a.id}`, KEY_A)).status).toBe(200);
    expect(executor.sessions.has(a.id)).toBe(false);
  });

  it.each([
    ["POST", "/sessions"],
    ["GET", "/sessions"],
    ["GET", `/sessions/s-local-${"0".repeat(24)}`],
    ["DELETE", `/sessions/s-local-${"0".repeat(24)}`],
  ])("%s %s without a key is 401 api_key_missing", async (method, path) => {
    const { app, sessions } = buildTestApp({ env: ENV });
    const res = await call(app, method, path);
    expect(res.status).toBe(401);
    expect((await readJson(res)).error.code).toBe("api_key_missing");
    expect(sessions.size).toBe(0);
  });

  it("a wrong key is 401 api_key_invalid", async () => {
    const { app } = buildTestApp({ env: ENV });
    const res = await call(app, "POST", "/sessions", "wrong-key-0123456789");
    expect(res.status).toBe(401);
    expect((await readJson(res)).error.code).toBe("api_key_invalid");
  });

  it("without any configured key, sessions belong to 'anonymous' and work", async () => {
    const { app } = buildTestApp({ env: { RATE_LIMIT_EXECUTE: "10000" } });
    const a = await createSession(app, undefined);
    expect((await call(app, "GET", `/sessions/${a.id}`)).status).toBe(200);
  });

  it("answers 429 session_limit beyond MAX_SESSIONS_PER_KEY; other keys are not affected", async () => {
    const { app } = buildTestApp({ env: { ...ENV, MAX_SESSIONS_PER_KEY: "1" } });
    await createSession(app, KEY_A);
    const res = await call(app, "POST", "/sessions", KEY_A);
    expect(res.status).toBe(429);
    const body = await readJson(res);
    expect(body.error.code).toBe("session_limit");
    expect(body.error.hint).toContain("DELETE /sessions/");
    await createSession(app, KEY_B);
  });

  it("answers 429 session_limit beyond MAX_SESSIONS, whichever key asks", async () => {
    const { app } = buildTestApp({ env: { ...ENV, MAX_SESSIONS: "2" } });
    await createSession(app, KEY_A);
    await createSession(app, KEY_A);
    const res = await call(app, "POST", "/sessions", KEY_B);
    expect(res.status).toBe(429);
    expect((await readJson(res)).error.code).toBe("session_limit");
  });

  it("keeps MAX_SESSIONS_PER_KEY when several POSTs arrive at once", async () => {
    const { app, sessions } = buildTestApp({ env: { ...ENV, MAX_SESSIONS_PER_KEY: "2" } });
    const statuses = await Promise.all(
      Array.from({ length: 5 }, async () => (await call(app, "POST", "/sessions", KEY_A)).status),
    );
    expect(statuses.sort()).toEqual([201, 201, 429, 429, 429]);
    expect(sessions.size).toBe(2);
  });

  it("is rate limited like /execute (POST /sessions included)", async () => {
    const { app } = buildTestApp({ env: { ...ENV, RATE_LIMIT_EXECUTE: "2" } });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await call(app, "POST", "/sessions", KEY_A)).status);
    expect(statuses).toEqual([201, 201, 429]);
  });

  it("an id minted by another instance is 421 session_on_other_instance", async () => {
    const { app } = buildTestApp({ env: ENV });
    const res = await call(app, "GET", `/sessions/${OTHER_INSTANCE_ID}`, KEY_A);
    expect(res.status).toBe(421);
    const body = await readJson(res);
    expect(body.error.code).toBe("session_on_other_instance");
    expect(body.error.message).toContain("elsewhere");
  });

  it("mints ids with the configured INSTANCE_TAG", async () => {
    const { app } = buildTestApp({ env: { ...ENV, INSTANCE_TAG: "web2" } });
    expect((await createSession(app)).id).toMatch(/^s-web2-[0-9a-f]{24}$/);
  });

  it("expires a session after SESSION_IDLE_MS unused", async () => {
    let clock = Date.parse("2026-01-01T00:00:00Z");
    const { app, sessions } = buildTestApp({
      env: { ...ENV, SESSION_IDLE_MS: "60000" },
      now: () => clock,
    });
    const a = await createSession(app);
    clock += 60_001;
    await sessions.sweep();
    expect((await call(app, "GET", `/sessions/${a.id}`, KEY_A)).status).toBe(404);
  });
});

describe("POST /execute with a sessionId", () => {
  /** A command that `cd`s into src and exports FOO (and a token the policy refuses). */
  const carrying = (request: GovernedCommand) =>
    request.session && request.command === "cd src && export FOO=bar GITHUB_TOKEN=t"
      ? okResult("", {
          sessionState: {
            cwd: `${request.session.workspace}/src`,
            exported: { FOO: "bar", GITHUB_TOKEN: "t", PATH: "/usr/bin" },
            initial: { PATH: "/usr/bin" },
          },
        })
      : undefined;

  it("runs in the session and answers where the next command starts (cwd, carried env)", async () => {
    const executor = new FakeExecutor().respond(carrying);
    const { app } = buildTestApp({ env: ENV, executor });
    const a = await createSession(app);
    const res = await execute(app, {
      command: "cd src && export FOO=bar GITHUB_TOKEN=t",
      sessionId: a.id,
    });
    expect(res.status).toBe(200);
    const body = await readJson(res);
    expect(body.session).toEqual({
      id: a.id,
      cwd: `${a.workspace}/src`,
      env: ["FOO"],
      envNotCarried: ["GITHUB_TOKEN"],
    });
    expect(body.result.outcome).toBe("ok");
    expect(executor.commands[0]?.session).toEqual({
      agentshSessionId: a.id,
      workspace: a.workspace,
      cwd: a.workspace,
      env: {},
    });

    const next = await readJson(await execute(app, { command: "pwd", sessionId: a.id }));
    expect(executor.commands[1]?.session).toEqual({
      agentshSessionId: a.id,
      workspace: a.workspace,
      cwd: `${a.workspace}/src`,
      env: { FOO: "bar" },
    });
    // No record from that command (the stand-in gives none): the state stays, no envNotCarried.
    expect(next.session).toEqual({ id: a.id, cwd: `${a.workspace}/src`, env: ["FOO"] });
    expect(
      (await readJson(await call(app, "GET", `/sessions/${a.id}`, KEY_A))).session,
    ).toMatchObject({ cwd: `${a.workspace}/src`, env: ["FOO"], commands: 2, busy: false });
  });

  it("without a sessionId: no session context and no session field", async () => {
    const { app, executor } = buildTestApp({ env: ENV });
    const body = await readJson(await execute(app, { command: "true" }));
    expect(body.session).toBeUndefined();
    expect(executor.commands[0]?.session).toBeUndefined();
  });

  it("refuses a second command while one runs in the session: 409 session_busy", async () => {
    const release = gate(5_000, "the first command");
    const executor = new FakeExecutor().respond(async (request) => {
      if (request.command !== "slow") return undefined;
      await release.promise;
      return okResult("slow done\n");
    });
    const { app } = buildTestApp({ env: ENV, executor });
    const a = await createSession(app);
    const first = execute(app, { command: "slow", sessionId: a.id });
    try {
      await commandsReached(executor, 1);
      expect(
        (await readJson(await call(app, "GET", `/sessions/${a.id}`, KEY_A))).session.busy,
      ).toBe(true);
      const second = await execute(app, { command: "true", sessionId: a.id });
      expect(second.status).toBe(409);
      const body = await readJson(second);
      expect(body.error.code).toBe("session_busy");
      expect(executor.commands).toHaveLength(1);
      // Another session of the same key is not affected.
      const b = await createSession(app);
      expect((await execute(app, { command: "true", sessionId: b.id })).status).toBe(200);
    } finally {
      release.open();
    }
    const done = await first;
    expect(done.status).toBe(200);
    expect((await readJson(done)).result.stdout).toBe("slow done\n");
    expect((await execute(app, { command: "true", sessionId: a.id })).status).toBe(200);
  });

  it("frees the session when the executor refuses the command (busy), and the refusal is answered", async () => {
    const executor = new FakeExecutor().respond((request) =>
      request.command === "refused" ? notRun("busy") : undefined,
    );
    const { app } = buildTestApp({ env: ENV, executor });
    const a = await createSession(app);
    const res = await execute(app, { command: "refused", sessionId: a.id });
    expect(res.status).toBe(503);
    expect((await readJson(res)).error.code).toBe("busy");
    expect((await execute(app, { command: "true", sessionId: a.id })).status).toBe(200);
  });

  it("DELETE while a command runs kills it; the command's request answers 404 session_not_found", async () => {
    const executor = new FakeExecutor().respond(async (request) => {
      if (request.command !== "hang") return undefined;
      const aborted = gate(5_000, "the command's abort signal");
      request.signal?.addEventListener("abort", () => aborted.open(), { once: true });
      await aborted.promise;
      return notRun("canceled");
    });
    const { app } = buildTestApp({ env: ENV, executor });
    const a = await createSession(app);
    const running = execute(app, { command: "hang", sessionId: a.id });
    await commandsReached(executor, 1);
    expect((await call(app, "DELETE", `/sessions/${a.id}`, KEY_A)).status).toBe(200);
    const res = await running;
    expect(res.status).toBe(404);
    const body = await readJson(res);
    expect(body.error.code).toBe("session_not_found");
    expect(body.error.message).toContain("ended while the command ran");
    expect(executor.sessions.has(a.id)).toBe(false);
  });

  it("another key's sessionId is 404 and nothing runs", async () => {
    const { app, executor } = buildTestApp({ env: ENV });
    const a = await createSession(app, KEY_A);
    const res = await execute(app, { command: "id", sessionId: a.id }, KEY_B);
    expect(res.status).toBe(404);
    expect((await readJson(res)).error.code).toBe("session_not_found");
    expect(executor.commands).toHaveLength(0);
  });

  it.each([
    ["not an id", "../../etc/passwd"],
    ["upper-case hex", `s-local-${"AB".repeat(12)}`],
    ["short hex", "s-local-abc"],
    ["a tag too long", `s-${"a".repeat(17)}-${"0".repeat(24)}`],
    ["not a string", 42],
  ])(
    "a malformed sessionId (%s) is 400 validation_failed, nothing runs",
    async (_name, sessionId) => {
      const { app, executor } = buildTestApp({ env: ENV });
      const res = await execute(app, { command: "id", sessionId });
      expect(res.status).toBe(400);
      const body = await readJson(res);
      expect(body.error.code).toBe("validation_failed");
      expect(body.error.details).toEqual(
        expect.arrayContaining([expect.objectContaining({ path: "sessionId" })]),
      );
      expect(executor.commands).toHaveLength(0);
    },
  );

  it("a sessionId of another instance is 421 session_on_other_instance, nothing runs", async () => {
    const { app, executor } = buildTestApp({ env: ENV });
    const res = await execute(app, { command: "id", sessionId: OTHER_INSTANCE_ID });
    expect(res.status).toBe(421);
    expect((await readJson(res)).error.code).toBe("session_on_other_instance");
    expect(executor.commands).toHaveLength(0);
  });

  it("an unknown sessionId of this instance is 404 session_not_found", async () => {
    const { app } = buildTestApp({ env: ENV });
    const res = await execute(app, { command: "id", sessionId: `s-local-${"1".repeat(24)}` });
    expect(res.status).toBe(404);
    expect((await readJson(res)).error.code).toBe("session_not_found");
  });
});
