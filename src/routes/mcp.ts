import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env.js";
import { ApiError, errorBodyOf } from "../http/errors.js";
import type { Logger } from "../logger.js";
import {
  jsonRpcErrorSchema,
  jsonRpcRequestSchema,
  jsonRpcResponseSchema,
} from "../openapi/response-schemas.js";
import {
  API_KEY_ERRORS,
  API_KEY_SECURITY,
  errorAnswers,
  jsonAnswer,
  OPEN,
  RATE_LIMIT_ERRORS,
} from "../openapi/route-docs.js";
import type { Caller, ExecuteBody, ExecuteCommand, SessionRegistry } from "../sessions/contract.js";
import { sessionTenant } from "../tenants/guard.js";
import { executeBodySchema } from "./execute.js";

/**
 * `POST /mcp`: a Streamable-HTTP MCP endpoint whose tools are `/execute` and the session routes.
 *
 * Stateless: every request gets its own server and transport (no `Mcp-Session-Id`), so any
 * instance can answer any request and nothing is held between requests; the governed sessions
 * (`create_session` → `run_command {sessionId}`) carry the state instead. Answers are single JSON
 * bodies (a command's output arrives with its result). `GET`/`DELETE /mcp` answer 405: there is no
 * server-initiated stream and no MCP session to end.
 *
 * The SDK is imported on the first request, so the service pays nothing for it until MCP is used
 * (measured: ~4 MiB resident to load it, ~15 MiB more after hundreds of sessions; docs/sessions-streaming-mcp.md, MCP).
 */
export interface McpRoutesOptions {
  executeCommand: ExecuteCommand;
  sessions: SessionRegistry;
  /** The API-key guard of `/execute`. */
  guard: MiddlewareHandler<AppEnv>;
  /** The `/execute` rate limit; a request counts against it when it calls a tool. */
  toolCallLimit?: MiddlewareHandler<AppEnv>;
  maxTimeoutMs: number;
  logger: Logger;
  /** NETWORK_APPROVALS: run_command says that a connection may wait for a person. */
  networkApprovals?: boolean;
}

const SERVER_INFO = { name: "governed-executor", version: "0.1.0" };

const INSTRUCTIONS =
  "Runs shell commands through agentsh policy enforcement. A command the policy blocks is a normal " +
  "result with result.blocked = true and result.decision.rule naming the rule: it will be blocked " +
  "again if retried unchanged. Create a session to keep the working directory and exported " +
  "variables between commands; close it when done.";

type Sdk = {
  McpServer: typeof McpServer;
  Transport: typeof WebStandardStreamableHTTPServerTransport;
};
let sdk: Promise<Sdk> | undefined;

function loadSdk(): Promise<Sdk> {
  sdk ??= Promise.all([
    import("@modelcontextprotocol/sdk/server/mcp.js"),
    import("@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js"),
  ]).then(([server, transport]) => ({
    McpServer: server.McpServer,
    Transport: transport.WebStandardStreamableHTTPServerTransport,
  }));
  return sdk;
}

export function createMcpRoutes(options: McpRoutesOptions) {
  // /execute's own validation: the same limits, messages and session id pattern.
  const runInput = executeBodySchema(options.maxTimeoutMs);
  const sessionInput = runInput.pick({ sessionId: true }).required();

  /** One server per request: its tools act for this request's caller. */
  function buildServer(Server: Sdk["McpServer"], c: Context<AppEnv>) {
    // Set by the guard: sessions belong to the key that created them, over MCP or HTTP.
    const owner = c.get("owner");
    const requestId = c.get("requestId");
    const server = new Server(SERVER_INFO, {
      instructions: INSTRUCTIONS,
      // Only used to check answers to elicitations, which this server never sends.
      jsonSchemaValidator: noElicitation,
    });
    const answer = async (
      work: (signal: AbortSignal) => Promise<CallToolResult>,
      signal: AbortSignal,
    ): Promise<CallToolResult> => {
      try {
        return await work(AbortSignal.any([c.req.raw.signal, signal]));
      } catch (error) {
        return refusal(error, requestId, options.logger);
      }
    };

    server.registerTool(
      "run_command",
      {
        title: "Run a governed shell command",
        description:
          "Runs one shell command (bash) under agentsh policy enforcement, in the shared " +
          "workspace or in a session. structuredContent is the POST /execute answer: " +
          "{command, result: {success, stdout, stderr, exitCode, blocked, outcome, decision: " +
          "{rule, kind, operation, target, message} | null, durationMs, ...}, requestId, session?}. " +
          "A blocked command is not an error: result.blocked is true and decision.rule names " +
          "the policy rule. When approval {id} is present a person may approve it: then call " +
          "again with the same command and approvalId. " +
          (options.networkApprovals
            ? "HTTPS to a destination outside the allow-list waits until a person approves or denies it: give such a command a timeoutMs long enough for a person (up to 300000). "
            : "") +
          "Refusals (busy, unknown session, degraded enforcement) are errors " +
          'carrying {"error": {code, message, hint}}.',
        inputSchema: runInput,
        annotations: { destructiveHint: true, openWorldHint: false },
      },
      (input, extra) =>
        answer(async (signal) => {
          const tenant = c.get("tenant");
          const caller: Caller = {
            owner,
            ...(tenant ? { tenant } : {}),
            requestId,
            signal,
            noteAgentshIds: (ids) => c.set("agentsh", ids),
          };
          return commandResult(await options.executeCommand(input, caller));
        }, extra.signal),
    );
    server.registerTool(
      "create_session",
      {
        title: "Create a session",
        description:
          "Creates a governed session with its own workspace directory; pass its id as " +
          "run_command's sessionId to keep the working directory and exported variables " +
          "between commands. Idle sessions expire (see expiresAt).",
        inputSchema: z.strictObject({}),
        annotations: { destructiveHint: false, idempotentHint: false, openWorldHint: false },
      },
      (_input, extra) =>
        answer(
          async () =>
            sessionResult("created", {
              session: await options.sessions.create(owner, sessionTenant(c.get("tenant"))),
              requestId,
            }),
          extra.signal,
        ),
    );
    server.registerTool(
      "get_session",
      {
        title: "Describe a session",
        description: "A session's working directory, exported variables, expiry and state.",
        inputSchema: sessionInput,
        annotations: { readOnlyHint: true, openWorldHint: false },
      },
      ({ sessionId }, extra) =>
        answer(
          async () =>
            sessionResult("found", { session: options.sessions.get(owner, sessionId), requestId }),
          extra.signal,
        ),
    );
    server.registerTool(
      "list_sessions",
      {
        title: "List sessions",
        description: "The caller's sessions (those created with the same API key).",
        inputSchema: z.strictObject({}),
        annotations: { readOnlyHint: true, openWorldHint: false },
      },
      (_input, extra) =>
        answer(async () => {
          const sessions = options.sessions.list(owner);
          return {
            content: [{ type: "text", text: JSON.stringify({ sessions }) }],
            structuredContent: { sessions, requestId },
          };
        }, extra.signal),
    );
    server.registerTool(
      "close_session",
      {
        title: "Close a session",
        description: "Ends a session: a running command is killed and its workspace removed.",
        inputSchema: sessionInput,
        annotations: { destructiveHint: true, idempotentHint: false, openWorldHint: false },
      },
      ({ sessionId }, extra) =>
        answer(async () => {
          const session = await options.sessions.delete(owner, sessionId);
          return sessionResult("closed", { session, deleted: true, requestId });
        }, extra.signal),
    );
    return server;
  }

  const countToolCalls: MiddlewareHandler<AppEnv> = async (c, next) => {
    const limit = options.toolCallLimit;
    if (limit && toolCalls(await readMessages(c)) > 0) return limit(c, next);
    await next();
  };

  const mcp = createRoute({
    method: "post",
    path: "/",
    operationId: "mcp",
    tags: ["commands"],
    summary: "MCP (Streamable HTTP, stateless): run_command and the session tools",
    description:
      "JSON-RPC messages of the Model Context Protocol. Send Accept: application/json, text/event-stream; answers are single JSON bodies. tools/list names the tools; a tools/call answers with the POST /execute body as structuredContent, and a refusal as an error result carrying the error envelope. A tools/call counts against the /execute rate limit and must come alone, not in a batch.",
    security: API_KEY_SECURITY,
    middleware: [options.guard, countToolCalls],
    request: {
      // The SDK checks the messages itself (JSON-RPC errors, not the envelope): documented by
      // reference only, so no validator of ours runs on them.
      body: {
        required: true,
        content: { "application/json": { schema: { $ref: "#/components/schemas/McpRequest" } } },
      },
    },
    responses: {
      200: jsonAnswer("The JSON-RPC answer(s).", jsonRpcResponseSchema),
      202: { description: "Notifications only: nothing to answer." },
      400: jsonAnswer("Not JSON, not JSON-RPC, or a tools/call in a batch.", jsonRpcErrorSchema),
      406: jsonAnswer("Accept lacks application/json or text/event-stream.", jsonRpcErrorSchema),
      415: jsonAnswer("Content-Type is not application/json.", jsonRpcErrorSchema),
      ...errorAnswers(API_KEY_ERRORS, RATE_LIMIT_ERRORS, ["body_too_large"]),
    },
  });
  /** GET and DELETE: no server stream, no MCP session; documented as refused. */
  const notOffered = (method: "get" | "delete") =>
    createRoute({
      method,
      path: "/",
      operationId: method === "get" ? "mcpStream" : "mcpEndSession",
      tags: ["commands"],
      summary: "not offered: the MCP endpoint is stateless (no server stream, no MCP session)",
      security: OPEN,
      responses: errorAnswers(["method_not_allowed"]),
    });
  const refuse = (c: Context<AppEnv>): never => {
    throw new ApiError(
      {
        code: "method_not_allowed",
        message: `${c.req.method} is not supported here: this MCP endpoint is stateless.`,
        hint: "POST JSON-RPC messages; there is no server-initiated stream and no MCP session to end.",
      },
      { Allow: "POST" },
    );
  };

  const app = new OpenAPIHono<AppEnv>();
  app.openAPIRegistry.register("McpRequest", jsonRpcRequestSchema);
  return app
    .openapi(notOffered("get"), (c) => refuse(c))
    .openapi(notOffered("delete"), (c) => refuse(c))
    .openapi(mcp, async (c) => {
      const messages = await readMessages(c);
      if (messages === unparsable) {
        return c.json(rpcError(-32700, "Parse error: the body is not JSON."), 400);
      }
      // A tool call comes alone: the request then counts once against the rate limit, and the
      // Worker (worker/session-target.ts) routes it by its sessionId. (Batches left the protocol
      // in 2025-06-18; the SDK still accepts them from older clients.)
      if (Array.isArray(messages) && toolCalls(messages) > 0) {
        return c.json(rpcError(-32600, "Send tools/call alone, not in a batch."), 400);
      }
      const { McpServer: Server, Transport } = await loadSdk();
      const server = buildServer(Server, c);
      // No sessionIdGenerator: stateless.
      const transport = new Transport({ enableJsonResponse: true });
      await server.connect(transport);
      try {
        // With JSON answers the response is complete when handleRequest resolves.
        return await transport.handleRequest(c.req.raw, { parsedBody: messages });
      } finally {
        await server.close();
      }
    });
}

const noElicitation = {
  getValidator: () => () => ({
    valid: false as const,
    data: undefined,
    errorMessage: "This server sends no elicitations.",
  }),
};

const unparsable = Symbol("unparsable");

/** The request's JSON-RPC message(s); Hono keeps the parsed body, so it is read once. */
async function readMessages(c: Context<AppEnv>): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    return unparsable;
  }
}

function toolCalls(messages: unknown): number {
  const list = Array.isArray(messages) ? messages : [messages];
  return list.filter(
    (m) =>
      typeof m === "object" && m !== null && (m as { method?: unknown }).method === "tools/call",
  ).length;
}

function rpcError(code: number, message: string) {
  return { jsonrpc: "2.0", error: { code, message }, id: null };
}

/** The `/execute` answer as structured content, with a summary a model can read at a glance. */
function commandResult(body: ExecuteBody): CallToolResult {
  return {
    content: [{ type: "text", text: summarize(body) }],
    structuredContent: body as unknown as Record<string, unknown>,
  };
}

function summarize(body: ExecuteBody): string {
  const { result, session } = body;
  const lines: string[] = [];
  if (result.blocked) {
    const d = result.decision;
    const what = d?.target ? ` (${d.operation ?? d.kind} ${d.target})` : "";
    lines.push(
      `BLOCKED by policy rule '${d?.rule ?? "unnamed"}'${what}; exit ${result.exitCode ?? "none"}`,
    );
  } else if (result.outcome === "timed_out") {
    lines.push(`TIMED OUT: ${result.message ?? "the command ran past its timeout"}`);
  } else {
    lines.push(`exit ${result.exitCode ?? "none"}`);
  }
  for (const stream of ["stdout", "stderr"] as const) {
    if (result[stream] === "") continue;
    const cut = result.truncated?.[stream]
      ? ` (truncated; ${result.truncated[`${stream}Bytes`]} bytes in all)`
      : "";
    lines.push(`--- ${stream}${cut}`, result[stream].replace(/\n$/, ""));
  }
  if (session) lines.push(`--- session ${session.id}: the next command starts in ${session.cwd}`);
  if (body.approval) {
    const { id, rule, expiresAt } = body.approval;
    lines.push(
      `APPROVAL REQUIRED (rule '${rule}'): a person has been asked (approval ${id}, until ${expiresAt}). ` +
        `Once approved, call run_command again with the same command${session ? ` and sessionId` : ""} and approvalId "${id}"; it runs once. ` +
        "Rewording the command does not help: variants are blocked by the same rule.",
    );
  }
  if (body.approvedBy) lines.push(`--- ran under approval ${body.approvedBy.id}`);
  return lines.join("\n");
}

function sessionResult(what: string, body: { session: { id: string } } & Record<string, unknown>) {
  return {
    content: [
      {
        type: "text" as const,
        text: `Session ${body.session.id} ${what}: ${JSON.stringify(body.session)}`,
      },
    ],
    structuredContent: body,
  };
}

/** A refusal as an error result carrying the service's error envelope. */
function refusal(error: unknown, requestId: string, logger: Logger): CallToolResult {
  const { body, headers } = errorBodyOf(error, logger, { requestId, path: "/mcp" });
  const retryAfter = headers["Retry-After"];
  const text = [
    `${body.code}: ${body.message}`,
    ...(body.hint ? [body.hint] : []),
    ...(retryAfter ? [`Retry after ${retryAfter} s.`] : []),
  ].join(" ");
  return {
    isError: true,
    content: [{ type: "text", text }],
    structuredContent: { error: body, requestId },
  };
}
