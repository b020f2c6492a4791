import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterEach, describe, expect, it } from "vitest";
import type { SessionInfo } from "../../src/sessions/contract.js";
import { blockedResult, notRun, okResult } from "../support/fake-executor.js";
import { buildTestApp, postJson, readJson, type TestAppOptions } from "../support/test-app.js";

const KEY = "k".repeat(24);
const OTHER_KEY = "o".repeat(24);

/** The real app (sessions, ExecuteCommand, guard, rate limit) with agentsh faked. */
function buildMcpApp(options: TestAppOptions = {}) {
  const t = buildTestApp(options);
  t.executor.respond((request) => {
    if (request.command.startsWith("sudo")) return blockedResult();
    if (request.command === "git push" && !request.agentshPolicy) {
      return blockedResult({ rule: "approval-git-push", target: "/usr/bin/git" });
    }
    if (request.command === "busy") return notRun("busy", "every slot taken");
    if (request.command === "explode") throw new Error("socket /var/lib/secret-path closed");
    // What the session wrapper would record after `cd sub`.
    if (request.session && request.command === "cd sub") {
      return okResult("", {
        sessionState: { cwd: `${request.session.workspace}/sub`, exported: {}, initial: {} },
      });
    }
    return undefined;
  });
  return t;
}

type App = ReturnType<typeof buildTestApp>["app"];

const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

/** The SDK's real client, its HTTP requests answered by the app in-process. */
async function connect(app: App, headers: Record<string, string> = {}) {
  const transport = new StreamableHTTPClientTransport(new URL("http://service.test/mcp"), {
    fetch: async (url, init) => app.request(url, init),
    requestInit: { headers },
  });
  const client = new Client({ name: "mcp-route-test", version: "1.0.0" });
  clients.push(client);
  await client.connect(transport);
  return client;
}

// biome-ignore lint/suspicious/noExplicitAny: tool results are asserted field by field
type Loose = any;

async function call(client: Client, name: string, args: Record<string, unknown> = {}) {
  return (await client.callTool({ name, arguments: args })) as Loose;
}

describe("POST /mcp (Streamable HTTP, stateless)", () => {
  it("initializes: server name, tool capability and instructions about blocked commands", async () => {
    const client = await connect(buildMcpApp().app);
    expect(client.getServerVersion()?.name).toBe("governed-executor");
    expect(client.getServerCapabilities()?.tools).toBeDefined();
    expect(client.getInstructions()).toContain("result.decision.rule");
  });

  it("lists the governed tools; run_command's input schema is /execute's", async () => {
    const { tools } = await (await connect(buildMcpApp().app)).listTools();
    expect(tools.map((t) => t.name)).toEqual([
      "run_command",
      "create_session",
      "get_session",
      "list_sessions",
      "close_session",
    ]);
    const run = tools[0]?.inputSchema as Loose;
    expect(run.required).toEqual(["command"]);
    expect(run.additionalProperties).toBe(false);
    expect(run.properties.command).toMatchObject({ type: "string", maxLength: 1024 });
    expect(run.properties.timeoutMs).toMatchObject({ minimum: 100, maximum: 300_000 });
    expect(run.properties.sessionId).toMatchObject({ type: "string", pattern: expect.any(String) });
    const get = tools.find((t) => t.name === "get_session")?.inputSchema as Loose;
    expect(get.required).toEqual(["sessionId"]);
    expect(get.properties.sessionId).toEqual(run.properties.sessionId);
  });

  it("run_command: an allowed command's result is the /execute body, with a short summary", async () => {
    const { app, executor } = buildMcpApp({ env: { API_KEY: KEY } });
    const client = await connect(app, { "X-API-Key": KEY });
    const res = await call(client, "run_command", { command: "echo hi", timeoutMs: 5000 });
    expect(res.isError).toBeFalsy();
    expect(res.structuredContent).toEqual({
      command: "echo hi",
      result: {
        success: true,
        stdout: "ran: echo hi\n",
        stderr: "",
        exitCode: 0,
        blocked: false,
        outcome: "ok",
        decision: null,
        completed: true,
        durationMs: 3,
      },
      requestId: expect.any(String),
    });
    expect(res.content).toEqual([{ type: "text", text: "exit 0\n--- stdout\nran: echo hi" }]);
    expect(executor.commands.map((c) => [c.command, c.timeoutMs])).toEqual([["echo hi", 5000]]);
    expect(executor.commands[0]?.signal).toBeInstanceOf(AbortSignal);
  });

  it("run_command: a blocked command is a normal result that names the rule up front", async () => {
    const res = await call(await connect(buildMcpApp().app), "run_command", {
      command: "sudo id",
    });
    expect(res.isError).toBeFalsy();
    expect(res.structuredContent.result).toMatchObject({
      blocked: true,
      outcome: "blocked",
      exitCode: 126,
      decision: { rule: "deny-privilege-escalation", kind: "command" },
      message: "Blocked by policy rule 'deny-privilege-escalation' (execve /usr/bin/sudo)",
    });
    expect(res.content[0].text).toBe(
      "BLOCKED by policy rule 'deny-privilege-escalation' (execve /usr/bin/sudo); exit 126\n" +
        "--- stderr\nbash: /usr/bin/sudo: Permission denied",
    );
  });

  it("run_command: a command held for approval says how to proceed", async () => {
    const res = await call(await connect(buildMcpApp().app), "run_command", {
      command: "git push",
    });
    expect(res.isError).toBeFalsy();
    const id = res.structuredContent.approval.id;
    expect(id).toMatch(/^apr-[0-9a-f]{24}$/);
    expect(res.content[0].text).toContain(
      `APPROVAL REQUIRED (rule 'approval-git-push'): a person has been asked (approval ${id}`,
    );
    expect(res.content[0].text).toContain(
      `call run_command again with the same command and approvalId "${id}"`,
    );
  });

  it("run_command: refusals are error results carrying the error envelope", async () => {
    const res = await call(await connect(buildMcpApp().app), "run_command", { command: "busy" });
    expect(res.isError).toBe(true);
    expect(res.structuredContent).toEqual({
      error: {
        code: "busy",
        message: "The command was not run: the service is at capacity (every slot taken).",
        hint: "Retry after the number of seconds in Retry-After.",
      },
      requestId: expect.any(String),
    });
    expect(res.content[0].text).toBe(
      "busy: The command was not run: the service is at capacity (every slot taken). " +
        "Retry after the number of seconds in Retry-After. Retry after 2 s.",
    );
  });

  it("an unexpected failure is internal_error, logged, without its message", async () => {
    const { app, logLines } = buildMcpApp();
    const res = await call(await connect(app), "run_command", { command: "explode" });
    expect(res.isError).toBe(true);
    expect(res.structuredContent.error.code).toBe("internal_error");
    expect(JSON.stringify(res)).not.toContain("secret-path");
    expect(logLines.join("\n")).toContain("secret-path");
  });

  it.each([
    ["too long", { command: "x".repeat(1025) }, "at most 1024 characters"],
    ["NUL byte", { command: "echo a\u0000b" }, "NUL"],
    ["empty", { command: "  " }, "must not be empty"],
    ["timeout too small", { command: "id", timeoutMs: 5 }, "timeoutMs"],
    ["malformed session id", { command: "id", sessionId: "../x" }, "sessionId"],
    ["unknown argument", { command: "id", cwd: "/" }, "cwd"],
  ])("run_command rejects %s input without running it", async (_name, args, problem) => {
    const { app, executor } = buildMcpApp();
    const res = await call(await connect(app), "run_command", args);
    expect(res.isError).toBe(true);
    expect(res.content[0].text).toContain(problem);
    expect(executor.commands).toHaveLength(0);
  });

  it("session tools: create, run in it, get, list, close — owned by the caller's key", async () => {
    const { app } = buildMcpApp({ env: { API_KEY: KEY } });
    const client = await connect(app, { "X-API-Key": KEY });
    const created = await call(client, "create_session");
    expect(created.isError).toBeFalsy();
    const { id, workspace } = created.structuredContent.session;
    expect(id).toMatch(/^s-local-[0-9a-f]{24}$/);
    expect(created.content[0].text).toMatch(new RegExp(`^Session ${id} created: \\{`));

    const cd = await call(client, "run_command", { command: "cd sub", sessionId: id });
    expect(cd.structuredContent.session).toEqual({ id, cwd: `${workspace}/sub`, env: [] });
    expect(cd.content[0].text).toBe(
      `exit 0\n--- session ${id}: the next command starts in ${workspace}/sub`,
    );

    const got = await call(client, "get_session", { sessionId: id });
    expect(got.structuredContent.session).toMatchObject({
      id,
      cwd: `${workspace}/sub`,
      commands: 1,
    });
    // The same session over HTTP, with the same key.
    const overHttp = await app.request("/sessions", { headers: { "X-API-Key": KEY } });
    expect((await readJson(overHttp)).sessions.map((s: SessionInfo) => s.id)).toEqual([id]);
    const listed = await call(client, "list_sessions");
    expect(listed.structuredContent.sessions.map((s: SessionInfo) => s.id)).toEqual([id]);

    const closed = await call(client, "close_session", { sessionId: id });
    expect(closed.structuredContent).toMatchObject({ session: { id }, deleted: true });
    const gone = await call(client, "get_session", { sessionId: id });
    expect(gone.isError).toBe(true);
    expect(gone.structuredContent.error.code).toBe("session_not_found");
  });

  it("another key's session is not found, over MCP as over HTTP", async () => {
    const { app } = buildMcpApp({ env: { API_KEY: KEY, API_KEYS: OTHER_KEY } });
    const created = await app.request("/sessions", postJson({}, { "X-API-Key": KEY }));
    const { id } = (await readJson(created)).session;
    const theirs = await connect(app, { "X-API-Key": OTHER_KEY });
    const ran = await call(theirs, "run_command", { command: "id", sessionId: id });
    expect(ran.isError).toBe(true);
    expect(ran.structuredContent.error.code).toBe("session_not_found");
    expect((await call(theirs, "list_sessions")).structuredContent.sessions).toEqual([]);
    // close_session with it is refused the same way, and the session lives on.
    const closed = await call(theirs, "close_session", { sessionId: id });
    expect(closed.isError).toBe(true);
    expect(closed.structuredContent.error.code).toBe("session_not_found");
    const owner = await app.request(`/sessions/${id}`, { headers: { "X-API-Key": KEY } });
    expect(owner.status).toBe(200);
  });

  it("authenticates like /execute: without the key the client gets a 401 and nothing runs", async () => {
    const { app, executor } = buildMcpApp({ env: { API_KEY: KEY } });
    const error = await connect(app).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StreamableHTTPError);
    expect((error as StreamableHTTPError).code).toBe(401);
    await expect(connect(app, { "X-API-Key": "wrong-key-0000000000" })).rejects.toThrow();
    expect(executor.commands).toHaveLength(0);

    const res = await app.request(
      "/mcp",
      postJson(
        { jsonrpc: "2.0", id: 1, method: "tools/list" },
        { Accept: "application/json, text/event-stream" },
      ),
    );
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain("X-API-Key");
    expect((await readJson(res)).error.code).toBe("api_key_missing");
  });

  it("tool calls share /execute's rate limit; the protocol's other messages do not count", async () => {
    const { app, executor } = buildMcpApp({ env: { RATE_LIMIT_EXECUTE: "3" } });
    const client = await connect(app);
    for (let i = 0; i < 2; i++) await call(client, "run_command", { command: "id" });
    expect((await app.request("/execute", postJson({ command: "id" }))).status).toBe(200);
    const error = await call(client, "run_command", { command: "id" }).catch((e: unknown) => e);
    expect((error as StreamableHTTPError).code).toBe(429);
    expect((await app.request("/execute", postJson({ command: "id" }))).status).toBe(429);
    expect(executor.commands).toHaveLength(3);
    expect((await client.listTools()).tools).toHaveLength(5);
  });

  it("answers GET and DELETE with 405 (no server stream, no MCP session)", async () => {
    const { app } = buildMcpApp();
    for (const method of ["GET", "DELETE"]) {
      const res = await app.request("/mcp", { method });
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("POST");
      expect((await readJson(res)).error.code).toBe("method_not_allowed");
    }
  });

  it("refuses a body that is not JSON, and a tools/call inside a batch", async () => {
    const { app, executor } = buildMcpApp();
    const headers = {
      Accept: "application/json, text/event-stream",
      "Mcp-Protocol-Version": "2025-06-18",
    };
    const notJson = await app.request("/mcp", postJson("{", headers));
    expect(notJson.status).toBe(400);
    expect((await readJson(notJson)).error.code).toBe(-32700);
    const toolCall = (id: number) => ({
      jsonrpc: "2.0",
      id,
      method: "tools/call",
      params: { name: "run_command", arguments: { command: "id" } },
    });
    for (const batch of [[toolCall(1), toolCall(2)], [toolCall(1)]]) {
      const res = await app.request("/mcp", postJson(batch, headers));
      expect(res.status).toBe(400);
      expect((await readJson(res)).error.code).toBe(-32600);
    }
    expect(executor.commands).toHaveLength(0);
  });

  it("GET / lists the endpoint", async () => {
    const res = await buildMcpApp().app.request("/");
    expect((await readJson(res)).endpoints["POST /mcp"]).toContain("MCP");
  });

  it("loads the SDK lazily: the app's modules import only its types", () => {
    for (const file of ["../../src/routes/mcp.ts", "../../src/app.ts"]) {
      const source = readFileSync(new URL(file, import.meta.url), "utf8");
      const eager = source.match(/^import (?!type ).*from "@modelcontextprotocol\/.*$/gm) ?? [];
      expect(eager, file).toEqual([]);
    }
  });
});
