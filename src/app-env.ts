/** The one Hono environment type shared by the app, its middleware and its routes. */
export interface AppEnv {
  Variables: {
    requestId: string;
    /** The caller's address as established by `clientAddress` (socket or trusted proxy hop). */
    clientAddress: string;
    /** The agentsh session a command of this request ran in (for the request log line). */
    agentshSessionId?: string;
  };
}
