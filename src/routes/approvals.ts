import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env.js";
import type { Approval, ApprovalStore } from "../approvals/approvals.js";
import type { NetworkApprovals } from "../approvals/network-approvals.js";
import type { Redactor } from "../bundle/redactor.js";
import { ApiError } from "../http/errors.js";
import { strictJsonBody } from "../http/json-body.js";
import {
  CONFIGURED_API_KEY_ERRORS,
  CONFIGURED_API_KEY_SECURITY,
  errorAnswers,
  JSON_BODY_ERRORS,
  jsonAnswer,
} from "../openapi/route-docs.js";

const approvalSchema = z
  .strictObject({
    id: z.string(),
    kind: z
      .enum(["command", "network"])
      .describe(
        "command: a blocked command, run once when resubmitted with the id; network: a running command's connection agentsh's proxy holds until the decision.",
      ),
    command: z
      .string()
      .describe("The exact command text (DLP-redacted here); network: the waiting command."),
    rule: z.string().describe("The rule agentsh blocked (command) or holds (network) it on."),
    target: z
      .string()
      .nullable()
      .describe("Network: the destination (host:port) the command waits to reach."),
    requester: z.strictObject({
      key: z.string().describe("The agent's API key fingerprint (key-…)."),
      session: z.string().nullable().describe("The caller's session (s-…), if any."),
      requestId: z.string().nullable(),
    }),
    status: z.enum(["pending", "approved", "denied", "expired", "used"]),
    createdAt: z.string(),
    expiresAt: z.string(),
    ageMs: z.number().int(),
    decidedBy: z.string().nullable(),
    reason: z.string().nullable(),
  })
  .openapi("Approval");

const decisionSchema = z
  .strictObject({
    decision: z.enum(["approve", "deny"], { error: 'decision must be "approve" or "deny"' }),
    reason: z.string().max(500).optional().describe("Why; kept in the audit trail."),
  })
  .openapi("ApprovalDecision");

const APPROVER_ERRORS = [...CONFIGURED_API_KEY_ERRORS, "not_an_approver"] as const;

/**
 * `GET /approvals` (pending approvals) and `POST /approvals/:id {decision, reason?}`: for
 * approver keys only (src/approvals/approvers.ts). The decision is not a run: the agent resubmits
 * its command with the approval id and it runs once, enforced by agentsh.
 */
export function createApprovalRoutes(options: {
  approvals: ApprovalStore;
  guard: MiddlewareHandler<AppEnv>;
  redact: Redactor;
  /** Network approvals: agentsh's held requests, read before listing, told of decisions. */
  network?: Pick<NetworkApprovals, "refresh" | "decide">;
  now?: () => number;
}) {
  const now = options.now ?? Date.now;
  const decideOne = (
    id: string,
    decision: "approve" | "deny",
    approver: string,
    reason: string | null,
  ): Promise<Approval | undefined> | Approval | undefined =>
    options.network
      ? options.network.decide(id, decision, approver, reason)
      : options.approvals.resolve(id, decision, approver, reason);
  const view = (a: Approval) => ({
    id: a.id,
    kind: a.kind,
    command: options.redact(a.command).text,
    rule: a.rule,
    target: a.target,
    requester: {
      key: a.requester.owner,
      session: a.requester.session,
      requestId: a.requester.requestId,
    },
    status: a.status,
    createdAt: a.createdAt.toISOString(),
    expiresAt: a.expiresAt.toISOString(),
    ageMs: Math.max(0, now() - a.createdAt.getTime()),
    decidedBy: a.decidedBy,
    reason: a.reason,
  });
  const list = createRoute({
    method: "get",
    path: "/",
    operationId: "listApprovals",
    tags: ["approvals"],
    summary: "commands and connections waiting for a person's approval (approver key)",
    security: CONFIGURED_API_KEY_SECURITY,
    middleware: [options.guard],
    responses: {
      200: jsonAnswer(
        "Pending approvals, oldest first.",
        z.strictObject({ approvals: z.array(approvalSchema) }),
      ),
      ...errorAnswers(APPROVER_ERRORS),
    },
  });
  const decide = createRoute({
    method: "post",
    path: "/{id}",
    operationId: "decideApproval",
    tags: ["approvals"],
    summary: 'approve or deny one: {"decision": "approve"|"deny", "reason"?} (approver key)',
    security: CONFIGURED_API_KEY_SECURITY,
    middleware: [options.guard, strictJsonBody],
    request: {
      params: z.object({ id: z.string().max(100) }),
      body: { required: true, content: { "application/json": { schema: decisionSchema } } },
    },
    responses: {
      200: jsonAnswer("The decision is recorded.", approvalSchema),
      ...errorAnswers(APPROVER_ERRORS, JSON_BODY_ERRORS, ["approval_not_found"]),
    },
  });
  return new OpenAPIHono<AppEnv>()
    .openapi(list, async (c) => {
      await options.network?.refresh();
      return c.json({ approvals: options.approvals.pending().map(view) }, 200);
    })
    .openapi(
      decide,
      async (c) => {
        const { id } = c.req.valid("param");
        const { decision, reason } = c.req.valid("json");
        const decided = await decideOne(id, decision, c.get("owner"), reason ?? null);
        if (!decided) {
          throw new ApiError({
            code: "approval_not_found",
            message: `There is no pending approval ${id.slice(0, 100)} (unknown, expired or already decided).`,
            hint: "GET /approvals lists the pending ones.",
          });
        }
        return c.json(view(decided), 200);
      },
      (result): undefined => {
        if (!result.success) {
          throw new ApiError({
            code: "validation_failed",
            message: result.error.issues.map((issue) => issue.message).join("; "),
            hint: 'Send {"decision": "approve"} or {"decision": "deny", "reason": "..."}.',
          });
        }
      },
    );
}
