import type { Server } from "node:http";
import { serve } from "@hono/node-server";

/**
 * The production HTTP server for the app: the settings every deployment runs with, used by the
 * Node entry and by the socket-level tests alike.
 */
export const SERVER_TIMEOUTS = {
  /** Slow clients may not hold sockets open: headers within 10 s ... */
  headersTimeout: 10_000,
  /** ... and the whole request within 30 s (bodies are at most 16 KiB). Responses may take as
   * long as the command. */
  requestTimeout: 30_000,
  /** How often Node enforces the two limits above (its default, 30 s, lets them slip). */
  connectionsCheckingInterval: 1_000,
} as const;

export function listen(
  app: { fetch: (request: Request, env?: unknown) => Response | Promise<Response> },
  address: { port: number; hostname: string },
  onListening?: (port: number) => void,
): Server {
  return serve(
    {
      fetch: app.fetch,
      port: address.port,
      hostname: address.hostname,
      serverOptions: { ...SERVER_TIMEOUTS },
    },
    (info) => onListening?.(info.port),
  ) as Server;
}
