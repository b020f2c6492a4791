import { zValidator } from "@hono/zod-validator";
import { Hono, type MiddlewareHandler } from "hono";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import type { AppEnv } from "../app-env.js";
import { ApiError } from "../http/errors.js";
import { strictJsonBody } from "../http/json-body.js";
import type { ExecuteCommand } from "../sessions/contract.js";

export const MAX_COMMAND_LENGTH = 1024;

/** `s-<instance tag>-<24 hex>`; anything else cannot name a session. */
export const SESSION_ID_PATTERN = /^s-[a-z0-9]{1,16}-[0-9a-f]{24}$/;

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
      ),
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(maxTimeoutMs, `timeoutMs must be at most ${maxTimeoutMs}`)
      .optional(),
    sessionId: z
      .string()
      .regex(SESSION_ID_PATTERN, "sessionId must be an id from POST /sessions (s-<tag>-<hex>)")
      .optional(),
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
            send("error", streamedError(error, caller.requestId));
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

/** The error envelope for a refusal after the stream opened (the status is already sent). */
function streamedError(error: unknown, requestId: string) {
  if (error instanceof ApiError) return { error: error.body, requestId };
  return {
    error: { code: "internal_error", message: "The command could not be completed." },
    requestId,
  };
}
