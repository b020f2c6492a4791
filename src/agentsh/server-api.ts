import { z } from "zod";
import type { Decision } from "../executor.js";
import { decisionFromEvent } from "./denials.js";
import type { DenialLookup } from "./executor.js";
import { eventSchema } from "./wire.js";

/**
 * The agentsh server's HTTP API, used for what the CLI cannot do cheaply: health probes and
 * creating sessions up front (a first-use auto-create races when two commands start together).
 */

export interface AgentshServerApi {
  /** Resolves to null when healthy, or a sentence saying what is wrong. */
  probe(): Promise<string | null>;
  /** Creates the session (rooted in `workspace`, default: the shared one) unless it exists. */
  ensureSession(sessionId: string, workspace?: string, policy?: string): Promise<void>;
  /** Ends a session; one that no longer exists is fine. */
  destroySession(sessionId: string): Promise<void>;
  /** Denials recorded for a session in a time window (agentsh's event store). */
  recordedDenials: DenialLookup;
  /**
   * agentsh's own rule lookup (`POST /api/v1/policy/test {operation, path}`), on the server's
   * policy engine: `exec` + a program, `file_<op>` + a path, `connect` + host:port. Null when
   * the server does not answer it.
   */
  policyTest(operation: string, target: string): Promise<{ rule: string; decision: string } | null>;
}

export interface AgentshServerOptions {
  serverUrl: string;
  apiKey: string | undefined;
  workspace: string;
  probeTimeoutMs?: number;
  fetch?: typeof fetch;
  /**
   * NETWORK_APPROVALS: a connection agentsh held for a person and then refused is recorded with
   * policy decision `approve` (effective `deny`); the denial lookup reads those too.
   */
  heldDecisions?: boolean;
}

export function createAgentshServerApi(options: AgentshServerOptions): AgentshServerApi {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.probeTimeoutMs ?? 2_000;
  const headers: Record<string, string> = options.apiKey ? { "X-API-Key": options.apiKey } : {};

  return {
    async probe() {
      try {
        const response = await doFetch(`${options.serverUrl}/health`, {
          headers,
          signal: AbortSignal.timeout(timeoutMs),
        });
        if (response.ok) return null;
        return `agentsh server at ${options.serverUrl} answered HTTP ${response.status}`;
      } catch (error) {
        return `agentsh server at ${options.serverUrl} is not reachable (${describe(error)})`;
      }
    },

    async ensureSession(sessionId, workspace = options.workspace, policy) {
      const response = await doFetch(`${options.serverUrl}/api/v1/sessions`, {
        method: "POST",
        headers: { ...headers, "Content-Type": "application/json" },
        // policy: a file of policies.dir (a tenant's, or an approved command's); absent: the
        // server's default.
        body: JSON.stringify({ id: sessionId, workspace, ...(policy ? { policy } : {}) }),
        signal: AbortSignal.timeout(timeoutMs * 5),
      });
      // 409: it already exists, which is what we want.
      if (response.ok || response.status === 409) return;
      const body = (await response.text()).slice(0, 300);
      throw new Error(
        `creating agentsh session ${sessionId} failed: HTTP ${response.status} ${body}`,
      );
    },

    async destroySession(sessionId) {
      const response = await doFetch(
        `${options.serverUrl}/api/v1/sessions/${encodeURIComponent(sessionId)}`,
        { method: "DELETE", headers, signal: AbortSignal.timeout(timeoutMs * 5) },
      );
      if (response.ok || response.status === 404) return;
      throw new Error(`ending agentsh session ${sessionId} failed: HTTP ${response.status}`);
    },

    async policyTest(operation, target) {
      try {
        const response = await doFetch(`${options.serverUrl}/api/v1/policy/test`, {
          method: "POST",
          headers: { ...headers, "Content-Type": "application/json" },
          body: JSON.stringify({ operation, path: target }),
          signal: AbortSignal.timeout(timeoutMs),
        });
        if (!response.ok) return null;
        const body = (await response.json()) as { rule?: unknown; decision?: unknown };
        return typeof body.rule === "string" && typeof body.decision === "string"
          ? { rule: body.rule, decision: body.decision }
          : null;
      } catch {
        return null;
      }
    },

    async recordedDenials(sessionId, since, until) {
      const search = async (decision: string) => {
        const query = new URLSearchParams({
          session_id: sessionId,
          decision,
          since: since.toISOString(),
          until: until.toISOString(),
          order: "asc",
          limit: "50",
        });
        const response = await doFetch(`${options.serverUrl}/api/v1/events/search?${query}`, {
          headers,
          signal: AbortSignal.timeout(timeoutMs),
        });
        if (!response.ok) {
          throw new Error(`agentsh event search failed: HTTP ${response.status}`);
        }
        return response.json();
      };
      if (!options.heldDecisions) return parseEventSearch(await search("deny"));
      const [denied, held] = await Promise.all([search("deny"), search("approve")]);
      return [...parseEventSearch(denied), ...parseEventSearch(held, { refusedOnly: true })];
    },
  };
}

/**
 * The decisions in an answer of agentsh's `GET /api/v1/events/search` (`null`: none matched).
 * `refusedOnly`: only events whose effective decision refused (a held connection denied or
 * timed out, not one a person let through).
 */
export function parseEventSearch(json: unknown, how: { refusedOnly?: boolean } = {}): Decision[] {
  const events = z.array(eventSchema).nullable().parse(json) ?? [];
  return events
    .filter((event) => !how.refusedOnly || event.policy?.effective_decision === "deny")
    .map(decisionFromEvent);
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as Error & { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message) return cause.message;
    return error.name === "TimeoutError" ? "no answer in time" : error.message;
  }
  return String(error);
}
