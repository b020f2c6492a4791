import { zValidator } from "@hono/zod-validator";
import { Hono, type MiddlewareHandler } from "hono";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import type { AppEnv } from "../app-env.js";
import { ApiError, errorBodyOf } from "../http/errors.js";
import { strictJsonBody } from "../http/json-body.js";
import type { Logger } from "../logger.js";
import type { ExecuteCommand } from "../sessions/contract.js";
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
  });
}

/**
 * The body validator of `/execute` (and of `/explain`, which takes the same body): a 400
 * `validation_failed` listing each problem, with `hint` saying what to send.
 */
export function validCommandBody(maxTimeoutMs: number, hint: string) {
  return zValidator("json", executeBodySchema(maxTimeoutMs), (result) => {
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
  });
}

/** Heartbeats keep proxies and clients from closing a quiet stream. */
export const HEARTBEAT_MS = 10_000;

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
  return new Hono<AppEnv>().post(
    "/",
    options.guard,
    strictJsonBody,
    validCommandBody(
      options.maxTimeoutMs,
      'Send {"command": "<shell command>"} with an optional "timeoutMs" and "sessionId".',
    ),
    async (c) => {
      const input = c.req.valid("json");
      const caller = {
        owner: c.get("owner"),
        requestId: c.get("requestId"),
        signal: c.req.raw.signal,
        noteAgentshIds: (ids: { sessionId: string | null; commandId: string | null }) =>
          c.set("agentsh", ids),
      };
      if (wantsEventStream(c.req.header("accept"))) {
        return streamSSE(c, async (stream) => {
          // Events go out in order; output callbacks do not wait for the socket.
          let sending = Promise.resolve();
          const send = (event: string, data: unknown) => {
            sending = sending.then(() =>
              stream.writeSSE({ event, data: JSON.stringify(data) }).catch(() => {}),
            );
          };
          const heartbeat = setInterval(() => send("heartbeat", {}), HEARTBEAT_MS);
          send("started", {
            requestId: caller.requestId,
            command: input.command,
            ...(input.sessionId ? { sessionId: input.sessionId } : {}),
          });
          try {
            const body = await options.executeCommand(input, caller, (chunk) =>
              send(chunk.stream, { text: chunk.text }),
            );
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
      const body = await options.executeCommand(input, caller);
      return c.json(body);
    },
  );
}

/** Whether the client asked for a stream (and did not prefer JSON over it). */
function wantsEventStream(accept: string | undefined): boolean {
  return accept !== undefined && /(^|,)\s*text\/event-stream\s*(;|,|$)/i.test(accept);
}
