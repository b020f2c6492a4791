/**
 * Which container instance serves a request. Sessions live in one container's memory, so each
 * session gets a container instance of its own, named after the tag inside its id
 * (`s-<tag>-<24 hex>`); everything that names no session goes to one shared instance.
 * Pure (Node-testable): the Durable Object namespace comes in as `ContainerInstances`.
 */
import { type KeySecrets, presentsAcceptedKey } from "./api-key.js";
import {
  type ContainerStub,
  containerUnavailable,
  errorResponse,
  forwardToContainer,
  type WorkerError,
} from "./forward.js";
import { type Protocol, type SessionTarget, sessionTargetOf } from "./session-target.js";

/** The Worker's secrets that the container receives as its environment. */
export interface WorkerSecrets extends KeySecrets {
  /** Shared rate-limit counters across instances (each instance counts alone without it). */
  REDIS_URL?: string;
}

/** What the Worker uses of a named instance's stub (methods of @cloudflare/containers'
 * `Container`, called over Durable Object RPC). */
export interface SessionInstance extends ContainerStub {
  startAndWaitForPorts(options: {
    startOptions: { envVars: Record<string, string> };
  }): Promise<unknown>;
  getState(): Promise<{ status: string }>;
  stop(): Promise<unknown>;
}

export interface ContainerInstances {
  /** The instance that serves everything naming no session. */
  shared(): ContainerStub;
  /** The instance of this name (created on first use; its container starts on demand). */
  named(name: string): SessionInstance;
}

const SESSION_INSTANCE_PREFIX = "session-";

export function sessionInstanceName(tag: string): string {
  return `${SESSION_INSTANCE_PREFIX}${tag}`;
}

/** The tag a session instance was named after; undefined for the shared instance. */
export function tagOfInstanceName(name: string | undefined): string | undefined {
  return name?.startsWith(SESSION_INSTANCE_PREFIX)
    ? name.slice(SESSION_INSTANCE_PREFIX.length)
    : undefined;
}

/** A fresh instance tag: 64 random bits as 16 hex digits (INSTANCE_TAG allows [a-z0-9]{1,16}). */
export function newInstanceTag(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * The container's environment. The whole of it: start options replace the class's envVars
 * rather than merge with them (doStartContainer: `options?.envVars ?? this.envVars`).
 */
export function containerEnvVars(
  secrets: WorkerSecrets,
  instanceTag?: string,
): Record<string, string> {
  return {
    API_KEY: secrets.API_KEY ?? "",
    // The Worker sets X-Forwarded-For to the verified client address: one trusted hop.
    TRUSTED_PROXY_HOPS: "1",
    ...(secrets.API_KEYS ? { API_KEYS: secrets.API_KEYS } : {}),
    ...(secrets.REDIS_URL ? { REDIS_URL: secrets.REDIS_URL } : {}),
    // The tag the service puts into the ids it mints, so that they lead back here.
    ...(instanceTag !== undefined ? { INSTANCE_TAG: instanceTag } : {}),
  };
}

/** What startAndWaitForPorts throws when the runtime gives the object no container within
 * about 8 s — max_instances reached, or the image still provisioning (the library's
 * NO_CONTAINER_INSTANCE_ERROR, matched the way its isNoInstanceError does). */
const NO_INSTANCE_LEFT =
  "there is no container instance that can be provided to this durable object";

export async function routeRequest(
  request: Request,
  secrets: WorkerSecrets,
  instances: ContainerInstances,
  newTag: () => string = newInstanceTag,
): Promise<Response> {
  const target = await sessionTargetOf(request);
  // Without a valid key nothing is started or woken: the shared instance answers 401.
  if (target.kind === "none" || !(await presentsAcceptedKey(request, secrets))) {
    return forwardToContainer(request, instances.shared());
  }
  switch (target.kind) {
    case "malformed":
      return sessionNotFound(target, "it is not a session id (s-<instance>-<24 hex>)");
    case "create":
      return createInInstanceOfItsOwn(request, secrets, instances, newTag(), target.protocol);
    case "session":
      return forwardToSessionInstance(request, instances, target);
  }
}

/** A new session: a container instance of its own, started knowing the tag it is named after. */
async function createInInstanceOfItsOwn(
  request: Request,
  secrets: WorkerSecrets,
  instances: ContainerInstances,
  tag: string,
  protocol: Protocol,
): Promise<Response> {
  const instance = instances.named(sessionInstanceName(tag));
  try {
    await instance.startAndWaitForPorts({
      startOptions: { envVars: containerEnvVars(secrets, tag) },
    });
  } catch (error) {
    if (
      !String(error instanceof Error ? error.message : error)
        .toLowerCase()
        .includes(NO_INSTANCE_LEFT)
    ) {
      return containerUnavailable(error);
    }
    return answer(
      protocol,
      429,
      {
        code: "session_limit",
        message:
          "No container instance could be had for a new session: as many as max_instances allows are running (or Cloudflare is still provisioning the image).",
        hint: "Close sessions you no longer need (DELETE /sessions/:id) or retry in a few minutes.",
      },
      { "Retry-After": "60" },
    );
  }
  return forwardToContainer(request, instance);
}

/**
 * A request for an existing session. A session lives only as long as its container: when that
 * is not running (idle past sleepAfter, deleted, crashed) the session is gone, and the Worker
 * says so without starting a container just to hear it.
 */
async function forwardToSessionInstance(
  request: Request,
  instances: ContainerInstances,
  target: Extract<SessionTarget, { kind: "session" }>,
): Promise<Response> {
  const instance = instances.named(sessionInstanceName(target.tag));
  let status: string;
  try {
    ({ status } = await instance.getState());
  } catch (error) {
    return containerUnavailable(error);
  }
  if (status !== "running" && status !== "healthy") {
    return sessionNotFound(
      target,
      "its container instance is not running (the session expired or was deleted)",
    );
  }
  const response = await forwardToContainer(request, instance);
  if (request.method === "DELETE" && response.ok) {
    // The instance held this one session and nothing else: free its place in max_instances
    // now instead of after sleepAfter. The body is read first so the container's answer is
    // complete before the container is told to stop.
    const body = await response.arrayBuffer();
    await instance.stop().catch(() => undefined);
    return new Response(body, response);
  }
  return response;
}

function sessionNotFound(target: { sessionId: string; protocol: Protocol }, why: string): Response {
  return answer(target.protocol, 404, {
    code: "session_not_found",
    message: `Session ${JSON.stringify(target.sessionId.slice(0, 80))} does not exist: ${why}.`,
    hint: "Create a session with POST /sessions (MCP: create_session) and use the id it returns.",
  });
}

/**
 * An answer the Worker gives itself. REST callers get the service's envelope with its status;
 * MCP callers get a JSON-RPC result that reports a tool error (`isError`), carrying the same
 * envelope as text and as structured content — what an MCP client shows the model, and an HTTP
 * error status would not be.
 */
function answer(
  protocol: Protocol,
  status: number,
  error: WorkerError,
  headers: Record<string, string> = {},
): Response {
  const rest = errorResponse(status, error, headers);
  if (protocol.kind === "rest") return rest;
  const requestId = rest.headers.get("x-request-id") ?? "";
  return Response.json(
    {
      jsonrpc: "2.0",
      id: protocol.rpcId,
      result: {
        content: [{ type: "text", text: JSON.stringify({ error, requestId }) }],
        // The same shape as the service's own tool refusals.
        structuredContent: { error, requestId },
        isError: true,
      },
    },
    { headers: { "X-Request-Id": requestId } },
  );
}
