import type { TimingVariables } from "hono/timing";

/** The one Hono environment type shared by the app, its middleware and its routes. */
export interface AppEnv {
  Variables: TimingVariables & {
    requestId: string;
    /** The caller's address as established by `clientAddress` (socket or trusted proxy hop). */
    clientAddress: string;
    /** Who the caller is, set by the API-key guard: a key fingerprint or `anonymous`. */
    owner: string;
    /** agentsh's ids for the command of this request (for the request log line). */
    agentsh?: { sessionId: string | null; commandId: string | null };
  };
}
