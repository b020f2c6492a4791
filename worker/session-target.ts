/**
 * Which session, if any, a request names — read from its path or from a bounded copy of its
 * JSON body, never consuming the body the container will read. Pure (Node-testable).
 */

/** The service caps bodies at 16 KiB (MAX_BODY_BYTES); a larger one is not looked into. */
export const MAX_INSPECTED_BODY_BYTES = 16 * 1024;

/** `s-<tag>-<24 hex>`: the tag is the INSTANCE_TAG of the instance that holds the session. */
const SESSION_ID = /^s-([a-z0-9]{1,16})-[0-9a-f]{24}$/;

/** How the caller speaks, so that an answer the Worker gives itself is one it can read. */
export type Protocol = { kind: "rest" } | { kind: "mcp"; rpcId: string | number | null };

export type SessionTarget =
  /** Names no session: the shared default instance serves it. */
  | { kind: "none" }
  /** Creates a session (`POST /sessions`, MCP `create_session`): a fresh instance. */
  | { kind: "create"; protocol: Protocol }
  /** Names a well-formed session id: the instance named after its tag. */
  | { kind: "session"; sessionId: string; tag: string; protocol: Protocol }
  /** Names something that is not a session id: no instance can hold it. */
  | { kind: "malformed"; sessionId: string; protocol: Protocol };

/** The instance tag inside a session id, or undefined when it is not one. */
export function tagOfSessionId(sessionId: string): string | undefined {
  return SESSION_ID.exec(sessionId)?.[1];
}

export async function sessionTargetOf(request: Request): Promise<SessionTarget> {
  const path = new URL(request.url).pathname;
  const method = request.method;
  const rest: Protocol = { kind: "rest" };

  if (path === "/sessions") {
    return method === "POST" ? { kind: "create", protocol: rest } : { kind: "none" };
  }
  const sessionPath = /^\/sessions\/([^/]+)$/.exec(path);
  if (sessionPath?.[1] !== undefined) {
    if (method !== "GET" && method !== "HEAD" && method !== "DELETE") return { kind: "none" };
    return named(decodePathSegment(sessionPath[1]), rest);
  }
  if (path === "/execute" && method === "POST") {
    const sessionId = field(await boundedJsonBody(request), "sessionId");
    // Absent, or not a session id (which the service rejects as invalid input): no session.
    return typeof sessionId === "string" ? namedInBody(sessionId, rest) : { kind: "none" };
  }
  if (path === "/mcp" && method === "POST") {
    return mcpTarget(await boundedJsonBody(request));
  }
  return { kind: "none" };
}

/** A JSON-RPC `tools/call` of the session tools; batches and other methods name no session. */
function mcpTarget(message: unknown): SessionTarget {
  if (field(message, "method") !== "tools/call") return { kind: "none" };
  const id = field(message, "id");
  const protocol: Protocol = {
    kind: "mcp",
    rpcId: typeof id === "string" || typeof id === "number" ? id : null,
  };
  const params = field(message, "params");
  if (field(params, "name") === "create_session") return { kind: "create", protocol };
  const sessionId = field(field(params, "arguments"), "sessionId");
  return typeof sessionId === "string" ? namedInBody(sessionId, protocol) : { kind: "none" };
}

/**
 * A session id in a request body. One that is not an id at all goes to the shared instance,
 * which answers it as the service always does (400 validation_failed, or the MCP tool's input
 * error), so the Worker and a single instance answer bad input alike.
 */
function namedInBody(sessionId: string, protocol: Protocol): SessionTarget {
  const target = named(sessionId, protocol);
  return target.kind === "malformed" ? { kind: "none" } : target;
}

function named(sessionId: string, protocol: Protocol): SessionTarget {
  const tag = tagOfSessionId(sessionId);
  return tag === undefined
    ? { kind: "malformed", sessionId, protocol }
    : { kind: "session", sessionId, tag, protocol };
}

function field(value: unknown, name: string): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  return (value as Record<string, unknown>)[name];
}

function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // not valid percent-encoding: certainly not a session id either
  }
}

/**
 * The request body parsed as JSON, read from a clone and at most MAX_INSPECTED_BODY_BYTES of
 * it; undefined when absent, larger, or not JSON (the service then answers as usual).
 */
async function boundedJsonBody(request: Request): Promise<unknown> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (request.body === null || declared > MAX_INSPECTED_BODY_BYTES) return undefined;
  const reader = request.clone().body?.getReader();
  if (reader === undefined) return undefined;
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_INSPECTED_BODY_BYTES) {
      // Only the copy is cancelled; the original keeps every byte for the container. Not
      // awaited: a tee branch's cancel settles only once the other branch is done too.
      void reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
}
