import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { streamSSE } from "hono/streaming";
import { setMetric, timing } from "hono/timing";
import type { AppEnv } from "../app-env.js";
import { ApiError, errorBodyOf } from "../http/errors.js";
import { strictJsonBody } from "../http/json-body.js";
import type { Logger } from "../logger.js";
import {
  errorEnvelope,
  executeResponseSchema,
  streamEventSchemas,
} from "../openapi/response-schemas.js";
import {
  API_KEY_ERRORS,
  API_KEY_SECURITY,
  COMMAND_REFUSALS,
  errorAnswers,
  JSON_BODY_ERRORS,
  RATE_LIMIT_ERRORS,
} from "../openapi/route-docs.js";
import type { Caller, ExecuteCommand } from "../sessions/contract.js";
import { SESSION_ID_PATTERN } from "../sessions/session-registry.js";

export const MAX_COMMAND_LENGTH = 1024;

export function executeBodySchema(maxTimeoutMs: number) {
  return z.strictObject({
    command: z
      .string({ error: "command must be a string" })
      .max(MAX_COMMAND_LENGTH, `command must be at most ${MAX_COMMAND_LENGTH} characters`)
      .refine((command) => command.trim().length > 0, "command must not be empty")
      .refine((command) => !command.includes("\0"), "command must not contain NUL bytes")
      .refine(
        (command) => !/\p{Cs}/u.test(command),
        "command must be valid Unicode (it contains a lone surrogate)",
      )
      .describe("Run by /bin/bash -c under the policy. Not blank, no NUL bytes."),
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(maxTimeoutMs, `timeoutMs must be at most ${maxTimeoutMs}`)
      .optional()
      .describe("The command's time limit; the service's default when absent."),
    sessionId: z
      .string()
      .regex(SESSION_ID_PATTERN, "sessionId must be an id from POST /sessions (s-<tag>-<hex>)")
      .optional()
      .describe("Run in this session (POST /sessions): its directory and exported variables."),
    approvalId: z
      .string()
      .regex(/^apr-[0-9a-f]{24}$/, "approvalId must be an id from an answer's approval (apr-<hex>)")
      .optional()
      .describe(
        "Run this command as approved (POST /approvals/:id): the same command text, API key and session as the blocked one; once.",
      ),
  });
}

/**
 * The body validator's hook of `/execute` (and of `/explain`, which takes the same body): a 400
 * `validation_failed` listing each problem, with `hint` saying what to send.
 */
export function commandBodyHook(hint: string) {
  return (result: { success: true } | { success: false; error: z.ZodError }): undefined => {
    if (!result.success) {
      throw new ApiError({
        code: "validation_failed",
        message: result.error.issues.map((issue) => issue.message).join("; "),
        hint,
        details: result.error.issues.map((issue) => ({
          path: issue.path.join("."),
          message: issue.message,
        })),
      });
    }
  };
}

/** Heartbeats keep proxies and clients from closing a quiet stream. */
export const HEARTBEAT_MS = 10_000;

/**
 * The events of `POST /execute` with `Accept: text/event-stream`: what each is, and its `data`
 * as a component of the document (by name; `x-events` refers to it).
 */
const STREAM_EVENTS = {
  started: ["The command was accepted.", "StreamStarted", streamEventSchemas.started],
  stdout: ["Output as it arrives.", "StreamOutput", streamEventSchemas.output],
  stderr: ["Output as it arrives.", "StreamOutput", streamEventSchemas.output],
  heartbeat: [
    `At least every ${HEARTBEAT_MS / 1000} s.`,
    "StreamHeartbeat",
    streamEventSchemas.heartbeat,
  ],
  approval_required: [
    "kind command: before `result` when agentsh blocked the command on an approval-class rule; once a person approves, resubmit the same command with `approvalId`. kind network (NETWORK_APPROVALS): while the command runs, agentsh's proxy holds one of its connections until a person decides; the command goes on by itself.",
    "StreamApprovalRequired",
    streamEventSchemas.approvalRequired,
  ],
  result: [
    "The last event: the buffered answer, with the full bounded output.",
    "ExecuteResponse",
    executeResponseSchema,
  ],
  error: [
    "The last event when the command was refused after the stream opened.",
    "ErrorEnvelope",
    errorEnvelope,
  ],
} as const;

/** One event of `POST /execute`'s stream: its name and its `data` (parsed). */
export type ExecuteStreamEvent = {
  [E in keyof typeof STREAM_EVENTS]: { event: E; data: z.output<(typeof STREAM_EVENTS)[E][2]> };
}[keyof typeof STREAM_EVENTS];

/**
 * `POST /execute {command, timeoutMs?, sessionId?}`: runs one command through agentsh. With
 * `Accept: text/event-stream` the output is streamed as it arrives (events: started, stdout,
 * stderr, heartbeat, then result or error); otherwise one JSON answer.
 */
export function createExecuteRoutes(options: {
  executeCommand: ExecuteCommand;
  maxTimeoutMs: number;
  guard: MiddlewareHandler<AppEnv>;
  logger: Logger;
}) {
  const route = createRoute({
    method: "post",
    path: "/",
    operationId: "execute",
    tags: ["commands"],
    summary:
      'run a shell command through agentsh: {"command", "timeoutMs"?, "sessionId"?}; Accept: text/event-stream streams the output',
    description:
      "Runs one command under the policy, in a session when `sessionId` names one. A blocked command is a 200 with `result.blocked` and `result.decision`. With `Accept: text/event-stream` the output streams as it arrives; authentication and validation errors still come as JSON before any stream, later refusals as an `error` event.",
    security: API_KEY_SECURITY,
    // Server-Timing: where the answer's time went (queue, limits, agentsh, after, evidence).
    middleware: [timing({ crossOrigin: false }), options.guard, strictJsonBody],
    request: {
      body: {
        required: true,
        content: {
          "application/json": {
            schema: executeBodySchema(options.maxTimeoutMs).openapi("ExecuteRequest"),
          },
        },
      },
    },
    responses: {
      200: {
        description: "The command ran (or was blocked).",
        content: {
          "application/json": { schema: executeResponseSchema },
          "text/event-stream": {
            schema: {
              type: "string",
              description: Object.entries(STREAM_EVENTS)
                .map(([event, [description]]) => `\`event: ${event}\`: ${description}`)
                .join("\n"),
            },
            // Not part of OpenAPI 3.1 (3.2 adds itemSchema): each event's `data`, as JSON Schema.
            "x-events": Object.fromEntries(
              Object.entries(STREAM_EVENTS).map(([event, [, name]]) => [
                event,
                { $ref: `#/components/schemas/${name}` },
              ]),
            ),
          },
        },
      },
      ...errorAnswers(API_KEY_ERRORS, RATE_LIMIT_ERRORS, JSON_BODY_ERRORS, COMMAND_REFUSALS, [
        "session_not_found",
        "session_busy",
        "session_on_other_instance",
        "approval_refused",
      ]),
    },
  });
  const app = new OpenAPIHono<AppEnv>();
  for (const [, name, data] of Object.values(STREAM_EVENTS)) {
    app.openAPIRegistry.register(name, data);
  }
  return app.openapi(
    route,
    async (c) => {
      const input = c.req.valid("json");
      const tenant = c.get("tenant");
      const caller: Caller = {
        owner: c.get("owner"),
        ...(tenant ? { tenant } : {}),
        requestId: c.get("requestId"),
        signal: c.req.raw.signal,
        noteAgentshIds: (ids: { sessionId: string | null; commandId: string | null }) =>
          c.set("agentsh", ids),
        onPhase: (phase: string, ms: number) => setMetric(c, phase, ms),
      };
      if (wantsEventStream(c.req.header("accept"))) {
        return streamSSE(c, async (stream) => {
          // Events go out in order; output callbacks do not wait for the socket.
          let sending = Promise.resolve();
          const send = <E extends ExecuteStreamEvent["event"]>(
            event: E,
            data: Extract<ExecuteStreamEvent, { event: E }>["data"],
          ) => {
            sending = sending.then(() =>
              stream.writeSSE({ event, data: JSON.stringify(data) }).catch(() => {}),
            );
          };
          const heartbeat = setInterval(() => send("heartbeat", {}), HEARTBEAT_MS);
          caller.onApproval = (note) => send("approval_required", note);
          send("started", {
            requestId: caller.requestId,
            command: input.command,
            ...(input.sessionId ? { sessionId: input.sessionId } : {}),
          });
          try {
            const body = await options.executeCommand(input, caller, (chunk) =>
              send(chunk.stream, { text: chunk.text }),
            );
            if (body.approval) send("approval_required", body.approval);
            send("result", body);
          } catch (error) {
            // A refusal after the stream opened: the envelope as an event (the status is sent).
            const { body } = errorBodyOf(error, options.logger, {
              requestId: caller.requestId,
              path: "/execute",
            });
            send("error", { error: body, requestId: caller.requestId });
          } finally {
            clearInterval(heartbeat);
            await sending;
          }
        });
      }
      return c.json(await options.executeCommand(input, caller), 200);
    },
    commandBodyHook(
      'Send {"command": "<shell command>"} with an optional "timeoutMs" and "sessionId".',
    ),
  );
}

/** Whether the client asked for a stream (and did not prefer JSON over it). */
function wantsEventStream(accept: string | undefined): boolean {
  return accept !== undefined && /(^|,)\s*text\/event-stream\s*(;|,|$)/i.test(accept);
}
