import { describe, expect, it } from "vitest";
import type { CommandResult } from "../../src/command-result.js";
import { APPROVER_KEY, decideApproval, expectAllowed, expectBlocked, http } from "./harness.js";

/**
 * Approvals against the real agentsh: `git push` is an approval-class rule (an enforced deny in
 * agentsh's policy); a person approves through the API with an approver key; the agent resubmits
 * the same command with the approval id and it runs once, in an agentsh session whose policy
 * allows that rule only. The stack runs with APPROVER_KEYS=$E2E_APPROVER_KEY, APPROVAL_TTL_MS=20000.
 */
const AGENT_KEY_2 = process.env.E2E_API_KEY_2 ?? "";
const TTL_MS = 20_000;
const RULE = "approval-git-push";
// Base 36: a run of 13 digits would be redacted as a card number in listings.
const dir = `/workspace/approvals-${Date.now().toString(36)}`;
const push = `cd ${dir}/w && git push -q origin HEAD:main && echo pushed`;

interface Answer {
  status: number;
  body: {
    result: CommandResult;
    approval?: { id: string; status: string; rule: string };
    approvedBy?: { decidedBy: string };
    error?: { code: string };
  };
}

async function run(
  command: string,
  extra: Record<string, string> = {},
  key?: string,
): Promise<Answer> {
  const res = await http("/execute", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(key ? { "X-API-Key": key } : {}) },
    body: JSON.stringify({ command, ...extra }),
  });
  return { status: res.status, body: (await res.json()) as Answer["body"] };
}

/** The commits in the bare repository's main branch (0 when it has none). */
async function pushedCommits(): Promise<number> {
  const answer = await run(
    `git --git-dir ${dir}/remote.git rev-list --count main 2>/dev/null || echo 0`,
  );
  return Number(answer.body.result.stdout.trim());
}

async function blockedPending(command: string): Promise<string> {
  const answer = await run(command);
  expect(answer.status).toBe(200);
  expectBlocked(answer.body.result, RULE, "command");
  expect(answer.body.approval?.status).toBe("pending");
  expect(answer.body.approval?.rule).toBe(RULE);
  return answer.body.approval?.id ?? "";
}

describe("approvals (git push to a local bare repository)", () => {
  it("setup: a bare repository and a clone with one commit", async () => {
    expect(APPROVER_KEY, "E2E_APPROVER_KEY must be set (scripts/test sets it)").not.toBe("");
    const setup = await run(
      `mkdir -p ${dir} && cd ${dir} && git init -q --bare remote.git && git init -q w && cd w && git -c user.email=a@b.c -c user.name=a commit -q --allow-empty -m one && git remote add origin ../remote.git && echo ready`,
    );
    expectAllowed(setup.body.result, "ready\n");
    expect(await pushedCommits()).toBe(0);
  });

  it("git push is blocked pending, approved through the API, then pushes once; a replay is refused", async () => {
    const id = await blockedPending(push);
    expect(await pushedCommits()).toBe(0);

    const listed = await http("/approvals", { headers: { "X-API-Key": APPROVER_KEY } });
    const pending = (await listed.json()) as { approvals: Array<{ id: string; command: string }> };
    expect(pending.approvals.find((a) => a.id === id)?.command).toBe(push);

    // Not yet approved: the resubmission is refused and nothing runs.
    expect((await run(push, { approvalId: id })).body.error?.code).toBe("approval_refused");

    expect((await decideApproval(id, "approve")).status).toBe(200);
    // The approval is for this exact text: another command is refused (and does not use it up).
    const other = await run(`${push} --force`, { approvalId: id });
    expect(other.status).toBe(403);
    expect(other.body.error?.code).toBe("approval_refused");
    // ...and for this key: another agent key cannot use it.
    expect((await run(push, { approvalId: id }, AGENT_KEY_2)).body.error?.code).toBe(
      "approval_refused",
    );

    // Measured: the approved run creates (and ends) an agentsh session with its own policy.
    const plainStarted = performance.now();
    await run(`cd ${dir}/w && git status --short`);
    const plainMs = performance.now() - plainStarted;
    const approvedStarted = performance.now();
    const approved = await run(push, { approvalId: id });
    const approvedMs = performance.now() - approvedStarted;
    console.log(
      `approvals: plain git status ${Math.round(plainMs)} ms; approved git push (fresh session with approved-git-push) ${Math.round(approvedMs)} ms`,
    );
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expectAllowed(approved.body.result, "pushed\n");
    expect(approved.body.approvedBy?.decidedBy).toMatch(/^key-/);
    expect(await pushedCommits()).toBe(1);

    const replay = await run(push, { approvalId: id });
    expect(replay.status).toBe(403);
    expect(replay.body.error?.code).toBe("approval_refused");
  });

  it("obfuscated variants still hit the deny (agentsh judges the nested exec's argv)", async () => {
    for (const variant of [
      `cd ${dir}/w && g=git; $g push -q origin HEAD:main`,
      `cd ${dir}/w && bash -c 'git "p""ush" -q origin HEAD:main'`,
      `cd ${dir}/w && git -c user.name=x push -q origin HEAD:main`,
    ]) {
      await blockedPending(variant);
    }
  });

  it("a second push is denied; an agent key cannot approve", async () => {
    await run(
      `cd ${dir}/w && git -c user.email=a@b.c -c user.name=a commit -q --allow-empty -m two`,
    );
    const id = await blockedPending(push);
    const byAgent = await decideApproval(id, "approve", process.env.E2E_API_KEY ?? "");
    expect(byAgent.status).toBe(403);
    expect(byAgent.body.error?.code).toBe("not_an_approver");
    expect((await decideApproval(id, "deny")).status).toBe(200);
    const after = await run(push, { approvalId: id });
    expect(after.body.error?.code).toBe("approval_refused");
    expect(await pushedCommits()).toBe(1);
  });

  it("the approved session's policy allows that rule and nothing more", async () => {
    await run(
      `cd ${dir}/w && git -c user.email=a@b.c -c user.name=a commit -q --allow-empty -m three`,
    );
    const both = `cd ${dir}/w && git push -q origin HEAD:main && echo pushed; sudo id`;
    const id = await blockedPending(both);
    expect((await decideApproval(id, "approve")).status).toBe(200);
    const ran = await run(both, { approvalId: id });
    expect(ran.status).toBe(200);
    // The push went through; sudo in the same approved command is still agentsh's deny.
    expect(ran.body.result.stdout).toBe("pushed\n");
    expectBlocked(ran.body.result, "deny-privilege-escalation", "command");
    // Commits "two" (whose push was denied) and "three" arrive together.
    expect(await pushedCommits()).toBe(3);
  });

  it("a third expires undecided", { timeout: TTL_MS + 30_000 }, async () => {
    const id = await blockedPending(push);
    await new Promise((resolve) => setTimeout(resolve, TTL_MS + 1_000));
    expect((await decideApproval(id, "approve")).body.error?.code).toBe("approval_not_found");
    expect((await run(push, { approvalId: id })).body.error?.code).toBe("approval_refused");
    expect(await pushedCommits()).toBe(3);
  });
});
