import { describe, expect, it } from "vitest";
import { blockedResult } from "../support/fake-executor.js";
import { buildTestApp, postJson, readJson } from "../support/test-app.js";

const AGENT = "agent-key-0123456789abcdef";
const AGENT_2 = "agent-key-2-0123456789abcdef";
const APPROVER = "approver-key-0123456789abcdef";
const PUSH = "git push origin main";

function setup(ttlMs = 60_000) {
  const built = buildTestApp({
    env: {
      API_KEYS: `${AGENT},${AGENT_2}`,
      APPROVER_KEYS: APPROVER,
      APPROVAL_TTL_MS: String(ttlMs),
    },
  });
  // agentsh blocks every `git push` on the approval-class rule, unless run under its policy.
  built.executor.respond((request) =>
    request.command.includes("git push") && request.agentshPolicy !== "approved-git-push"
      ? blockedResult({ rule: "approval-git-push", target: "/usr/bin/git" })
      : undefined,
  );
  const execute = async (body: Record<string, unknown>, key = AGENT) => {
    const res = await built.app.request("/execute", postJson(body, { "X-API-Key": key }));
    return { status: res.status, body: await readJson(res) };
  };
  const decide = async (id: string, decision: string, key = APPROVER) => {
    const res = await built.app.request(
      `/approvals/${id}`,
      postJson({ decision, reason: "ok" }, { "X-API-Key": key }),
    );
    return { status: res.status, body: await readJson(res) };
  };
  return { ...built, execute, decide };
}

describe("approvals", () => {
  it("a command blocked on an approval-class rule is answered blocked with a pending approval", async () => {
    const { execute, app } = setup();
    const { status, body } = await execute({ command: PUSH });
    expect(status).toBe(200);
    expect(body.result.outcome).toBe("blocked");
    expect(body.result.decision.rule).toBe("approval-git-push");
    expect(body.approval).toMatchObject({ status: "pending", rule: "approval-git-push" });
    expect(body.approval.id).toMatch(/^apr-[0-9a-f]{24}$/);

    const list = await app.request("/approvals", { headers: { "X-API-Key": APPROVER } });
    expect(list.status).toBe(200);
    const listed = (await readJson(list)).approvals;
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({
      id: body.approval.id,
      kind: "command",
      command: PUSH,
      rule: "approval-git-push",
      status: "pending",
      requester: { session: null, requestId: body.requestId },
    });
    expect(listed[0].requester.key).toMatch(/^key-/);
    expect(listed[0].ageMs).toBeGreaterThanOrEqual(0);
  });

  it("other denials carry no approval", async () => {
    const { execute, executor } = setup();
    executor.respond(() => blockedResult());
    expect((await execute({ command: "sudo id" })).body.approval).toBeUndefined();
  });

  it("approved: the same command runs once under the approved policy; replay and other text refused", async () => {
    const { execute, decide, executor } = setup();
    const id = (await execute({ command: PUSH })).body.approval.id;
    // Undecided: refused, nothing run.
    expect((await execute({ command: PUSH, approvalId: id })).body.error.code).toBe(
      "approval_refused",
    );
    expect((await decide(id, "approve")).status).toBe(200);

    const other = await execute({ command: `${PUSH} --force`, approvalId: id });
    expect(other.status).toBe(403);
    expect(other.body.error.code).toBe("approval_refused");
    expect((await execute({ command: PUSH, approvalId: id }, AGENT_2)).body.error.code).toBe(
      "approval_refused",
    );
    const before = executor.commands.length;

    const ran = await execute({ command: PUSH, approvalId: id });
    expect(ran.status).toBe(200);
    expect(ran.body.result.outcome).toBe("ok");
    expect(ran.body.approvedBy).toMatchObject({ id, reason: "ok" });
    expect(executor.commands.length).toBe(before + 1);
    expect(executor.commands.at(-1)?.agentshPolicy).toBe("approved-git-push");

    const replay = await execute({ command: PUSH, approvalId: id });
    expect(replay.status).toBe(403);
    expect(replay.body.error.code).toBe("approval_refused");
    expect(executor.commands.length).toBe(before + 1);
    // Only the approved run had the approved policy.
    expect(executor.commands.filter((c) => c.agentshPolicy).length).toBe(1);
  });

  it("denied and expired approvals cannot be used", async () => {
    const { execute, decide } = setup(1000);
    const denied = (await execute({ command: PUSH })).body.approval.id;
    expect((await decide(denied, "deny")).body.status).toBe("denied");
    expect((await execute({ command: PUSH, approvalId: denied })).body.error.code).toBe(
      "approval_refused",
    );
    const expiring = (await execute({ command: PUSH })).body.approval.id;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const late = await decide(expiring, "approve");
    expect(late.status).toBe(404);
    expect(late.body.error.code).toBe("approval_not_found");
  });

  it("an agent key can neither list nor decide approvals", async () => {
    const { execute, decide, app } = setup();
    const id = (await execute({ command: PUSH })).body.approval.id;
    const byAgent = await decide(id, "approve", AGENT);
    expect(byAgent.status).toBe(403);
    expect(byAgent.body.error.code).toBe("not_an_approver");
    const list = await app.request("/approvals", { headers: { "X-API-Key": AGENT } });
    expect(list.status).toBe(403);
    expect((await readJson(list)).error.code).toBe("not_an_approver");
    expect((await app.request("/approvals")).status).toBe(401);
    expect((await decide(id, "approve", "not-a-key-0123456789abcdef")).status).toBe(401);
    // Still pending: the agent's attempt changed nothing.
    expect((await execute({ command: PUSH, approvalId: id })).body.error.code).toBe(
      "approval_refused",
    );
  });

  it("the trail has who asked, who decided, when and why, and the approved run", async () => {
    const { execute, decide, app } = setup();
    const blocked = (await execute({ command: PUSH })).body;
    await decide(blocked.approval.id, "approve");
    await execute({ command: PUSH, approvalId: blocked.approval.id });
    // The trail is written without holding the answer back: wait (with a deadline) for it.
    // biome-ignore lint/suspicious/noExplicitAny: entries are asserted field by field
    let entries: any[] = [];
    for (const deadline = Date.now() + 5_000; Date.now() < deadline; ) {
      const res = await app.request("/audit?limit=20", { headers: { "X-API-Key": AGENT } });
      entries = (await readJson(res)).entries;
      if (entries.some((e) => e.outcome === "approval_used")) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const byOutcome = (outcome: string) => entries.find((e) => e.outcome === outcome);
    expect(byOutcome("blocked")).toMatchObject({
      rule: "approval-git-push",
      requestId: blocked.requestId,
    });
    const asked = byOutcome("approval_requested");
    expect(asked).toMatchObject({
      command: PUSH,
      rule: "approval-git-push",
      requestId: blocked.requestId,
    });
    expect(asked.caller).toMatch(/^key-/);
    const approved = byOutcome("approval_approved");
    expect(approved.target).toBe(`${blocked.approval.id} reason: ok`);
    expect(approved.caller).toMatch(/^key-/);
    expect(approved.caller).not.toBe(asked.caller);
    expect(approved.time).toBeTruthy();
    expect(byOutcome("approval_used")?.caller).toBe(asked.caller);
    expect(byOutcome("ok")?.command).toBe(PUSH);
  });

  it("without APPROVER_KEYS nobody can approve", async () => {
    const { app } = buildTestApp({ env: { API_KEY: AGENT } });
    const res = await app.request("/approvals", { headers: { "X-API-Key": AGENT } });
    expect(res.status).toBe(403);
    expect((await readJson(res)).error.code).toBe("api_key_not_configured");
  });
});

describe("the caller knows", () => {
  it("a streamed /execute emits approval_required with the id before the result", async () => {
    const { app } = setup();
    const res = await app.request(
      "/execute",
      postJson({ command: PUSH }, { "X-API-Key": AGENT, Accept: "text/event-stream" }),
    );
    const text = await res.text();
    const events = [...text.matchAll(/^event: (\S+)\ndata: (.*)$/gm)].map(([, e, d]) => [e, d]);
    const names = events.map(([e]) => e);
    expect(names.indexOf("approval_required")).toBeGreaterThan(-1);
    expect(names.indexOf("approval_required")).toBe(names.indexOf("result") - 1);
    const data = JSON.parse(events.find(([e]) => e === "approval_required")?.[1] ?? "{}");
    expect(data).toMatchObject({ status: "pending", rule: "approval-git-push" });
    expect(data.id).toMatch(/^apr-/);
  });
});

describe("an approval outlives a refusal that ran nothing", () => {
  it("busy: the approval is given back and runs on the next try", async () => {
    const { execute, decide, executor } = setup();
    const id = (await execute({ command: PUSH })).body.approval.id;
    await decide(id, "approve");
    let busy = true;
    executor.respond(() =>
      busy ? { kind: "not_run", reason: "busy", detail: "full" } : undefined,
    );
    expect((await execute({ command: PUSH, approvalId: id })).status).toBe(503);
    busy = false;
    const ran = await execute({ command: PUSH, approvalId: id });
    expect(ran.status).toBe(200);
    expect(ran.body.result.outcome).toBe("ok");
    expect((await execute({ command: PUSH, approvalId: id })).status).toBe(403);
  });
});

describe("network approvals (agentsh's held connections, its API faked)", () => {
  it("are listed with kind network and target, and a decision is passed on to agentsh", async () => {
    const now = Date.now();
    const held = [
      {
        id: "approval-1",
        session_id: "gexec-1",
        kind: "network",
        target: "example.com:443",
        rule: "network-approval-unlisted",
        created_at: new Date(now),
        expires_at: new Date(now + 300_000),
      },
    ];
    const answers: Array<[string, boolean]> = [];
    const { app } = buildTestApp({
      env: { API_KEYS: AGENT, APPROVER_KEYS: APPROVER },
      agentshApprovals: {
        pending: async () => held,
        answer: async (id, approve) => {
          answers.push([id, approve]);
          return true;
        },
      },
    });
    const list = await app.request("/approvals", { headers: { "X-API-Key": APPROVER } });
    expect(list.status).toBe(200);
    expect((await readJson(list)).approvals).toMatchObject([
      {
        id: "approval-1",
        kind: "network",
        target: "example.com:443",
        rule: "network-approval-unlisted",
        status: "pending",
      },
    ]);
    const byAgent = await app.request(
      "/approvals/approval-1",
      postJson({ decision: "approve" }, { "X-API-Key": AGENT }),
    );
    expect(byAgent.status).toBe(403);
    expect(answers).toEqual([]);
    const decided = await app.request(
      "/approvals/approval-1",
      postJson({ decision: "deny", reason: "not needed" }, { "X-API-Key": APPROVER }),
    );
    expect(decided.status).toBe(200);
    expect(await readJson(decided)).toMatchObject({ status: "denied", reason: "not needed" });
    expect(answers).toEqual([["approval-1", false]]);
  });
});
