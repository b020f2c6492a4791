import { z } from "@hono/zod-openapi";
import type { ServiceRunEntry } from "../agentsh/installation-report.js";
import { AUDIT_OUTCOMES, type AuditPage } from "../audit/audit-log.js";
import type { CommandResult } from "../command-result.js";
import type { DemoScenario } from "../demo-scenarios.js";
import type { HealthReport } from "../enforcement/health.js";
import type { ProtectionStatus } from "../enforcement/protections.js";
import type { Decision } from "../executor.js";
import type { Explanation } from "../explain/explain.js";
import { ERROR_CODES, type ErrorCode } from "../http/errors.js";
import type { ExecuteBody, SessionInfo } from "../sessions/contract.js";

/**
 * The JSON bodies the service sends, as zod schemas. The routes declare their answers with them
 * (`createRoute`), so the handlers' `c.json` calls are type-checked against them and the OpenAPI
 * document is generated from them; test/routes/openapi.test.ts parses real responses with them.
 * Objects are strict: a field added to a response but not here fails that test. The `Describes`
 * checks below fail the type check when an interface's fields change. `.openapi(name)` makes a
 * schema a named component of the document (referenced where it is used). A named strict object
 * is never `.extend`ed: the generator would write the extension as an `allOf` whose second half
 * forbids the first half's fields.
 */

const nullableString = z.string().nullable();

export const decisionSchema = z
  .strictObject({
    rule: nullableString.describe("The policy rule that matched, e.g. deny-privilege-escalation."),
    kind: z.enum(["command", "file", "network", "other"]),
    layer: z
      .enum(["launcher", "limit"])
      .optional()
      .describe(
        "Present when agentsh did not decide: launcher (agentsh-launch refused to start the command) or limit (a resource limit stopped it, on the kernel's evidence: limit-memory, limit-pids, limit-cpu, limit-file-size, limit-disk).",
      ),
    operation: nullableString.describe("What was attempted, e.g. execve, file_open, net_connect."),
    target: nullableString.describe("What it was attempted on: a path, host, address or program."),
    message: nullableString,
  })
  .openapi("Decision");

export const commandResultSchema = z
  .strictObject({
    success: z.boolean().describe("outcome is ok (v0 field)."),
    stdout: z.string().describe("DLP-redacted, bounded."),
    stderr: z.string().describe("DLP-redacted, bounded."),
    exitCode: z.number().int().nullable().describe("null when unknown (killed at its time limit)."),
    blocked: z.boolean().describe("outcome is blocked (v0 field)."),
    message: z.string().optional().describe("Why it was blocked or stopped."),
    outcome: z.enum(["ok", "failed", "blocked", "timed_out"]),
    decision: decisionSchema
      .nullable()
      .describe("The rule that blocked the command; null if none."),
    completed: z
      .boolean()
      .describe(
        "The command ran to its own end, so exitCode is its own: false when it was refused before it started (a top-level rule, the launcher) or killed at its time limit. blocked with completed and exit 0: a step was denied and the command went on.",
      ),
    denials: z
      .array(decisionSchema)
      .optional()
      .describe("Every denial, each with its rule (present when anything was denied)."),
    durationMs: z.number(),
    truncated: z
      .strictObject({
        stdout: z.boolean(),
        stderr: z.boolean(),
        stdoutBytes: z.number().int(),
        stderrBytes: z.number().int(),
      })
      .optional(),
    redactions: z
      .record(z.string(), z.number().int())
      .optional()
      .describe("Secrets replaced in the output, by pattern name."),
  })
  .openapi("CommandResult");

/** An approval a person may now decide: a blocked command, or a held connection. */
const approvalNoteSchema = z.strictObject({
  id: z.string(),
  kind: z
    .enum(["command", "network"])
    .describe(
      "command: blocked; once approved, resubmit with approvalId. network: agentsh's proxy holds a connection of the running command until the decision.",
    ),
  status: z.literal("pending"),
  rule: z.string().describe("The rule agentsh blocked (command) or holds (network) it on."),
  target: z.string().optional().describe("Network: the destination (host:port) held."),
  expiresAt: z.string(),
});

export const executeResponseSchema = z
  .strictObject({
    command: z.string(),
    result: commandResultSchema,
    requestId: z.string(),
    approval: approvalNoteSchema
      .optional()
      .describe(
        "Present when the command was blocked on an approval-class rule: once a person approves (POST /approvals/:id), send the same command with this approvalId.",
      ),
    approvedBy: z
      .strictObject({ id: z.string(), decidedBy: z.string(), reason: z.string().nullable() })
      .optional()
      .describe("Present when the command ran under an approval (now used)."),
    session: z
      .strictObject({
        id: z.string(),
        cwd: z.string().describe("Where the session's next command starts."),
        env: z.array(z.string()).describe("Exported names carried to its next command."),
        envNotCarried: z
          .array(z.string())
          .optional()
          .describe("Exported names not carried (the policy's env_policy denies them)."),
      })
      .optional()
      .describe("Present when the command ran in a session."),
  })
  .openapi("ExecuteResponse");

/** `POST /execute` with `Accept: text/event-stream`: the `data` of each event. */
export const streamEventSchemas = {
  started: z.strictObject({
    requestId: z.string(),
    command: z.string(),
    sessionId: z.string().optional(),
  }),
  output: z.strictObject({ text: z.string().describe("DLP-redacted, as it arrives.") }),
  heartbeat: z.strictObject({}),
  approvalRequired: approvalNoteSchema,
};

export const sessionInfoSchema = z
  .strictObject({
    id: z.string().describe("s-<instance tag>-<24 hex>: the tag names the instance holding it."),
    createdAt: z.string(),
    lastUsedAt: z.string(),
    expiresAt: z.string().describe("When it expires unless used again (idle timeout)."),
    workspace: z.string().describe("The session's own directory."),
    cwd: z.string().describe("Where its next command starts (after the last cd)."),
    env: z
      .array(z.string())
      .describe("Names of the exported variables carried into its next command."),
    commands: z.number().int().describe("Commands run in it so far."),
    busy: z.boolean().describe("A command is running in it now (another is refused with 409)."),
    isolated: z
      .boolean()
      .describe(
        "Other sessions' and other API keys' commands can neither read nor write its directory or scratch HOME/TMPDIR (the launcher's Landlock file rules; where commands drop to unprivileged uids, a uid of its own too). False only without the launcher.",
      ),
  })
  .openapi("SessionInfo");

const sessionAnswer = { session: sessionInfoSchema, requestId: z.string() };
export const sessionResponseSchema = z.strictObject(sessionAnswer).openapi("SessionResponse");

export const sessionListSchema = z
  .strictObject({
    sessions: z.array(sessionInfoSchema).describe("The calling API key's sessions."),
    requestId: z.string(),
  })
  .openapi("SessionList");

export const sessionDeletedSchema = z
  .strictObject({ ...sessionAnswer, deleted: z.literal(true) })
  .openapi("SessionDeleted");

export const ALL_ERROR_CODES = Object.keys(ERROR_CODES) as ErrorCode[];

/** The one error envelope (`src/http/errors.ts`), every code. */
export const errorEnvelope = z
  .strictObject({
    error: z.strictObject({
      code: z.enum(ALL_ERROR_CODES as [ErrorCode, ...ErrorCode[]]),
      message: z.string(),
      hint: z.string().optional().describe("What the caller can do about it."),
      details: z
        .array(z.strictObject({ path: z.string(), message: z.string() }))
        .optional()
        .describe("validation_failed: each problem, by field."),
    }),
    requestId: z.string(),
  })
  .openapi("ErrorEnvelope");

export type ErrorEnvelope<C extends ErrorCode = ErrorCode> = z.output<typeof errorEnvelope> & {
  error: { code: C };
};

/**
 * The envelope with `error.code` narrowed to `codes` (a route's codes for one status). In the
 * document: `allOf` the `ErrorEnvelope` component and the narrowed code.
 */
export function errorEnvelopeSchema<const C extends ErrorCode>(
  codes: readonly C[],
): z.ZodType<ErrorEnvelope<C>> {
  return z.intersection(
    errorEnvelope,
    z.object({ error: z.object({ code: z.enum(codes as readonly C[] as [C, ...C[]]) }) }),
  ) as z.ZodType<ErrorEnvelope<C>>;
}

const enforcementStateSchema = z.strictObject({
  mode: z.enum(["enforced", "degraded", "unverified"]),
  checks: z.record(z.string(), z.boolean()).describe("Each check by name: passed."),
  problems: z.array(z.string()),
});

export const healthReportSchema = z
  .strictObject({
    status: z.enum(["ok", "unavailable"]),
    reason: z.string().optional(),
    agentsh: z.strictObject({
      server: z.enum(["reachable", "unreachable"]),
      url: z.string(),
      policies: z
        .record(
          z.string(),
          z.strictObject({ server: z.enum(["reachable", "unreachable"]), url: z.string() }),
        )
        .optional()
        .describe(
          "Each tenant policy's own agentsh server (agentsh applies network rules, env_policy and limits from its server's policy); absent without one.",
        ),
    }),
    enforcement: enforcementStateSchema.extend({ allowDegraded: z.boolean() }),
    bundle: z.strictObject({ digest: z.string(), policy: z.string() }),
    isolation: z.strictObject({
      landlockAbi: z.number().int().nullable(),
      layers: z.record(z.string(), z.string()),
      udp: z.boolean(),
      bindTcpPorts: z
        .array(z.string())
        .describe(
          'What commands may bind: ["any"] (the kernel\'s rules), or Landlock port ranges.',
        ),
      servicePorts: z
        .record(z.string(), z.object({ ipv4: z.string(), ipv6: z.string() }))
        .describe(
          "The service's own ports and what keeps commands off each address family: held (by the service), in use (by its owner), app, or none (no such family here).",
        ),
      privilegedPortsBelow: z
        .number()
        .int()
        .nullable()
        .describe("Ports below this need CAP_NET_BIND_SERVICE, which commands never have."),
      limits: z
        .record(z.string(), z.string())
        .describe("Each resource limit: its value and mechanism here, or unavailable with why."),
    }),
    commands: z.strictObject({
      slots: z.number().int(),
      inFlight: z.number().int(),
      queued: z.number().int(),
    }),
    uptimeSeconds: z.number(),
  })
  .openapi("HealthReport");

export const protectionStatusSchema = z
  .strictObject({
    category: z.string(),
    claim: z.strictObject({ claimed: z.boolean(), by: z.record(z.string(), z.boolean()) }),
    proof: z.strictObject({
      proved: z.boolean().nullable(),
      probedAt: nullableString,
      canaries: z.array(
        z.strictObject({ name: z.string(), command: z.string(), passed: z.boolean().nullable() }),
      ),
    }),
  })
  .openapi("ProtectionStatus");

export const selftestResponseSchema = enforcementStateSchema
  .extend({
    probedAt: nullableString,
    protections: z.array(protectionStatusSchema),
  })
  .openapi("SelftestResult");

const auditEntrySchema = z
  .strictObject({
    id: z.string().describe("Unique; entries are append-only."),
    time: z.string(),
    instance: z.string().describe("The service instance that answered (INSTANCE_TAG)."),
    caller: nullableString.describe("The API key's fingerprint (never the key); null for demos."),
    session: nullableString.describe("The caller's session (POST /sessions) it ran in."),
    requestId: nullableString,
    command: z.string().describe("As sent, after DLP redaction."),
    outcome: z.enum(AUDIT_OUTCOMES),
    errorCode: nullableString.describe(
      "The error code the caller was answered with; null for a result.",
    ),
    rule: nullableString,
    layer: z.enum(["agentsh", "launcher", "limit"]).nullable(),
    kind: nullableString,
    operation: nullableString,
    target: nullableString,
    exitCode: z.number().int().nullable(),
    durationMs: z.number().nullable(),
    sessionId: nullableString.describe("The agentsh session it ran in."),
    commandId: nullableString,
  })
  .openapi("AuditEntry");

export const auditPageSchema = z
  .strictObject({
    entries: z.array(auditEntrySchema).describe("Newest first."),
    nextCursor: nullableString.describe("Pass as cursor for the next (older) page."),
  })
  .openapi("AuditPage");

export const explanationSchema = z
  .strictObject({
    command: z.string(),
    verdict: z.enum(["allowed", "blocked", "undecidable"]),
    rule: nullableString.describe("For blocked: the rule that stops it."),
    reasons: z.array(z.string()),
    programs: z.array(
      z.strictObject({
        command: z.string(),
        program: z.string(),
        executable: nullableString,
        rule: nullableString,
        decision: z.string(),
        conditional: z.boolean(),
      }),
    ),
    files: z.array(
      z.strictObject({
        path: z.string(),
        operation: z.string(),
        via: z.string(),
        rule: z.string(),
        decision: z.string(),
        conditional: z.boolean(),
      }),
    ),
    network: z.array(
      z.strictObject({
        url: z.string(),
        host: z.string(),
        port: z.number().int(),
        via: z.string(),
        rule: nullableString,
        decision: z.string(),
        conditional: z.boolean(),
      }),
    ),
    runtime: z.array(z.string()).describe("What only the run decides."),
    agentsh: z
      .strictObject({ checked: z.number().int(), disagreements: z.array(z.string()) })
      .nullable(),
    executed: z.literal(false),
  })
  .openapi("Explanation");

export const demoListSchema = z
  .strictObject({
    demos: z.array(
      z.strictObject({ path: z.string(), description: z.string(), commands: z.number().int() }),
    ),
  })
  .openapi("DemoList");

const demoScenarioResultSchema = z.strictObject({
  command: z.string(),
  expected: z.enum(["allowed", "blocked", "denied"] satisfies DemoScenario["expect"][]),
  asExpected: z.boolean(),
  result: commandResultSchema,
});

const serviceRunEntrySchema = z.strictObject({
  command: z.string(),
  ranBy: z.literal("service").describe("Run by the service at boot, not governed by agentsh."),
  result: commandResultSchema,
});

const demoResultsSchema = z.array(z.union([demoScenarioResultSchema, serviceRunEntrySchema]));

export const demoRunSchema = z
  .union([
    demoResultsSchema.describe("Most demos: the results, in the table's order (v0 shape)."),
    z
      .strictObject({
        description: z.string(),
        note: z.string(),
        service: healthReportSchema.optional(),
        protections: z.array(protectionStatusSchema).optional(),
        results: demoResultsSchema,
      })
      .describe("Demos that carry an explanation (dlp, status)."),
  ])
  .openapi("DemoRun");

/** `POST /mcp`: JSON-RPC 2.0 as MCP's Streamable HTTP carries it (the SDK checks the rest). */
const jsonRpcId = z.union([z.string(), z.number().int()]);
const jsonRpcMessageSchema = z.looseObject({
  jsonrpc: z.literal("2.0"),
  id: jsonRpcId.optional().describe("Absent in a notification."),
  method: z.string().describe("initialize, tools/list, tools/call, …"),
  params: z.record(z.string(), z.unknown()).optional(),
});
export const jsonRpcRequestSchema = z
  .union([jsonRpcMessageSchema, z.array(jsonRpcMessageSchema)])
  .openapi("McpRequest");
export const jsonRpcErrorSchema = z
  .strictObject({
    jsonrpc: z.literal("2.0"),
    id: jsonRpcId.nullable(),
    error: z.strictObject({
      code: z.number().int(),
      message: z.string(),
      data: z.unknown().optional(),
    }),
  })
  .openapi("JsonRpcError");
const jsonRpcAnswer = z.union([
  z.strictObject({
    jsonrpc: z.literal("2.0"),
    id: jsonRpcId,
    result: z.record(z.string(), z.unknown()),
  }),
  jsonRpcErrorSchema,
]);
export const jsonRpcResponseSchema = z
  .union([jsonRpcAnswer, z.array(jsonRpcAnswer)])
  .openapi("McpResponse");

export const serviceIndexSchema = z
  .strictObject({
    service: z.string(),
    description: z.string(),
    endpoints: z.record(z.string(), z.string()).describe('"METHOD /path": what it does.'),
  })
  .openapi("ServiceIndex");

/**
 * An OpenAPI document is JSON; its own shape is checked by an OpenAPI validator in the tests.
 * Here only the top level, so the route's response is described too.
 */
export const openApiDocumentSchema = z
  .looseObject({
    openapi: z.string(),
    info: z.looseObject({ title: z.string(), version: z.string() }),
    paths: z.record(z.string(), z.unknown()),
  })
  .openapi("OpenApiDocument");

/**
 * True when every value of the interface `T` is accepted by `S` and both name the same fields.
 * Nested objects are compared by the first half only; the strict runtime parse covers the rest.
 */
type Describes<S extends z.ZodType, T> = [T] extends [z.input<S>]
  ? [Exclude<keyof T, keyof z.input<S>> | Exclude<keyof z.input<S>, keyof T>] extends [never]
    ? true
    : false
  : false;

const describesTheInterfaces: [
  Describes<typeof decisionSchema, Decision>,
  Describes<typeof commandResultSchema, CommandResult>,
  Describes<typeof healthReportSchema, HealthReport>,
  Describes<typeof protectionStatusSchema, ProtectionStatus>,
  Describes<typeof auditPageSchema, AuditPage>,
  Describes<typeof auditEntrySchema, AuditPage["entries"][number]>,
  Describes<typeof explanationSchema, Explanation>,
  Describes<typeof serviceRunEntrySchema, ServiceRunEntry>,
  Describes<typeof executeResponseSchema, ExecuteBody>,
  Describes<typeof sessionInfoSchema, SessionInfo>,
] = [true, true, true, true, true, true, true, true, true, true];
void describesTheInterfaces;
