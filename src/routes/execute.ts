import { zValidator } from "@hono/zod-validator";
import { Hono, type MiddlewareHandler } from "hono";
import { z } from "zod";
import type { AppEnv } from "../app-env.js";
import { ApiError, refusalError } from "../http/errors.js";
import { strictJsonBody } from "../http/json-body.js";
import type { RunCommand } from "../run-command.js";

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

/** `POST /execute {command, timeoutMs?}`: runs one command through agentsh. */
export function createExecuteRoutes(options: {
  runCommand: RunCommand;
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  guard: MiddlewareHandler<AppEnv>;
}) {
  return new Hono<AppEnv>().post(
    "/",
    options.guard,
    strictJsonBody,
    validCommandBody(
      options.maxTimeoutMs,
      'Send {"command": "<shell command>"} with an optional "timeoutMs".',
    ),
    async (c) => {
      const { command, timeoutMs } = c.req.valid("json");
      const requestId = c.get("requestId");
      const run = await options.runCommand(
        command,
        timeoutMs ?? options.defaultTimeoutMs,
        c.req.raw.signal,
        { requestId },
      );
      if (run.outcome !== "result") throw refusalError(run);
      c.set("agentsh", run.agentsh);
      return c.json({ command, result: run.result, requestId });
    },
  );
}
