import { describe, expect, it } from "vitest";
import type { AuditEntry, AuditPage } from "../../src/audit/audit-log.js";
import { BASE_URL, type ExecuteResponse, expectBlocked, http } from "./harness.js";

// The audit API exists only behind an API key (without one it answers 403, which the request
// tests in test/routes/audit.test.ts prove); scripts/test always boots the stack with one.

async function executeWithId(command: string) {
  const res = await http("/execute", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ command }),
  });
  const body = (await res.json()) as ExecuteResponse;
  expect(res.status, JSON.stringify(body)).toBe(200);
  expect(body.requestId).toBe(res.headers.get("x-request-id"));
  return body;
}

describe("GET /audit against the real agentsh", () => {
  it("is behind the stack's API key: none is 401 api_key_missing, a wrong one 401 api_key_invalid", async () => {
    // Without a configured key it would answer 403 api_key_not_configured.
    const none = await fetch(`${BASE_URL}/audit`, { signal: AbortSignal.timeout(10_000) });
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe("api_key_missing");
    const wrong = await http("/audit", { headers: { "X-API-Key": "not-the-key" } });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe(
      "api_key_invalid",
    );
  });

  it("finds a blocked command by the requestId of its /execute response, with the rule", async () => {
    const body = await executeWithId("sudo id");
    expectBlocked(body.result, "deny-privilege-escalation");

    const res = await http(`/audit?requestId=${encodeURIComponent(body.requestId)}`);
    const page = (await res.json()) as AuditPage;
    expect(res.status, JSON.stringify(page)).toBe(200);
    expect(page.entries).toHaveLength(1);
    expect(page.entries[0]).toMatchObject({
      requestId: body.requestId,
      command: "sudo id",
      outcome: "blocked",
      rule: "deny-privilege-escalation",
      layer: "agentsh",
      sessionId: expect.stringMatching(/\S/),
      commandId: expect.stringMatching(/\S/),
    });
    const filtered = await http("/audit?outcome=blocked&rule=deny-privilege-escalation");
    const blocked = (await filtered.json()) as AuditPage;
    expect(blocked.entries.map((e: AuditEntry) => e.requestId)).toContain(body.requestId);
  });

  it("records the command redacted with the bundle's DLP patterns", async () => {
    const secret = `sk-proj-${"Q".repeat(32)}`;
    const body = await executeWithId(`echo ${secret} >/dev/null`);
    const text = await (await http(`/audit?requestId=${body.requestId}`)).text();
    expect(text).not.toContain(secret);
    const entries = (JSON.parse(text) as AuditPage).entries;
    expect(entries[0]?.command).toMatch(/^echo \[REDACTED:[a-z_]+\] >\/dev\/null$/);
  });
});
