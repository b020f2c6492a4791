import { describe, expect, it } from "vitest";
import { type Approval, ApprovalStore } from "../../src/approvals/approvals.js";
import {
  type AgentshApprovalsApi,
  combinedApprovalsApi,
  createAgentshApprovalsApi,
  type HeldRequest,
  NetworkApprovals,
} from "../../src/approvals/network-approvals.js";
import type { Logger } from "../../src/logger.js";

const NOW = Date.now();

/** agentsh's approvals API, as a list the test edits; answers remove what they answer. */
class FakeAgentsh implements AgentshApprovalsApi {
  held: HeldRequest[] = [];
  answers: Array<{ id: string; approve: boolean; reason: string }> = [];
  failing = false;
  /** Runs while an answer is on its way (a read racing the decision). */
  duringAnswer: (() => Promise<void>) | null = null;

  hold(id: string, sessionId: string, target = "example.com:443"): void {
    this.held.push({
      id,
      session_id: sessionId,
      kind: "network",
      target,
      rule: "network-approval-unlisted",
      created_at: new Date(NOW),
      expires_at: new Date(NOW + 300_000),
    });
  }

  async pending(): Promise<HeldRequest[]> {
    if (this.failing) throw new Error("connection refused");
    return [...this.held];
  }

  async answer(id: string, approve: boolean, reason: string): Promise<boolean> {
    const at = this.held.findIndex((h) => h.id === id);
    if (at === -1) return false;
    this.held.splice(at, 1);
    this.answers.push({ id, approve, reason });
    await this.duringAnswer?.();
    return true;
  }
}

function setup() {
  const agentsh = new FakeAgentsh();
  const changes: string[] = [];
  const store = new ApprovalStore({
    ttlMs: 60_000,
    onChange: (a, change) => changes.push(`${a.id}:${change}`),
  });
  const warnings: string[] = [];
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: (message) => warnings.push(message),
    error: () => {},
  };
  const bridge = new NetworkApprovals({ api: agentsh, store, logger, pollMs: 60_000 });
  const requester = { owner: "key-a", session: "s-1", requestId: "req-1" };
  return { agentsh, store, bridge, changes, warnings, requester };
}

describe("network approvals: agentsh's held connections as the service's approvals", () => {
  it("adopts a held connection of a running command under agentsh's id, with its requester, and tells it once", async () => {
    const { agentsh, store, bridge, requester } = setup();
    const told: Approval[] = [];
    const end = bridge.watch("slot-1", {
      command: "curl https://example.com/",
      requester,
      onRequested: (a) => told.push(a),
    });
    agentsh.hold("approval-1", "slot-1");
    await bridge.refresh();
    await bridge.refresh();
    expect(told.map((a) => a.id)).toEqual(["approval-1"]);
    expect(store.pending()).toMatchObject([
      {
        id: "approval-1",
        kind: "network",
        command: "curl https://example.com/",
        target: "example.com:443",
        rule: "network-approval-unlisted",
        requester,
        status: "pending",
        expiresAt: new Date(NOW + 300_000),
      },
    ]);
    end();
    bridge.stop();
  });

  it("passes an approval on to agentsh, then records it (approved, decided by the approver)", async () => {
    const { agentsh, store, bridge, requester } = setup();
    bridge.watch("slot-1", { command: "curl https://example.com/", requester });
    agentsh.hold("approval-1", "slot-1");
    await bridge.refresh();
    const decided = await bridge.decide("approval-1", "approve", "key-approver", "looks fine");
    expect(agentsh.answers).toEqual([{ id: "approval-1", approve: true, reason: "looks fine" }]);
    expect(decided).toMatchObject({ status: "approved", decidedBy: "key-approver" });
    expect(store.pending()).toEqual([]);
    bridge.stop();
  });

  it("a denial reaches agentsh as a denial", async () => {
    const { agentsh, bridge, requester } = setup();
    bridge.watch("slot-1", { command: "curl https://example.com/", requester });
    agentsh.hold("approval-1", "slot-1");
    await bridge.refresh();
    const decided = await bridge.decide("approval-1", "deny", "key-approver", null);
    expect(agentsh.answers).toEqual([
      { id: "approval-1", approve: false, reason: "deny by key-approver" },
    ]);
    expect(decided?.status).toBe("denied");
    bridge.stop();
  });

  it("one agentsh no longer holds cannot be decided: it is expired, and the answer says not found", async () => {
    const { agentsh, store, bridge, requester } = setup();
    bridge.watch("slot-1", { command: "curl https://example.com/", requester });
    agentsh.hold("approval-1", "slot-1");
    await bridge.refresh();
    agentsh.held = [];
    expect(await bridge.decide("approval-1", "approve", "key-approver", null)).toBeUndefined();
    expect(store.get("approval-1")?.status).toBe("expired");
    bridge.stop();
  });

  it("one agentsh lets go (its timeout, or the command ended) is marked expired on the next read", async () => {
    const { agentsh, store, bridge, changes, requester } = setup();
    const end = bridge.watch("slot-1", { command: "curl https://example.com/", requester });
    agentsh.hold("approval-1", "slot-1");
    await bridge.refresh();
    agentsh.held = [];
    await end();
    await bridge.refresh();
    expect(store.get("approval-1")?.status).toBe("expired");
    expect(changes).toEqual(["approval-1:requested", "approval-1:expired"]);
  });

  it("its command ended while held: refused at agentsh (which would hold it for minutes) and expired", async () => {
    const { agentsh, store, bridge, requester } = setup();
    const end = bridge.watch("slot-1", { command: "curl https://example.com/", requester });
    agentsh.hold("approval-1", "slot-1");
    await bridge.refresh();
    // Held before any read saw it (a command shorter than the poll), and another session's.
    agentsh.hold("approval-2", "slot-1");
    agentsh.hold("approval-3", "slot-2");
    await end();
    expect(agentsh.answers).toEqual([
      { id: "approval-1", approve: false, reason: "the command ended before a decision" },
      { id: "approval-2", approve: false, reason: "the command ended before a decision" },
    ]);
    expect(store.get("approval-1")?.status).toBe("expired");
    expect(agentsh.held.map((h) => h.id)).toEqual(["approval-3"]);
  });

  it("a read while a decision is on its way to agentsh does not expire it", async () => {
    const { agentsh, bridge, requester } = setup();
    bridge.watch("slot-1", { command: "curl https://example.com/", requester });
    agentsh.hold("approval-1", "slot-1");
    await bridge.refresh();
    agentsh.duringAnswer = () => bridge.refresh();
    const decided = await bridge.decide("approval-1", "approve", "key-approver", null);
    expect(decided?.status).toBe("approved");
    bridge.stop();
  });

  it("a held connection of no running command is still listed, attributed to agentsh's session", async () => {
    const { agentsh, store, bridge } = setup();
    agentsh.hold("approval-9", "slot-4");
    await bridge.refresh();
    expect(store.get("approval-9")?.requester).toEqual({
      owner: "agentsh session slot-4",
      session: null,
      requestId: null,
    });
  });

  it("agentsh not answering: warned once, nothing thrown, pending ones kept", async () => {
    const { agentsh, store, bridge, warnings, requester } = setup();
    bridge.watch("slot-1", { command: "curl https://example.com/", requester });
    agentsh.hold("approval-1", "slot-1");
    await bridge.refresh();
    agentsh.failing = true;
    await bridge.refresh();
    await bridge.refresh();
    expect(warnings).toHaveLength(1);
    expect(store.get("approval-1")?.status).toBe("pending");
    bridge.stop();
  });

  it("a network approval cannot be used to resubmit a command", async () => {
    const { agentsh, store, bridge, requester } = setup();
    bridge.watch("slot-1", { command: "curl https://example.com/", requester });
    agentsh.hold("approval-1", "slot-1");
    await bridge.refresh();
    await bridge.decide("approval-1", "approve", "key-approver", null);
    expect(() =>
      store.consume("approval-1", "curl https://example.com/", {
        owner: "key-a",
        session: "s-1",
      }),
    ).toThrow(/network approval/);
    bridge.stop();
  });
});

describe("agentsh's approvals API client", () => {
  it("reads agentsh 0.16.9's list and answers with the approver key", async () => {
    const calls: Array<{ url: string; init: RequestInit | undefined }> = [];
    const fakeFetch = (async (url: string | URL | Request, init?: RequestInit) => {
      calls.push({ url: String(url), init });
      if (String(url).endsWith("/api/v1/approvals")) {
        return Response.json([
          {
            id: "approval-1",
            created_at: "2026-12-05T10:00:00Z",
            expires_at: "2026-12-05T10:05:00Z",
            session_id: "slot-1",
            command_id: "cmd-1",
            kind: "network",
            target: "example.com:443",
            rule: "network-approval-unlisted",
            message: "asked",
          },
        ]);
      }
      if (String(url).endsWith("/approval-gone")) return new Response("not found", { status: 404 });
      return Response.json({ ok: true });
    }) as typeof fetch;
    const api = createAgentshApprovalsApi({
      serverUrl: "http://127.0.0.1:18080",
      approverKey: "approver-key-0123456789",
      fetch: fakeFetch,
    });
    expect(await api.pending()).toMatchObject([
      { id: "approval-1", session_id: "slot-1", kind: "network", target: "example.com:443" },
    ]);
    expect(await api.answer("approval-1", true, "ok")).toBe(true);
    expect(await api.answer("approval-gone", false, "no")).toBe(false);
    expect(calls[1]?.init?.body).toBe(JSON.stringify({ decision: "approve", reason: "ok" }));
    for (const call of calls) {
      expect(new Headers(call.init?.headers).get("X-API-Key")).toBe("approver-key-0123456789");
    }
  });
});

describe("network approvals on several agentsh servers (a tenant policy's own)", () => {
  it("lists what every server holds and answers the one that holds it", async () => {
    const main = new FakeAgentsh();
    const strict = new FakeAgentsh();
    main.hold("approval-1", "gexec-1");
    strict.hold("approval-2", "gexec-2-beta");
    const api = combinedApprovalsApi([main, strict]);
    expect((await api.pending()).map((h) => h.id)).toEqual(["approval-1", "approval-2"]);
    expect(await api.answer("approval-2", true, "ok")).toBe(true);
    expect(strict.answers).toEqual([{ id: "approval-2", approve: true, reason: "ok" }]);
    expect(main.answers).toEqual([]);
    expect(await api.answer("approval-9", false, "gone")).toBe(false);
  });

  it("a server that does not answer fails the read (nothing is taken for gone meanwhile)", async () => {
    const main = new FakeAgentsh();
    const strict = new FakeAgentsh();
    strict.failing = true;
    await expect(combinedApprovalsApi([main, strict]).pending()).rejects.toThrow();
  });
});
