import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import { afterEach, describe, expect, it } from "vitest";
import type { AppEnv } from "../../src/app-env.js";
import type { CommandResult } from "../../src/command-result.js";
import { requireApiKey } from "../../src/http/api-key.js";
import { ApiError, createErrorHandler } from "../../src/http/errors.js";
import { rateLimit } from "../../src/http/rate-limit.js";
import type { Logger } from "../../src/logger.js";
import { createMcpRoutes } from "../../src/routes/mcp.js";
import type {
  Caller,
  ExecuteBody,
  ExecuteCommand,
  ExecuteInput,
  SessionInfo,
  SessionRegistry,
} from "../../src/sessions/contract.js";

const KEY = "k".repeat(24);

/**
 * Stand-ins for ExecuteCommand and the SessionRegistry (implemented on main); the MCP layer is
 * what is under test: the SDK's real client talks to the route through `app.request`.
 */
function standIns() {
  const runs: Array<{ input: ExecuteInput; caller: Caller }> = [];
  const sessions = new Map<string, SessionInfo & { owner: string }>();
  let refuseNext: ApiError | Error | undefined;
  const ok = (stdout: string): CommandResult => ({
    success: true,
    stdout,
    stderr: "",
    exitCode: 0,
    blocked: false,
    outcome: "ok",
    decision: null,
    durationMs: 3,
  });
  const executeCommand: ExecuteCommand = async (input, caller) => {
    runs.push({ input, caller });
    if (refuseNext) {
      const error = refuseNext;
      refuseNext = undefined;
      throw error;
    }
    const result: CommandResult = input.command.startsWith("sudo")
      ? {
          success: false,
          stdout: "",
          stderr: "sudo: denied\n",
          exitCode: 126,
          blocked: true,
          message: "Blocked by policy rule 'deny-privilege-escalation' (execve /usr/bin/sudo)",
          outcome: "blocked",
          decision: {
            rule: "deny-privilege-escalation",
            kind: "command",
            operation: "execve",
            target: "/usr/bin/sudo",
            message: null,
          },
          durationMs: 4,
        }
      : ok(`ran: ${input.command}\n`);
    const body: ExecuteBody = { command: input.command, result, requestId: caller.requestId };
    if (input.sessionId) {
      const session = registry.get(caller.owner, input.sessionId);
      body.session = { id: session.id, cwd: `${session.workspace}/sub`, env: [] };
    }
    return body;
  };
  const registry: SessionRegistry = {
    async create(owner) {
      const id = `s-local-${String(sessions.size).padStart(24, "0")}`;
      const now = new Date(0).toISOString();
      const info: SessionInfo = {
        id,
        createdAt: now,
        lastUsedAt: now,
        expiresAt: now,
        workspace: `/workspace/.sessions/${id}`,
        cwd: `/workspace/.sessions/${id}`,
        env: [],
        commands: 0,
        busy: false,
      };
      sessions.set(id, { ...info, owner });
      return info;
    },
    get(owner, id) {
      const found = sessions.get(id);
      // (session_not_found arrives with the registry on main; not_found stands in.)
      if (!found || found.owner !== owner) {
        throw new ApiError({ code: "not_found", message: `There is no session ${id}.` });
      }
      const { owner: _owner, ...info } = found;
      return info;
    },
    list: (owner) =>
      [...sessions.values()]
        .filter((s) => s.owner === owner)
        .map(({ owner: _owner, ...info }) => info),
    async delete(owner, id) {
      const info = registry.get(owner, id);
      sessions.delete(id);
      return info;
    },
  };
  return {
    executeCommand,
    registry,
    runs,
    refuse: (error: ApiError | Error) => {
      refuseNext = error;
    },
  };
}

function buildMcpApp(options: { apiKey?: string; toolCallLimit?: number } = {}) {
  const fakes = standIns();
  const logLines: string[] = [];
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    logLines.push(JSON.stringify({ level, message, ...fields }));
  };
  const logger: Logger = {
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
  };
  const app = new Hono<AppEnv>()
    .use(requestId())
    .use(async (c, next) => {
      c.set("clientAddress", "192.0.2.10");
      await next();
    })
    .route(
      "/mcp",
      createMcpRoutes({
        executeCommand: fakes.executeCommand,
        sessions: fakes.registry,
        guard: requireApiKey(options.apiKey),
        ...(options.toolCallLimit
          ? {
              toolCallLimit: rateLimit({
                name: "execute",
                windowMs: 60_000,
                limit: options.toolCallLimit,
              }),
            }
          : {}),
        // Stands in for the guard's key fingerprint (c.var.owner on main).
        ownerOf: (c) =>
          c.req.header("x-api-key") ? `key:${c.req.header("x-api-key")}` : "anonymous",
        maxTimeoutMs: 300_000,
        logger,
      }),
    );
  app.onError(createErrorHandler(logger));
  return { app, logLines, ...fakes };
}

const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

/** The SDK's real client, its HTTP requests answered by the app in-process. */
async function connect(app: Hono<AppEnv>, headers: Record<string, string> = {}) {
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

describe("POST /mcp (Streamable HTTP, stateless)", () => {
  it("initializes: server name, tool capability and instructions about blocked commands", async () => {
    const { app } = buildMcpApp();
    const client = await connect(app);
    expect(client.getServerVersion()?.name).toBe("governed-executor");
    expect(client.getServerCapabilities()?.tools).toBeDefined();
    expect(client.getInstructions()).toContain("result.decision.rule");
  });

  it("lists the governed tools; run_command's input schema has /execute's limits", async () => {
    const { app } = buildMcpApp();
    const { tools } = await (await connect(app)).listTools();
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
    expect(run.properties.sessionId.type).toBe("string");
    expect(tools.find((t) => t.name === "get_session")?.inputSchema.required).toEqual([
      "sessionId",
    ]);
  });

  it("run_command: an allowed command's result is the /execute body, and a short summary", async () => {
    const { app, runs } = buildMcpApp({ apiKey: KEY });
    const client = await connect(app, { "X-API-Key": KEY });
    const res = (await client.callTool({
      name: "run_command",
      arguments: { command: "echo hi", timeoutMs: 5000 },
    })) as Loose;
    expect(res.isError).toBeFalsy();
    expect(res.structuredContent).toMatchObject({
      command: "echo hi",
      result: { success: true, exitCode: 0, blocked: false, outcome: "ok", decision: null },
      requestId: expect.any(String),
    });
    expect(res.content).toEqual([{ type: "text", text: "exit 0\n--- stdout\nran: echo hi" }]);
    expect(runs).toHaveLength(1);
    expect(runs[0]?.input).toEqual({ command: "echo hi", timeoutMs: 5000 });
    expect(runs[0]?.caller).toMatchObject({
      owner: `key:${KEY}`,
      requestId: res.structuredContent.requestId,
    });
    expect(runs[0]?.caller.signal).toBeInstanceOf(AbortSignal);
  });

  it("run_command: a blocked command is a normal result that names the rule up front", async () => {
    const { app } = buildMcpApp();
    const res = (await (
      await connect(app)
    ).callTool({
      name: "run_command",
      arguments: { command: "sudo id" },
    })) as Loose;
    expect(res.isError).toBeFalsy();
    expect(res.structuredContent.result).toMatchObject({
      blocked: true,
      outcome: "blocked",
      exitCode: 126,
      decision: { rule: "deny-privilege-escalation", kind: "command" },
    });
    expect(res.content[0].text).toBe(
      "BLOCKED by policy rule 'deny-privilege-escalation' (execve /usr/bin/sudo); exit 126\n" +
        "--- stderr\nsudo: denied",
    );
  });

  it("run_command: refusals are error results carrying the error envelope", async () => {
    const { app, refuse } = buildMcpApp();
    const client = await connect(app);
    refuse(
      new ApiError(
        { code: "busy", message: "The command was not run: at capacity.", hint: "Retry." },
        { "Retry-After": "2" },
      ),
    );
    const res = (await client.callTool({
      name: "run_command",
      arguments: { command: "id" },
    })) as Loose;
    expect(res.isError).toBe(true);
    expect(res.structuredContent).toEqual({
      error: { code: "busy", message: "The command was not run: at capacity.", hint: "Retry." },
      requestId: expect.any(String),
    });
    expect(res.content[0].text).toBe(
      "busy: The command was not run: at capacity. Retry. Retry after 2 s.",
    );
  });

  it("an unexpected failure is internal_error, logged, without its message", async () => {
    const { app, refuse, logLines } = buildMcpApp();
    const client = await connect(app);
    refuse(new Error("socket /var/lib/secret-path closed"));
    const res = (await client.callTool({
      name: "run_command",
      arguments: { command: "id" },
    })) as Loose;
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
    ["unknown argument", { command: "id", cwd: "/" }, "cwd"],
  ])("run_command rejects %s input without running it", async (_name, args, problem) => {
    const { app, runs } = buildMcpApp();
    const res = (await (
      await connect(app)
    ).callTool({
      name: "run_command",
      arguments: args,
    })) as Loose;
    expect(res.isError).toBe(true);
    expect(res.content[0].text).toContain(problem);
    expect(runs).toHaveLength(0);
  });

  it("session tools: create, run in it, get, list, close — owned by the caller's key", async () => {
    const { app } = buildMcpApp({ apiKey: KEY });
    const client = await connect(app, { "X-API-Key": KEY });
    const created = (await client.callTool({ name: "create_session", arguments: {} })) as Loose;
    expect(created.isError).toBeFalsy();
    const id = created.structuredContent.session.id;
    expect(created.structuredContent).toMatchObject({
      session: { id, busy: false },
      requestId: expect.any(String),
    });
    expect(created.content[0].text).toMatch(new RegExp(`^Session ${id} created: \\{`));

    const ran = (await client.callTool({
      name: "run_command",
      arguments: { command: "pwd", sessionId: id },
    })) as Loose;
    expect(ran.structuredContent.session).toEqual({
      id,
      cwd: `/workspace/.sessions/${id}/sub`,
      env: [],
    });
    expect(ran.content[0].text).toContain(`--- session ${id}: the next command starts in`);

    const got = (await client.callTool({
      name: "get_session",
      arguments: { sessionId: id },
    })) as Loose;
    expect(got.structuredContent.session.id).toBe(id);
    const listed = (await client.callTool({ name: "list_sessions", arguments: {} })) as Loose;
    expect(listed.structuredContent.sessions.map((s: SessionInfo) => s.id)).toEqual([id]);

    const closed = (await client.callTool({
      name: "close_session",
      arguments: { sessionId: id },
    })) as Loose;
    expect(closed.structuredContent).toMatchObject({ session: { id }, deleted: true });
    const gone = (await client.callTool({
      name: "get_session",
      arguments: { sessionId: id },
    })) as Loose;
    expect(gone.isError).toBe(true);
    expect(gone.structuredContent.error.code).toBe("not_found");
  });

  it("another caller does not see the session", async () => {
    const other = `${KEY}-other`;
    const { app } = buildMcpApp();
    const mine = await connect(app, { "X-API-Key": KEY });
    const created = (await mine.callTool({ name: "create_session", arguments: {} })) as Loose;
    const theirs = await connect(app, { "X-API-Key": other });
    const res = (await theirs.callTool({
      name: "get_session",
      arguments: { sessionId: created.structuredContent.session.id },
    })) as Loose;
    expect(res.isError).toBe(true);
    expect(
      (await theirs.callTool({ name: "list_sessions", arguments: {} })).structuredContent,
    ).toMatchObject({ sessions: [] });
  });

  it("authenticates like /execute: without the key the client gets a 401 and nothing runs", async () => {
    const { app, runs } = buildMcpApp({ apiKey: KEY });
    const error = await connect(app).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StreamableHTTPError);
    expect((error as StreamableHTTPError).code).toBe(401);
    await expect(connect(app, { "X-API-Key": "wrong-key-0000000000" })).rejects.toThrow();
    expect(runs).toHaveLength(0);

    const res = await app.request("/mcp", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain("X-API-Key");
    expect(((await res.json()) as Loose).error.code).toBe("api_key_missing");
  });

  it("tool calls count against the rate limit; the protocol's other messages do not", async () => {
    const { app, runs } = buildMcpApp({ toolCallLimit: 2 });
    const client = await connect(app);
    for (let i = 0; i < 2; i++) {
      await client.callTool({ name: "run_command", arguments: { command: "id" } });
    }
    const error = await client
      .callTool({ name: "run_command", arguments: { command: "id" } })
      .catch((e: unknown) => e);
    expect((error as StreamableHTTPError).code).toBe(429);
    expect(runs).toHaveLength(2);
    expect((await client.listTools()).tools).toHaveLength(5);
  });

  it("answers GET and DELETE with 405 (no server stream, no MCP session)", async () => {
    const { app } = buildMcpApp();
    for (const method of ["GET", "DELETE"]) {
      const res = await app.request("/mcp", { method });
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("POST");
      expect(((await res.json()) as Loose).error.code).toBe("method_not_allowed");
    }
  });

  it("refuses a body that is not JSON, and more than one tools/call in a batch", async () => {
    const { app, runs } = buildMcpApp();
    const post = (body: string) =>
      app.request("/mcp", {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json, text/event-stream",
          "Mcp-Protocol-Version": "2025-06-18",
        },
        body,
      });
    const notJson = await post("{");
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as Loose).error.code).toBe(-32700);
    const call = (id: number) => ({
      jsonrpc: "2.0",
      id,
      method: "tools/call",
      params: { name: "run_command", arguments: { command: "id" } },
    });
    const batch = await post(JSON.stringify([call(1), call(2)]));
    expect(batch.status).toBe(400);
    expect(((await batch.json()) as Loose).error.code).toBe(-32600);
    expect(runs).toHaveLength(0);
  });

  it("loads the SDK lazily: the app's modules import only its types", () => {
    for (const file of ["../../src/routes/mcp.ts", "../../src/app.ts"]) {
      const source = readFileSync(new URL(file, import.meta.url), "utf8");
      const eager = source.match(/^import (?!type ).*from "@modelcontextprotocol\/.*$/gm) ?? [];
      expect(eager, file).toEqual([]);
    }
  });
});
