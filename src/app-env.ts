import type { TimingVariables } from "hono/timing";
import type { Tenant } from "./tenants/tenants.js";

/** The one Hono environment type shared by the app, its middleware and its routes. */
export interface AppEnv {
  Variables: TimingVariables & {
    requestId: string;
    /** The caller's address as established by `clientAddress` (socket or trusted proxy hop). */
    clientAddress: string;
    /** Who the caller is, set by the API-key guard: a key fingerprint or `anonymous`. */
    owner: string;
    /** The caller's tenant (only with a tenants file; see src/tenants/). */
    tenant?: Tenant;
    /** agentsh's ids for the command of this request (for the request log line). */
    agentsh?: { sessionId: string | null; commandId: string | null };
  };
}
