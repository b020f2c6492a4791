import { describe, expect, it } from "vitest";
import { type ContainerStub, forwardToContainer } from "../../worker/forward.js";

/** A fake container binding that records what the Worker sent it. */
function recordingContainer(
  answer: () => Promise<Response> = async () => Response.json({ status: "ok" }),
) {
  const received: Request[] = [];
  const stub: ContainerStub = {
    fetch: async (request) => {
      received.push(request);
      return answer();
    },
  };
  return { stub, received };
}

describe("Cloudflare Worker forwarding", () => {
  it("forwards method, path, query, headers and body unchanged", async () => {
    const { stub, received } = recordingContainer();
    const res = await forwardToContainer(
      new Request("https://gexec.example.workers.dev/execute?api_key=k", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-API-Key": "key-123" },
        body: '{"command":"ls"}',
      }),
      stub,
    );
    expect(res.status).toBe(200);
    const sent = received[0];
    expect(sent?.method).toBe("POST");
    expect(new URL(sent?.url ?? "").pathname).toBe("/execute");
    expect(new URL(sent?.url ?? "").search).toBe("?api_key=k");
    expect(sent?.headers.get("x-api-key")).toBe("key-123");
    expect(await sent?.text()).toBe('{"command":"ls"}');
  });

  it("replaces a client-sent X-Forwarded-For with the verified client address", async () => {
    const { stub, received } = recordingContainer();
    await forwardToContainer(
      new Request("https://w.example/health", {
        headers: { "X-Forwarded-For": "6.6.6.6", "CF-Connecting-IP": "203.0.113.9" },
      }),
      stub,
    );
    expect(received[0]?.headers.get("x-forwarded-for")).toBe("203.0.113.9");
  });

  it("drops X-Forwarded-For entirely when no verified address exists", async () => {
    const { stub, received } = recordingContainer();
    await forwardToContainer(
      new Request("https://w.example/health", { headers: { "X-Forwarded-For": "6.6.6.6" } }),
      stub,
    );
    expect(received[0]?.headers.get("x-forwarded-for")).toBeNull();
  });

  it("passes the container's own status through (e.g. /health 503)", async () => {
    const { stub } = recordingContainer(async () =>
      Response.json({ status: "unavailable" }, { status: 503 }),
    );
    expect((await forwardToContainer(new Request("https://w.example/health"), stub)).status).toBe(
      503,
    );
  });

  it("answers 503 in the service's error envelope when the container is unreachable", async () => {
    const { stub } = recordingContainer(async () => {
      throw new Error("container is starting");
    });
    const res = await forwardToContainer(new Request("https://w.example/demo/allowed"), stub);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    const body = (await res.json()) as { error: { code: string }; requestId: string };
    expect(Object.keys(body).sort()).toEqual(["error", "requestId"]);
    expect(body.error.code).toBe("container_unavailable");
    expect(body.requestId).toBe(res.headers.get("x-request-id"));
  });
});
