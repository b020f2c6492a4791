// Canary listener for the test network namespace (test-network.ts).
//
// It listens on 0.0.0.0 inside the namespace, so it answers on every stand-in
// address on the namespace's lo (private ranges, metadata, the "public" and
// "evil" hosts). Every connection it accepts is written to a JSON-lines log so
// that a test can prove both directions: an allowed target was reached, and a
// blocked one got zero connections.
//
// Log lines (one JSON object per line, appended synchronously):
//   event "accept"    exactly one per accepted TCP connection, written the
//                     moment it is accepted, before any TLS handshake or
//                     request, so a connection is on record even if nothing
//                     else happens on it. Count these to count connections.
//   event "request"   one per HTTP(S) request, adding host, method, path and,
//                     for https, the SNI name.
//   event "tls-error" a TLS handshake failed (e.g. the client rejected our
//                     self-signed certificate), with the SNI name if one came.
// All lines carry ts, conn (a per-run connection number), localAddress,
// localPort, remoteAddress, remotePort and protocol ("http" | "https" | "tcp").
//
// Usage: node --import tsx test/net/canary.ts
//          --log FILE --ready FILE --cert FILE --key FILE
//
// Node builtins only: it must run before (and without) the app's dependencies.

import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import { createServer as createTcpServer, type Server, type Socket } from "node:net";
import { createSecureContext, TLSSocket } from "node:tls";
import { parseArgs } from "node:util";

type Protocol = "http" | "https" | "tcp";

/** What is known about a connection when it is accepted. */
interface ConnectionFields {
  ts: string;
  conn: number;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  protocol: Protocol;
}

interface CanaryEntry extends ConnectionFields {
  event: "accept" | "request" | "tls-error";
  sni?: string;
  host?: string;
  method?: string;
  path?: string;
  error?: string;
}

const HTTP_PORT = 80;
const HTTPS_PORT = 443;
// Plain TCP: 8080 (a common "alternate HTTP" port), 22 (ssh exfiltration), and stand-ins for
// service ports the stack does not open in the test network: 6379 (Redis), 9090 (agentsh gRPC)
// and 6060 (agentsh pprof), so loopback probes of them prove zero connections.
const TCP_PORTS = [8080, 22, 6379, 9090, 6060];
// Don't let an idle client keep a socket (and shutdown) waiting.
const IDLE_TIMEOUT_MS = 10_000;

const { values: args } = parseArgs({
  options: {
    log: { type: "string" },
    ready: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
  },
  strict: true,
});
if (
  args.log === undefined ||
  args.ready === undefined ||
  args.cert === undefined ||
  args.key === undefined
) {
  console.error("usage: canary.ts --log FILE --ready FILE --cert FILE --key FILE");
  process.exit(2);
}
const readyFile = args.ready;
const secureContext = createSecureContext({
  cert: readFileSync(args.cert),
  key: readFileSync(args.key),
});

// One fd opened for append; writeSync of a single short line is one write(2)
// with O_APPEND, so lines never interleave and are on disk before we answer.
const logFd = openSync(args.log, "a");

function writeEntry(entry: CanaryEntry): void {
  // ts and event first, for people reading the log.
  const { ts, event, ...rest } = entry;
  writeSync(logFd, `${JSON.stringify({ ts, event, ...rest })}\n`);
}

let nextConn = 1;
// Accept-time fields of the socket an HTTP request arrives on (the raw socket
// for http, our TLSSocket for https), for the "request" line.
const fieldsOf = new WeakMap<Socket, ConnectionFields>();

/** Log the accepted connection at once and return its fields. */
function onAccept(socket: Socket, protocol: Protocol): ConnectionFields {
  const fields: ConnectionFields = {
    ts: new Date().toISOString(),
    conn: nextConn++,
    localAddress: socket.localAddress ?? "",
    localPort: socket.localPort ?? 0,
    remoteAddress: socket.remoteAddress ?? "",
    remotePort: socket.remotePort ?? 0,
    protocol,
  };
  writeEntry({ ...fields, event: "accept" });
  socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
  // A client that resets the connection must not crash the canary.
  socket.on("error", () => {});
  return fields;
}

function handleRequest(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket;
  const fields = fieldsOf.get(socket);
  if (fields !== undefined) {
    const sni = socket instanceof TLSSocket ? socket.servername : undefined;
    writeEntry({
      ...fields,
      ts: new Date().toISOString(),
      event: "request",
      ...(typeof sni === "string" ? { sni } : {}),
      ...(req.headers.host !== undefined ? { host: req.headers.host } : {}),
      ...(req.method !== undefined ? { method: req.method } : {}),
      ...(req.url !== undefined ? { path: req.url } : {}),
    });
  }
  // Drain any body, then answer; "connection: close" keeps no idle sockets.
  req.resume();
  res.writeHead(200, { "content-type": "text/plain", connection: "close" });
  res.end(`canary ${fields?.localAddress ?? socket.localAddress ?? ""}\n`);
}

// Port 80: plain HTTP.
const httpServer = createHttpServer(handleRequest);
httpServer.on("connection", (socket: Socket) => fieldsOf.set(socket, onAccept(socket, "http")));

// Port 443: we accept the TCP connection ourselves and wrap it in TLS, so the
// connection is logged before the handshake and a failed handshake is logged
// with the same fields; finished handshakes go to an HTTP server.
const httpsRequests = createHttpServer(handleRequest);
const httpsServer = createTcpServer((socket) => {
  const fields = onAccept(socket, "https");
  const tlsSocket = new TLSSocket(socket, { isServer: true, secureContext });
  let handshakeDone = false;
  tlsSocket.on("secure", () => {
    handshakeDone = true;
    fieldsOf.set(tlsSocket, fields);
    httpsRequests.emit("connection", tlsSocket);
  });
  tlsSocket.on("error", (error: Error) => {
    if (!handshakeDone) {
      const sni = tlsSocket.servername;
      writeEntry({
        ...fields,
        ts: new Date().toISOString(),
        event: "tls-error",
        ...(typeof sni === "string" ? { sni } : {}),
        error: error.message.trim(),
      });
    }
    tlsSocket.destroy();
  });
});

// Plain TCP: record the connection, send a one-line banner, close. The banner
// lets a probe see that it reached the canary and not something else.
const tcpServers = TCP_PORTS.map((port) => {
  const server = createTcpServer((socket) => {
    const fields = onAccept(socket, "tcp");
    socket.end(`canary ${fields.localAddress}\n`);
  });
  return { server, port };
});

const listeners: Array<{ server: Server; port: number }> = [
  { server: httpServer, port: HTTP_PORT },
  { server: httpsServer, port: HTTPS_PORT },
  ...tcpServers,
];

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "0.0.0.0", port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function shutdown(): void {
  httpServer.closeAllConnections();
  httpsRequests.closeAllConnections();
  for (const { server } of listeners) server.close();
  closeSync(logFd);
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

try {
  await Promise.all(listeners.map(({ server, port }) => listen(server, port)));
} catch (error) {
  console.error(`canary: cannot listen: ${(error as Error).message}`);
  process.exit(1);
}
const ports = listeners.map(({ port }) => port).join(",");
// The harness waits for this file (with a deadline) before going on.
writeFileSync(readyFile, `${process.pid}\n`);
console.log(`canary ready: pid ${process.pid}, 0.0.0.0 ports ${ports}`);
