import { describe, expect, it } from "vitest";
import type { CommandResult } from "../../src/command-result.js";
import { skipWhen } from "../support/skip-when.js";
import {
  APPROVER_KEY,
  canaryConnections,
  decideApproval,
  executeWatching,
  expectAllowed,
  expectBlocked,
  expectNetworkBlocked,
  http,
  type StreamedEvent,
  streamExecute,
  waitFor,
} from "./harness.js";

/**
 * Network approvals against the real agentsh (scripts/test's e2e-network-approvals stages, host
 * and image): the stack runs with NETWORK_APPROVALS=true and APPROVER_KEYS=$E2E_APPROVER_KEY, so
 * agentsh's default policy is policies/network-approvals.yaml and HTTPS to a destination no rule
 * names is held by agentsh's proxy until a person decides. The stand-in is example.com
 * (test/net/names.tsv: 203.0.113.10 inside the test network namespace, where a canary logs every
 * connection): "held" means no connection reached it until the approval, "denied" none at all.
 */
const AGENT_KEY = process.env.E2E_API_KEY ?? "";
const STAND_IN = "203.0.113.10";
const RULE = "network-approval-unlisted";
const only = skipWhen("no-network-approvals", { timeout: 90_000 });
/** Stages that also have the suite's tenants file: beta (API_KEYS) is a tenant on strict. */
const withTenants = skipWhen(["no-network-approvals", "no-tenants-file"], { timeout: 90_000 });
const BETA_KEY = process.env.E2E_API_KEY_2 ?? "";

interface Note {
  id: string;
  kind: string;
  status: string;
  rule: string;
  target?: string;
  expiresAt: string;
}

interface Listed extends Note {
  command: string;
  requester: { key: string; session: string | null; requestId: string | null };
  ageMs: number;
}

/** A command that reaches the stand-in over HTTPS and prints the HTTP status. */
const fetchStandIn = (marker: string) =>
  `curl -sk -o /dev/null -w '%{http_code}' --max-time 150 'https://example.com/${marker}'`;

async function pendingApprovals(key = APPROVER_KEY): Promise<Listed[]> {
  const res = await http("/approvals", { headers: { "X-API-Key": key } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { approvals: Listed[] }).approvals;
}

/**
 * Starts a streamed command and resolves once agentsh holds its connection: the stream's
 * `approval_required` event (kind network), and the stream's other events as they come.
 */
async function startHeld(command: string, timeoutMs = 120_000, apiKey?: string) {
  const since = Date.now();
  let noted: (note: Note) => void = () => {};
  const held = new Promise<Note>((resolve) => {
    noted = resolve;
  });
  let requestId = "";
  let heldAtMs = 0;
  const stream = streamExecute(
    { command, timeoutMs },
    {
      ...(apiKey ? { apiKey } : {}),
      deadlineMs: timeoutMs + 30_000,
      onEvent: (event: StreamedEvent) => {
        if (event.event === "started") requestId = (event.data as { requestId: string }).requestId;
        if (event.event === "approval_required") noted(event.data as Note);
        return undefined;
      },
    },
  );
  const note = await Promise.race([
    held.then((n) => {
      heldAtMs = Date.now() - since;
      return n;
    }),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error("no approval_required event within 20 s")), 20_000),
    ),
  ]);
  const finished = stream.then(({ events }) => {
    const last = events.at(-1);
    if (last?.event !== "result") throw new Error(`stream ended with ${JSON.stringify(last)}`);
    return (last.data as { result: CommandResult }).result;
  });
  let done = false;
  void finished.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  return { note, since, heldAtMs, requestId: () => requestId, finished, isDone: () => done };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("network approvals: HTTPS to an unlisted destination waits for a person", () => {
  it(
    "is held (nothing reaches the destination), listed for approvers, approved, and then completes",
    only,
    async () => {
      expect(APPROVER_KEY, "E2E_APPROVER_KEY must be set (scripts/test sets it)").not.toBe("");
      const command = fetchStandIn("approve");
      const held = await startHeld(command);
      expect(held.note).toMatchObject({
        kind: "network",
        status: "pending",
        rule: RULE,
        target: "example.com:443",
      });

      const listed = (await pendingApprovals()).find((a) => a.id === held.note.id);
      expect(listed).toMatchObject({
        kind: "network",
        command,
        rule: RULE,
        target: "example.com:443",
        requester: { requestId: held.requestId(), session: null },
      });

      // Held for real: the command is still waiting and the destination has seen nothing.
      await sleep(1_500);
      expect(held.isDone()).toBe(false);
      expect(canaryConnections(STAND_IN, held.since)).toHaveLength(0);

      // An agent's key cannot decide it.
      const byAgent = await decideApproval(held.note.id, "approve", AGENT_KEY);
      expect(byAgent.status).toBe(403);
      expect(byAgent.body.error?.code).toBe("not_an_approver");

      const decidedAt = Date.now();
      const approved = await decideApproval(held.note.id, "approve");
      expect(approved.status, JSON.stringify(approved.body)).toBe(200);
      expect(approved.body.status).toBe("approved");
      const result = await held.finished;
      expectAllowed(result, "200");
      console.log(
        `[measured] network approval: approval_required ${held.heldAtMs} ms after the command started; result ${Date.now() - decidedAt} ms after the decision`,
      );
      expect(canaryConnections(STAND_IN, held.since).length).toBeGreaterThan(0);
      // Decided once: a second decision finds nothing pending.
      expect((await decideApproval(held.note.id, "deny")).status).toBe(404);
    },
  );

  it(
    "denied: the command is refused by the rule, and the destination saw nothing",
    only,
    async () => {
      const held = await startHeld(fetchStandIn("deny"));
      const denied = await decideApproval(held.note.id, "deny");
      expect(denied.status).toBe(200);
      expect(denied.body.status).toBe("denied");
      const result = await held.finished;
      expectBlocked(result, RULE, "network");
      await sleep(100);
      expect(canaryConnections(STAND_IN, held.since)).toHaveLength(0);
    },
  );

  it(
    "a decision after 35 s still lets it through: no link of the chain gives up at agentsh's 30-s client default",
    only,
    async () => {
      const held = await startHeld(fetchStandIn("slow-decision"));
      await sleep(35_000);
      expect(held.isDone()).toBe(false);
      expect(canaryConnections(STAND_IN, held.since)).toHaveLength(0);
      expect((await decideApproval(held.note.id, "approve")).status).toBe(200);
      expectAllowed(await held.finished, "200");
    },
  );

  it(
    "nobody decides within the command's timeout: it ends, and the approval can no longer be decided",
    only,
    async () => {
      const held = await startHeld(fetchStandIn("timeout"), 5_000);
      const result = await held.finished;
      expect(result.outcome).not.toBe("ok");
      expect(canaryConnections(STAND_IN, held.since)).toHaveLength(0);
      await waitFor("the held approval to go", 10_000, async () =>
        (await pendingApprovals()).every((a) => a.id !== held.note.id),
      );
      const late = await decideApproval(held.note.id, "approve");
      expect(late.status).toBe(404);
      expect(late.body.error?.code).toBe("approval_not_found");
    },
  );

  it(
    "what a rule names is not asked: an allow-listed registry is reached, evil.com is denied outright",
    only,
    async () => {
      const registry = await executeWatching(
        "curl -sk -o /dev/null -w '%{http_code}' --max-time 10 https://registry.npmjs.org/express",
        [STAND_IN],
      );
      expectAllowed(registry.result, "200");
      await expectNetworkBlocked(
        "curl -sk --max-time 10 https://evil.com/",
        "deny-malicious-domains",
        ["203.0.113.66"],
      );
      expect(await pendingApprovals()).toEqual([]);
    },
  );

  it(
    "a tenant on its own policy's agentsh server (beta, strict): its server holds unlisted HTTPS too, and strict's own rule still denies without asking",
    withTenants,
    async () => {
      expect(BETA_KEY, "E2E_API_KEY_2 must be set (scripts/test sets it)").not.toBe("");
      const command = `curl -sk -o /dev/null -w '%{http_code}' --max-time 150 'https://unlisted.example/beta'`;
      const held = await startHeld(command, 120_000, BETA_KEY);
      expect(held.note).toMatchObject({
        kind: "network",
        rule: RULE,
        target: "unlisted.example:443",
      });
      const listed = (await pendingApprovals()).find((a) => a.id === held.note.id);
      expect(listed?.requester.key).toBe("tenant-beta");
      await sleep(1_000);
      expect(held.isDone()).toBe(false);
      expect(canaryConnections(STAND_IN, held.since)).toHaveLength(0);
      expect((await decideApproval(held.note.id, "approve")).status).toBe(200);
      expectAllowed(await held.finished, "200");
      expect(canaryConnections(STAND_IN, held.since).length).toBeGreaterThan(0);

      // What strict names is decided by its rule, with no one asked.
      const since = Date.now();
      const denied = await streamExecute(
        { command: "curl -sk -o /dev/null --max-time 10 https://example.com/" },
        { apiKey: BETA_KEY },
      );
      expect(denied.events.some((e) => e.event === "approval_required")).toBe(false);
      const last = denied.events.at(-1);
      expect(last?.event).toBe("result");
      const { result } = (last?.data ?? {}) as { result: CommandResult };
      expectBlocked(result, "strict-deny-example-com", "network");
      expect(canaryConnections(STAND_IN, since)).toHaveLength(0);
    },
  );
});
