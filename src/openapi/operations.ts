import { z } from "zod";
import { demoRoutes } from "../demo-scenarios.js";
import type { ErrorCode } from "../http/errors.js";
import { auditQuerySchema } from "../routes/audit.js";
import { executeBodySchema, HEARTBEAT_MS } from "../routes/execute.js";
import { SESSION_ID_PATTERN } from "../sessions/session-registry.js";
import {
  auditPageSchema,
  demoListSchema,
  demoRunSchema,
  errorEnvelope,
  executeResponseSchema,
  explanationSchema,
  healthReportSchema,
  jsonRpcErrorSchema,
  jsonRpcRequestSchema,
  jsonRpcResponseSchema,
  openApiDocumentSchema,
  selftestResponseSchema,
  serviceIndexSchema,
  sessionDeletedSchema,
  sessionListSchema,
  sessionResponseSchema,
  streamEventSchemas,
} from "./response-schemas.js";

/**
 * Every route the app serves, described once: `GET /`'s endpoint list and the OpenAPI document
 * (`GET /openapi.json`) are generated from this table. Request schemas are the very ones the
 * routes validate with. test/openapi.test.ts checks the table against `app.routes` and sends a
 * request for every status listed here, so adding a route means adding its entry here.
 */

export type MediaResponse = {
  description: string;
  /** application/json */
  json?: z.ZodType;
  /** text/html (a page) */
  html?: true;
  /** text/plain, e.g. the Prometheus text format: what the body is. */
  text?: string;
  /** text/event-stream: each event's name and the JSON schema of its `data`. */
  events?: Record<string, { description: string; data: z.ZodType }>;
  /** A redirect (no body) to this location. */
  redirect?: string;
};
// A response with none of json, html, events or redirect has no body (e.g. 202).

export interface OperationDoc {
  method: "GET" | "POST" | "DELETE";
  /** As registered in Hono, e.g. `/demo/:name`. */
  path: string;
  operationId: string;
  tag: "commands" | "sessions" | "demo" | "service" | "audit";
  /** One line; also `GET /`'s description of the endpoint. */
  summary: string;
  description?: string;
  /**
   * `open`; `apiKey`: checked when the service has an API key (401), open otherwise;
   * `configuredApiKey`: refused with 403 when the service has no API key.
   */
  access: "open" | "apiKey" | "configuredApiKey";
  /** Behind a per-client rate limit (429 `rate_limited`). */
  rateLimited?: boolean;
  pathParams?: Record<string, z.ZodType>;
  /** The route's query validator schema (400 `validation_failed`). */
  query?: z.ZodObject;
  /** The route's JSON body validator schema, behind `strictJsonBody` (400, 413, 415). */
  jsonBody?: z.ZodType;
  /**
   * A JSON body the route (or a library it hands it to) checks itself, e.g. MCP's JSON-RPC:
   * documented only; its error answers are listed in `responses` and `errors` by hand.
   */
  otherJsonBody?: z.ZodType;
  /** Answers other than the error envelope, by status. */
  responses: Record<number, MediaResponse>;
  /** Error codes of its own, besides those implied by access, rateLimited, query and jsonBody. */
  errors?: ErrorCode[];
}

/** What may stop any command before or while it runs (`refusalError`); `canceled` is never
 * seen by a client (it has gone), so it is not listed. */
const COMMAND_REFUSALS: ErrorCode[] = [
  "enforcement_degraded",
  "busy",
  "agentsh_unavailable",
  "enforcement_failed",
  "audit_unavailable",
  "internal_error",
];

/** Finding a caller's session: another key's session is a 404 too. */
const SESSION_LOOKUP: ErrorCode[] = ["session_not_found", "session_on_other_instance"];

export function describeOperations(limits: { maxTimeoutMs: number }): OperationDoc[] {
  const commandBody = executeBodySchema(limits.maxTimeoutMs);
  const sessionId = z.string().regex(SESSION_ID_PATTERN).describe("From POST /sessions.");
  return [
    {
      method: "GET",
      path: "/",
      operationId: "serviceIndex",
      tag: "service",
      summary: "what this service is and its endpoints",
      access: "open",
      responses: {
        200: { description: "The endpoints.", json: serviceIndexSchema },
        303: {
          description: "A browser (its Accept ranks text/html above JSON) is sent to the console.",
          redirect: "/console",
        },
      },
    },
    {
      method: "GET",
      path: "/console",
      operationId: "console",
      tag: "service",
      summary: "browser console (HTML): run demos and commands, streamed, in sessions",
      access: "open",
      responses: { 200: { description: "The page.", html: true } },
    },
    {
      method: "GET",
      path: "/openapi.json",
      operationId: "openApiDocument",
      tag: "service",
      summary: "this API as an OpenAPI 3.1 document",
      access: "open",
      responses: { 200: { description: "This document.", json: openApiDocumentSchema } },
    },
    {
      method: "GET",
      path: "/health",
      operationId: "health",
      tag: "service",
      summary: "agentsh and enforcement state",
      access: "open",
      responses: {
        200: {
          description: "agentsh answers and enforcement is proven.",
          json: healthReportSchema,
        },
        503: {
          description: "Commands are refused now: `reason` says why.",
          json: healthReportSchema,
        },
      },
    },
    {
      method: "GET",
      path: "/demo",
      operationId: "listDemos",
      tag: "demo",
      summary: "list of demo scenarios",
      access: "open",
      rateLimited: true,
      responses: { 200: { description: "The demo routes.", json: demoListSchema } },
    },
    {
      method: "GET",
      path: "/demo/:name",
      operationId: "runDemo",
      tag: "demo",
      summary: "run a demo scenario table",
      description:
        "Runs each command of the named table through agentsh and says whether it was allowed or blocked as expected.",
      access: "open",
      rateLimited: true,
      pathParams: {
        name: z.enum(demoRoutes.map((route) => route.name) as [string, ...string[]]),
      },
      responses: { 200: { description: "The results.", json: demoRunSchema } },
      errors: ["not_found", ...COMMAND_REFUSALS],
    },
    {
      method: "POST",
      path: "/execute",
      operationId: "execute",
      tag: "commands",
      summary:
        'run a shell command through agentsh: {"command", "timeoutMs"?, "sessionId"?}; Accept: text/event-stream streams the output',
      description:
        "Runs one command under the policy, in a session when `sessionId` names one. A blocked command is a 200 with `result.blocked` and `result.decision`. With `Accept: text/event-stream` the output streams as it arrives; authentication and validation errors still come as JSON before any stream, later refusals as an `error` event.",
      access: "apiKey",
      rateLimited: true,
      jsonBody: commandBody,
      responses: {
        200: {
          description: "The command ran (or was blocked).",
          json: executeResponseSchema,
          events: {
            started: { description: "The command was accepted.", data: streamEventSchemas.started },
            stdout: { description: "Output as it arrives.", data: streamEventSchemas.output },
            stderr: { description: "Output as it arrives.", data: streamEventSchemas.output },
            heartbeat: {
              description: `At least every ${HEARTBEAT_MS / 1000} s.`,
              data: streamEventSchemas.heartbeat,
            },
            result: {
              description: "The last event: the buffered answer, with the full bounded output.",
              data: executeResponseSchema,
            },
            error: {
              description: "The last event when the command was refused after the stream opened.",
              data: errorEnvelope,
            },
          },
        },
      },
      errors: [
        ...COMMAND_REFUSALS,
        "session_not_found",
        "session_busy",
        "session_on_other_instance",
      ],
    },
    {
      method: "POST",
      path: "/sessions",
      operationId: "createSession",
      tag: "sessions",
      summary: "create a session (its cwd and exported variables carry over)",
      description:
        "A governed session owned by the calling API key, with its own workspace directory. The body is empty or {} (no options yet). Idle sessions expire.",
      access: "apiKey",
      rateLimited: true,
      responses: { 201: { description: "The new session.", json: sessionResponseSchema } },
      errors: ["validation_failed", "body_too_large", "session_limit", "agentsh_unavailable"],
    },
    {
      method: "GET",
      path: "/sessions",
      operationId: "listSessions",
      tag: "sessions",
      summary: "the calling API key's sessions",
      access: "apiKey",
      rateLimited: true,
      responses: { 200: { description: "Your sessions.", json: sessionListSchema } },
    },
    {
      method: "GET",
      path: "/sessions/:id",
      operationId: "getSession",
      tag: "sessions",
      summary: "one session",
      access: "apiKey",
      rateLimited: true,
      pathParams: { id: sessionId },
      responses: { 200: { description: "The session.", json: sessionResponseSchema } },
      errors: SESSION_LOOKUP,
    },
    {
      method: "DELETE",
      path: "/sessions/:id",
      operationId: "deleteSession",
      tag: "sessions",
      summary: "end a session (a running command is killed, its workspace removed)",
      access: "apiKey",
      rateLimited: true,
      pathParams: { id: sessionId },
      responses: { 200: { description: "The session as it was.", json: sessionDeletedSchema } },
      errors: SESSION_LOOKUP,
    },
    {
      method: "POST",
      path: "/mcp",
      operationId: "mcp",
      tag: "commands",
      summary: "MCP (Streamable HTTP, stateless): run_command and the session tools",
      description:
        "JSON-RPC messages of the Model Context Protocol. Send Accept: application/json, text/event-stream; answers are single JSON bodies. tools/list names the tools; a tools/call answers with the POST /execute body as structuredContent, and a refusal as an error result carrying the error envelope. A tools/call counts against the /execute rate limit and must come alone, not in a batch.",
      access: "apiKey",
      rateLimited: true,
      otherJsonBody: jsonRpcRequestSchema,
      responses: {
        200: { description: "The JSON-RPC answer(s).", json: jsonRpcResponseSchema },
        202: { description: "Notifications only: nothing to answer." },
        400: {
          description: "Not JSON, not JSON-RPC, or a tools/call in a batch.",
          json: jsonRpcErrorSchema,
        },
        406: {
          description: "Accept lacks application/json or text/event-stream.",
          json: jsonRpcErrorSchema,
        },
        415: { description: "Content-Type is not application/json.", json: jsonRpcErrorSchema },
      },
      errors: ["body_too_large"],
    },
    ...(["GET", "DELETE"] as const).map(
      (method): OperationDoc => ({
        method,
        path: "/mcp",
        operationId: `mcp${method === "GET" ? "Stream" : "EndSession"}`,
        tag: "commands",
        summary: "not offered: the MCP endpoint is stateless (no server stream, no MCP session)",
        access: "open",
        responses: {},
        errors: ["method_not_allowed"],
      }),
    ),
    {
      method: "GET",
      path: "/audit",
      operationId: "audit",
      tag: "audit",
      summary: "recent commands and decisions (API key required)",
      access: "configuredApiKey",
      query: auditQuerySchema,
      responses: { 200: { description: "One page of the audit log.", json: auditPageSchema } },
      errors: ["audit_unavailable"],
    },
    {
      method: "GET",
      path: "/metrics",
      operationId: "metrics",
      tag: "service",
      summary: "Prometheus metrics (METRICS_TOKEN as a Bearer token, or the API key)",
      description:
        "Commands by outcome, rule and layer; latency; command slots and queue; enforcement state; the last canary round; sessions; the audit trail's write queue.",
      access: "configuredApiKey",
      responses: {
        200: {
          description: "The metrics.",
          text: "Prometheus text exposition format 0.0.4",
        },
      },
    },
    {
      method: "POST",
      path: "/explain",
      operationId: "explain",
      tag: "commands",
      summary: 'the policy\'s verdict on {"command"}; nothing is run',
      description: "Takes the body of POST /execute (timeoutMs is accepted and ignored).",
      access: "apiKey",
      rateLimited: true,
      jsonBody: commandBody,
      responses: { 200: { description: "The verdict and why.", json: explanationSchema } },
    },
    {
      method: "POST",
      path: "/selftest",
      operationId: "selftest",
      tag: "service",
      summary: "run the enforcement canaries now (API key required)",
      access: "configuredApiKey",
      rateLimited: true,
      responses: {
        200: { description: "The fresh canary results.", json: selftestResponseSchema },
      },
      errors: ["agentsh_unavailable"],
    },
  ];
}

/** Every error code an operation can answer with: its own and those its guards imply. */
export function errorCodesOf(operation: OperationDoc): ErrorCode[] {
  const codes: ErrorCode[] = [];
  if (operation.access !== "open") codes.push("api_key_missing", "api_key_invalid");
  if (operation.access === "configuredApiKey") codes.push("api_key_not_configured");
  if (operation.rateLimited) codes.push("rate_limited");
  if (operation.query || operation.jsonBody) codes.push("validation_failed");
  if (operation.jsonBody) {
    codes.push(
      "invalid_request",
      "invalid_encoding",
      "duplicate_key",
      "unsupported_media_type",
      "body_too_large",
    );
  }
  codes.push(...(operation.errors ?? []));
  return [...new Set(codes)];
}
