import { z } from "zod";

/**
 * agentsh v0.16.9 `exec --output json` prints one ExecResponse (pkg/types/exec.go). The schemas
 * below cover only the fields we read; unknown fields are ignored so a newer agentsh still parses.
 */

const policyInfoSchema = z.object({
  decision: z.string().optional(),
  effective_decision: z.string().optional(),
  rule: z.string().optional(),
  message: z.string().optional(),
});

export const eventSchema = z.object({
  type: z.string().default(""),
  policy: policyInfoSchema.nullish(),
  filename: z.string().optional(),
  argv: z.array(z.string()).nullish(),
  path: z.string().optional(),
  domain: z.string().optional(),
  remote: z.string().optional(),
  operation: z.string().optional(),
});

const execErrorSchema = z.object({
  code: z.string().default(""),
  message: z.string().default(""),
  policy_rule: z.string().optional(),
});

export const execResponseSchema = z.object({
  command_id: z.string().optional(),
  result: z.object({
    exit_code: z.number().int(),
    stdout: z.string().default(""),
    stderr: z.string().default(""),
    stdout_truncated: z.boolean().default(false),
    stderr_truncated: z.boolean().default(false),
    stdout_total_bytes: z.number().optional(),
    stderr_total_bytes: z.number().optional(),
    duration_ms: z.number().default(0),
    error: execErrorSchema.nullish(),
  }),
  events: z.object({ blocked_operations: z.array(eventSchema).nullish() }).nullish(),
  guidance: z
    .object({
      status: z.string().optional(),
      blocked: z.boolean().optional(),
      reason: z.string().optional(),
      policy_rule: z.string().optional(),
      blocked_operation: z.string().optional(),
      blocked_target: z.string().optional(),
    })
    .nullish(),
});

export type ExecResponse = z.infer<typeof execResponseSchema>;

export type AgentshEvent = z.infer<typeof eventSchema>;

export function parseExecResponse(stdout: string): ExecResponse | null {
  const start = stdout.indexOf("{");
  if (start === -1) return null;
  let json: unknown;
  try {
    json = JSON.parse(stdout.slice(start));
  } catch {
    return null;
  }
  const parsed = execResponseSchema.safeParse(json);
  return parsed.success ? parsed.data : null;
}
