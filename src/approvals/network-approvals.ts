import { z } from "zod";
import type { Logger } from "../logger.js";
import type { Approval, ApprovalStore, Requester } from "./approvals.js";

/**
 * Network approvals (NETWORK_APPROVALS=true). agentsh's proxy judges a connection with the
 * server's default policy, policies/network-approvals.yaml; its rule `network-approval-unlisted`
 * decides `approve`, and the proxy holds the connection (CONNECT) until someone answers through
 * agentsh's approvals API (config.yaml `approvals: {enabled, mode: api, timeout}`), which only a
 * key of role approver may use. The service holds that key (scripts/boot writes it; commands
 * never see it) and bridges: while a command runs, agentsh's pending approvals are read every
 * `pollMs`, each is adopted into the service's ApprovalStore under agentsh's id with the waiting
 * command's requester (agentsh names the session; the running command is known by it), and a
 * person's decision on `POST /approvals/:id` is passed on to agentsh, which lets the connection
 * through or refuses it. One that agentsh lets go without a decision (its timeout, or the command
 * ended) is marked expired.
 */

/** One entry of agentsh 0.16.9's `GET /api/v1/approvals` (internal/approvals `Request`). */
const heldSchema = z.object({
  id: z.string(),
  session_id: z.string().default(""),
  kind: z.string().default(""),
  target: z.string().default(""),
  rule: z.string().default(""),
  created_at: z.coerce.date(),
  expires_at: z.coerce.date(),
});

export type HeldRequest = z.infer<typeof heldSchema>;

/** agentsh's approvals API, used with the approver key. */
export interface AgentshApprovalsApi {
  /** The requests agentsh is holding. */
  pending(): Promise<HeldRequest[]>;
  /** Answers one; false when agentsh no longer holds it (decided, timed out, command ended). */
  answer(id: string, approve: boolean, reason: string): Promise<boolean>;
}

export function createAgentshApprovalsApi(options: {
  serverUrl: string;
  approverKey: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}): AgentshApprovalsApi {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 2_000;
  const headers = { "X-API-Key": options.approverKey };
  return {
    async pending() {
      const response = await doFetch(`${options.serverUrl}/api/v1/approvals`, {
        headers,
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!response.ok) {
        throw new Error(`agentsh's approvals API answered HTTP ${response.status}`);
      }
      return (
        z
          .array(heldSchema)
          .nullable()
          .parse(await response.json()) ?? []
      );
    },
    async answer(id, approve, reason) {
      const response = await doFetch(
        `${options.serverUrl}/api/v1/approvals/${encodeURIComponent(id)}`,
        {
          method: "POST",
          headers: { ...headers, "Content-Type": "application/json" },
          body: JSON.stringify({ decision: approve ? "approve" : "deny", reason }),
          signal: AbortSignal.timeout(timeoutMs),
        },
      );
      if (response.status === 404) return false;
      if (!response.ok) {
        throw new Error(`agentsh's approvals API answered HTTP ${response.status}`);
      }
      return true;
    },
  };
}

/** A command running in an agentsh session: who asked, and who to tell of a held connection. */
export interface WaitingCommand {
  command: string;
  requester: Requester;
  onRequested?: (approval: Approval) => void;
}

/** agentsh's approval kind of a connection its proxy holds (CONNECT and plain HTTP). */
const NETWORK_KIND = "network";

export class NetworkApprovals {
  private readonly running = new Map<string, WaitingCommand>();
  /** Decisions on their way to agentsh: not lapsed by a read that no longer lists them. */
  private readonly deciding = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private failing = false;

  constructor(
    private readonly options: {
      api: AgentshApprovalsApi;
      store: ApprovalStore;
      logger: Logger;
      /** How often agentsh is asked while commands run (ms). */
      pollMs?: number;
    },
  ) {}

  /**
   * A command runs in agentsh session `sessionId` until the returned function is called (and
   * awaited, before the session serves another command): the connections agentsh holds for that
   * session are its, and agentsh is asked meanwhile. When it has ended, whatever agentsh still
   * holds for the session is refused there and expired here: nothing waits for a decision any
   * more (agentsh itself would hold it until its timeout, a killed client notwithstanding).
   */
  watch(sessionId: string, waiting: WaitingCommand): () => Promise<void> {
    this.running.set(sessionId, waiting);
    this.timer ??= setInterval(() => void this.refresh(), this.options.pollMs ?? 500).unref();
    return async () => {
      if (this.running.get(sessionId) === waiting) this.running.delete(sessionId);
      if (this.running.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
      await this.release(sessionId);
    };
  }

  /** Reads agentsh's held requests once (concurrent callers share one read). */
  refresh(): Promise<void> {
    this.inFlight ??= this.read().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  /**
   * A person's decision: passed on to agentsh first for a network approval (undefined when
   * agentsh no longer holds it: it is then marked expired), then recorded like any approval.
   */
  async decide(
    id: string,
    decision: "approve" | "deny",
    approver: string,
    reason: string | null,
  ): Promise<Approval | undefined> {
    const { store } = this.options;
    const approval = store.get(id);
    if (approval?.kind === "network" && approval.status === "pending") {
      this.deciding.add(id);
      try {
        const held = await this.options.api.answer(
          id,
          decision === "approve",
          reason ?? `${decision} by ${approver}`,
        );
        if (!held) {
          store.lapse(id);
          return undefined;
        }
        return store.resolve(id, decision, approver, reason);
      } finally {
        this.deciding.delete(id);
      }
    }
    return store.resolve(id, decision, approver, reason);
  }

  /** Refuses at agentsh what it still holds for `sessionId` (its command ended) and expires it. */
  private async release(sessionId: string): Promise<void> {
    const { store, api } = this.options;
    let held: HeldRequest[];
    try {
      held = await api.pending();
    } catch {
      return;
    }
    for (const request of held) {
      if (request.session_id !== sessionId || request.kind !== NETWORK_KIND) continue;
      await api.answer(request.id, false, "the command ended before a decision").catch(() => false);
      store.lapse(request.id);
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async read(): Promise<void> {
    const { store, logger } = this.options;
    let held: HeldRequest[];
    try {
      held = await this.options.api.pending();
      if (this.failing) logger.info("agentsh's approvals API answers again");
      this.failing = false;
    } catch (error) {
      if (!this.failing) {
        logger.warn("agentsh's approvals API did not answer; held connections wait", {
          error: `${error}`,
        });
      }
      this.failing = true;
      return;
    }
    const holding = new Set<string>();
    for (const request of held) {
      if (request.kind !== NETWORK_KIND) continue;
      holding.add(request.id);
      if (store.get(request.id)) continue;
      const waiting = this.running.get(request.session_id);
      const approval = store.adoptNetwork(
        {
          id: request.id,
          target: request.target,
          rule: request.rule,
          createdAt: request.created_at,
          expiresAt: request.expires_at,
        },
        waiting?.command ?? "",
        waiting?.requester ?? {
          owner: `agentsh session ${request.session_id}`,
          session: null,
          requestId: null,
        },
      );
      waiting?.onRequested?.(approval);
    }
    for (const approval of store.pending()) {
      if (
        approval.kind === "network" &&
        !holding.has(approval.id) &&
        !this.deciding.has(approval.id)
      ) {
        store.lapse(approval.id);
      }
    }
  }
}

/**
 * Several agentsh servers (the default one and each tenant policy's) as one approvals API: the
 * held requests of all of them; an answer goes to the server that listed the request (all are
 * asked when none has yet). A server that does not answer fails the read, so nothing of any
 * server is taken for gone meanwhile.
 */
export function combinedApprovalsApi(apis: readonly AgentshApprovalsApi[]): AgentshApprovalsApi {
  if (apis.length === 1 && apis[0]) return apis[0];
  const holder = new Map<string, AgentshApprovalsApi>();
  return {
    async pending() {
      const lists = await Promise.all(
        apis.map(async (api) => ({ api, held: await api.pending() })),
      );
      holder.clear();
      for (const { api, held } of lists) for (const request of held) holder.set(request.id, api);
      return lists.flatMap(({ held }) => held);
    },
    async answer(id, approve, reason) {
      const known = holder.get(id);
      for (const api of known ? [known] : apis) {
        if (await api.answer(id, approve, reason)) return true;
      }
      return false;
    },
  };
}
