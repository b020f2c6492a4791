/**
 * The Worker's only job: hand each request to the container running the same image as on
 * Render. Kept free of Workers-only imports so it is tested under Node with a fake stub.
 */

/** The part of a container Durable Object stub the Worker uses. */
export interface ContainerStub {
  fetch(request: Request): Promise<Response>;
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
    // Same envelope as the service's own errors, with a request id of the Worker's own (the
    // container never saw the request) that is also sent as X-Request-Id.
    const requestId = crypto.randomUUID();
    return Response.json(
      {
        requestId,
        error: {
          code: "container_unavailable",
          message: `The governed executor container is not reachable: ${error instanceof Error ? error.message : String(error)}`,
          hint: "Retry in a few seconds; the container may be starting.",
        },
      },
      { status: 503, headers: { "Retry-After": "5", "X-Request-Id": requestId } },
    );
  }
}
