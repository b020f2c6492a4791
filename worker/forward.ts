/**
 * Hands a request to a container running the same image as on Render. Kept free of
 * Workers-only imports so it is tested under Node with a fake stub.
 */

/** The part of a container Durable Object stub that forwarding uses. */
export interface ContainerStub {
  fetch(request: Request): Promise<Response>;
}

/** The service's error envelope, for the answers the Worker gives itself. */
export interface WorkerError {
  code: string;
  message: string;
  hint: string;
}

/**
 * Forwards `request` to the container. The client address Cloudflare verified
 * (CF-Connecting-IP) replaces any X-Forwarded-For the client sent, so the service — started
 * with TRUSTED_PROXY_HOPS=1 — rate-limits the real client and a spoofed header buys nothing.
 */
export async function forwardToContainer(
  request: Request,
  container: ContainerStub,
): Promise<Response> {
  const headers = new Headers(request.headers);
  headers.delete("x-forwarded-for");
  const client = request.headers.get("cf-connecting-ip");
  if (client) headers.set("x-forwarded-for", client);
  const forwarded = new Request(request, { headers });
  try {
    return await container.fetch(forwarded);
  } catch (error) {
    return containerUnavailable(error);
  }
}

/** 503 in the service's envelope: the container could not be reached or started. */
export function containerUnavailable(error: unknown): Response {
  return errorResponse(
    503,
    {
      code: "container_unavailable",
      message: `The governed executor container is not reachable: ${error instanceof Error ? error.message : String(error)}`,
      hint: "Retry in a few seconds; the container may be starting.",
    },
    { "Retry-After": "5" },
  );
}

/**
 * Same envelope as the service's own errors, with a request id of the Worker's own (no
 * container saw the request) that is also sent as X-Request-Id.
 */
export function errorResponse(
  status: number,
  error: WorkerError,
  headers: Record<string, string> = {},
): Response {
  const requestId = crypto.randomUUID();
  return Response.json(
    { error, requestId },
    { status, headers: { ...headers, "X-Request-Id": requestId } },
  );
}
