import net from "node:net";
import type { Logger } from "../logger.js";

/**
 * Commands may bind any unprivileged TCP port (dev servers; isolation.yaml `bind_tcp_ports:
 * any`), so the service's own ports are kept out of their reach by the kernel's simplest rule:
 * a port one socket listens on cannot be bound by another (EADDRINUSE; none of these sockets
 * sets SO_REUSEPORT). The app and agentsh listen on IPv4; this holds the rest of each port, on
 * every address family, for as long as the service runs:
 *
 * - `0.0.0.0:P` where no one listens on P yet (gRPC, pprof, a Redis elsewhere): nothing of
 *   ours serves there, and no command can start to;
 * - `[::]:P` (IPv6 only): a client that resolves `localhost` to ::1 first can never reach a
 *   command instead of the service.
 *
 * Where the owner already listens on an IPv4 address the attempt fails with EADDRINUSE, and that
 * is the point: the port is held either way. No Landlock rule is involved (a rule per allowed
 * port costs landlock_restrict_self ~0.27 µs each, 17.5 ms for every unprivileged port).
 */
export interface HeldPorts {
  /**
   * Each port with what holds each address family: "held" (this module), "in use" (its owner:
   * agentsh, Redis), "app" (the service's own listener, opened next) or "none" (no IPv6 here).
   */
  report: Record<string, { ipv4: Holder; ipv6: Holder }>;
  close(): void;
}

type Holder = "held" | "in use" | "app" | "none";

const ADDRESSES = [
  { family: "ipv4", host: "0.0.0.0", ipv6Only: false },
  { family: "ipv6", host: "::", ipv6Only: true },
] as const;

export async function holdServicePorts(
  ports: readonly number[],
  /** The app's own listener (started after this): its address families are left to it. */
  app: { port: number; host: string },
  logger: Logger,
): Promise<HeldPorts> {
  const servers: net.Server[] = [];
  const report: HeldPorts["report"] = {};
  for (const port of new Set(ports)) {
    const entry = { ipv4: "none" as Holder, ipv6: "none" as Holder };
    for (const address of ADDRESSES) {
      if (port === app.port && (address.family === "ipv4" || app.host.includes(":"))) {
        entry[address.family] = "app";
        continue;
      }
      const outcome = await hold(port, address.host, address.ipv6Only);
      if (outcome instanceof net.Server) {
        servers.push(outcome);
        entry[address.family] = "held";
      } else {
        entry[address.family] = outcome;
      }
    }
    report[String(port)] = entry;
  }
  logger.info("service ports held against commands", { ports: report });
  return {
    report,
    close: () => {
      for (const server of servers) server.close();
    },
  };
}

/** A listening socket that answers nothing; "in use" when P is taken, "none" without the family. */
function hold(port: number, host: string, ipv6Only: boolean): Promise<net.Server | Holder> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => socket.destroy());
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") resolve("in use");
      else if (error.code === "EAFNOSUPPORT" || error.code === "EADDRNOTAVAIL") resolve("none");
      else reject(error);
    });
    server.listen({ port, host, ipv6Only, exclusive: true }, () => {
      server.unref();
      resolve(server);
    });
  });
}
