import { describe, expect, it } from "vitest";
import type { ContainerStub } from "../../worker/forward.js";
import {
  type ContainerInstances,
  containerEnvVars,
  routeRequest,
  type SessionInstance,
  tagOfInstanceName,
} from "../../worker/route.js";
import { MAX_INSPECTED_BODY_BYTES } from "../../worker/session-target.js";

const KEY = "k".repeat(32);
const SECRETS = { API_KEY: KEY };
const HEX24 = "0123456789abcdef01234567";

interface Received {
  instance: string;
  method: string;
  path: string;
  body: string;
}

/**
 * A fake Durable Object namespace of containers: records which instance got which request and
 * the environment each was started with. A named instance runs once started (like the real
 * one, whose state turns healthy) until stopped; the shared instance always runs.
 */
function fakeContainers(
  options: { startError?: Error; answer?: (instance: string, request: Request) => Response } = {},
) {
  const received: Received[] = [];
  const started = new Map<string, Record<string, string>>();
  const stopped: string[] = [];
  const touched: string[] = [];

  const stub = (instance: string): ContainerStub => ({
    fetch: async (request) => {
      const body = await request.text();
      received.push({
        instance,
        method: request.method,
        path: new URL(request.url).pathname,
        body,
      });
      return options.answer?.(instance, request) ?? Response.json({ instance });
    },
  });
  const instances: ContainerInstances = {
    shared: () => stub("shared"),
    named: (name): SessionInstance => {
      touched.push(name);
      return {
        ...stub(name),
        startAndWaitForPorts: async ({ startOptions }) => {
          if (options.startError) throw options.startError;
          started.set(name, startOptions.envVars);
        },
        getState: async () => ({
          status: started.has(name) && !stopped.includes(name) ? "healthy" : "stopped",
        }),
        stop: async () => {
          stopped.push(name);
        },
      };
    },
  };
  return { instances, received, started, stopped, touched };
}

function request(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = { "X-API-Key": KEY },
) {
  return new Request(`https://gexec.example.workers.dev${path}`, {
    method,
    headers: { "Content-Type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
}

function mcpCall(name: string, args: Record<string, unknown>, id: number | string = 7) {
  return request("POST", "/mcp", {
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name, arguments: args },
  });
}

/** Creates a session through the Worker; returns the fake and the id the instance minted. */
async function createdSession() {
  const fake = fakeContainers({
    // The service in the container mints ids with the INSTANCE_TAG it was started with.
    answer: (instance) =>
      Response.json(
        { session: { id: `s-${fake.started.get(instance)?.INSTANCE_TAG}-${HEX24}` } },
        { status: 201 },
      ),
  });
  const res = await routeRequest(request("POST", "/sessions", {}), SECRETS, fake.instances);
  const { session } = (await res.json()) as { session: { id: string } };
  return { fake, sessionId: session.id };
}

describe("Worker routing: a container instance per session", () => {
  it("creates each session in a new instance named after a fresh tag, started with that tag", async () => {
    const fake = fakeContainers();
    const tags = ["a1b2c3d4e5f60718", "00ff00ff00ff00ff"];
    const newTag = () => tags.shift() ?? "unexpected";
    for (let i = 0; i < 2; i++) {
      const res = await routeRequest(
        request("POST", "/sessions", {}),
        SECRETS,
        fake.instances,
        newTag,
      );
      expect(res.status).toBe(200);
    }
    expect([...fake.started.keys()]).toEqual([
      "session-a1b2c3d4e5f60718",
      "session-00ff00ff00ff00ff",
    ]);
    expect(fake.started.get("session-a1b2c3d4e5f60718")).toEqual({
      API_KEY: KEY,
      TRUSTED_PROXY_HOPS: "1",
      INSTANCE_TAG: "a1b2c3d4e5f60718",
    });
    expect(fake.received.map((r) => `${r.instance} ${r.method} ${r.path}`)).toEqual([
      "session-a1b2c3d4e5f60718 POST /sessions",
      "session-00ff00ff00ff00ff POST /sessions",
    ]);
  });

  it("draws tags the service accepts as INSTANCE_TAG, different each time", async () => {
    const fake = fakeContainers();
    for (let i = 0; i < 20; i++) {
      await routeRequest(request("POST", "/sessions"), SECRETS, fake.instances);
    }
    const tags = [...fake.started.values()].map((env) => env.INSTANCE_TAG ?? "");
    expect(new Set(tags).size).toBe(20);
    for (const tag of tags) expect(tag).toMatch(/^[a-z0-9]{1,16}$/);
  });

  it("sends every later request naming the session to the instance that holds it, body intact", async () => {
    const { fake, sessionId } = await createdSession();
    const holder = `session-${sessionId.split("-")[1]}`;
    const execute = JSON.stringify({ command: "cd /tmp && pwd", sessionId });
    await routeRequest(request("POST", "/execute", execute), SECRETS, fake.instances);
    await routeRequest(
      request("POST", "/execute", execute, { "X-API-Key": KEY, Accept: "text/event-stream" }),
      SECRETS,
      fake.instances,
    );
    await routeRequest(request("GET", `/sessions/${sessionId}`), SECRETS, fake.instances);
    const mcp = mcpCall("run_command", { command: "ls", sessionId });
    const mcpBody = await mcp.clone().text();
    await routeRequest(mcp, SECRETS, fake.instances);
    await routeRequest(mcpCall("get_session", { sessionId }), SECRETS, fake.instances);
    await routeRequest(request("DELETE", `/sessions/${sessionId}`), SECRETS, fake.instances);

    expect(fake.received.map((r) => `${r.instance} ${r.method} ${r.path}`)).toEqual([
      `${holder} POST /sessions`,
      `${holder} POST /execute`,
      `${holder} POST /execute`,
      `${holder} GET /sessions/${sessionId}`,
      `${holder} POST /mcp`,
      `${holder} POST /mcp`,
      `${holder} DELETE /sessions/${sessionId}`,
    ]);
    expect(fake.received[1]?.body).toBe(execute);
    expect(fake.received[4]?.body).toBe(mcpBody);
    // Only the creation started a container.
    expect([...fake.started.keys()]).toEqual([holder]);
  });

  it("stops the instance once its session is deleted, after the container answered", async () => {
    const { fake, sessionId } = await createdSession();
    const res = await routeRequest(
      request("DELETE", `/sessions/${sessionId}`),
      SECRETS,
      fake.instances,
    );
    expect(res.status).toBe(201); // the fake answers 201 to everything; passed through
    expect(await res.json()).toMatchObject({ session: { id: expect.any(String) } });
    expect(fake.stopped).toEqual([`session-${sessionId.split("-")[1]}`]);
  });

  it("sends what names no session to the shared instance (lists are per instance)", async () => {
    const fake = fakeContainers();
    await routeRequest(request("POST", "/execute", { command: "id" }), SECRETS, fake.instances);
    await routeRequest(request("GET", "/sessions"), SECRETS, fake.instances);
    await routeRequest(request("GET", "/health"), SECRETS, fake.instances);
    await routeRequest(mcpCall("run_command", { command: "id" }), SECRETS, fake.instances);
    await routeRequest(mcpCall("list_sessions", {}), SECRETS, fake.instances);
    await routeRequest(
      request("POST", "/mcp", { jsonrpc: "2.0", id: 1, method: "initialize", params: {} }),
      SECRETS,
      fake.instances,
    );
    // Not inspected: larger than any body the service accepts; it answers 413 itself.
    const large = JSON.stringify({
      command: "x".repeat(MAX_INSPECTED_BODY_BYTES),
      sessionId: `s-ab-${HEX24}`,
    });
    await routeRequest(request("POST", "/execute", large), SECRETS, fake.instances);

    expect(fake.received.map((r) => r.instance)).toEqual(Array(7).fill("shared"));
    expect(fake.received[6]?.body).toBe(large);
    expect(fake.touched).toEqual([]);
  });

  it("reads a body sent without Content-Length only up to the bound, and forwards all of it", async () => {
    const fake = fakeContainers();
    const body = JSON.stringify({
      command: "y".repeat(3 * MAX_INSPECTED_BODY_BYTES),
      sessionId: `s-ab-${HEX24}`,
    });
    const bytes = new TextEncoder().encode(body);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 4096) controller.enqueue(bytes.slice(i, i + 4096));
        controller.close();
      },
    });
    const chunked = new Request("https://w.example/execute", {
      method: "POST",
      headers: { "X-API-Key": KEY, "Content-Type": "application/json" },
      body: stream,
      duplex: "half",
    } as RequestInit);
    await routeRequest(chunked, SECRETS, fake.instances);
    expect(fake.received[0]?.instance).toBe("shared");
    expect(fake.received[0]?.body).toBe(body);
  });

  it("creates MCP sessions (create_session) in an instance of their own too", async () => {
    const fake = fakeContainers();
    await routeRequest(mcpCall("create_session", {}), SECRETS, fake.instances, () => "feedc0de");
    expect(fake.started.get("session-feedc0de")?.INSTANCE_TAG).toBe("feedc0de");
    expect(fake.received.map((r) => `${r.instance} ${r.path}`)).toEqual(["session-feedc0de /mcp"]);
  });

  it("answers ids that are not session ids itself, 404 in the service's envelope, waking nothing", async () => {
    const fake = fakeContainers();
    const bad = [
      request("GET", "/sessions/bogus"),
      request("DELETE", `/sessions/s-UPPER-${HEX24}`),
      request("GET", `/sessions/s-${"a".repeat(17)}-${HEX24}`),
      request("GET", "/sessions/%E0%A4%A"),
    ];
    for (const req of bad) {
      const res = await routeRequest(req, SECRETS, fake.instances);
      expect(res.status).toBe(404);
      const body = (await res.json()) as {
        error: { code: string; message: string; hint: string };
        requestId: string;
      };
      expect(Object.keys(body).sort()).toEqual(["error", "requestId"]);
      expect(Object.keys(body.error).sort()).toEqual(["code", "hint", "message"]);
      expect(body.error.code).toBe("session_not_found");
      expect(body.requestId).toBe(res.headers.get("x-request-id"));
    }
    expect(fake.touched).toEqual([]);
    expect(fake.received).toEqual([]);
  });

  it("sends a body whose sessionId is not an id to the shared instance, which rejects it as input", async () => {
    const fake = fakeContainers();
    for (const req of [
      request("POST", "/execute", { command: "id", sessionId: "s-abc-123" }),
      mcpCall("run_command", { command: "ls", sessionId: "nope" }, "call-1"),
    ]) {
      await routeRequest(req, SECRETS, fake.instances);
    }
    expect(fake.received.map((r) => `${r.instance} ${r.path}`)).toEqual([
      "shared /execute",
      "shared /mcp",
    ]);
  });

  it("answers 404 for a well-formed id whose instance is not running, without starting it", async () => {
    const fake = fakeContainers();
    const res = await routeRequest(
      request("GET", `/sessions/s-0a0b0c-${HEX24}`),
      SECRETS,
      fake.instances,
    );
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "session_not_found",
    );
    expect(fake.touched).toEqual(["session-0a0b0c"]);
    expect(fake.started.size).toBe(0);
    expect(fake.received).toEqual([]);
  });

  it("starts or touches no session instance for a caller without a valid key: the shared instance answers 401", async () => {
    const fake = fakeContainers();
    const anonymous = {};
    const wrong = { "X-API-Key": "w".repeat(32) };
    await routeRequest(request("POST", "/sessions", {}, anonymous), SECRETS, fake.instances);
    await routeRequest(request("POST", "/sessions", {}, wrong), SECRETS, fake.instances);
    await routeRequest(
      request("GET", `/sessions/s-ab-${HEX24}`, undefined, anonymous),
      SECRETS,
      fake.instances,
    );
    await routeRequest(
      request("GET", "/sessions/bogus", undefined, anonymous),
      SECRETS,
      fake.instances,
    );
    await routeRequest(
      mcpCall("create_session", {}),
      { API_KEY: "other-key-0123456789" },
      fake.instances,
    );
    expect(fake.received.map((r) => r.instance)).toEqual(Array(5).fill("shared"));
    expect(fake.touched).toEqual([]);
  });

  it("accepts the key the ways the service does, and any of API_KEYS", async () => {
    const fake = fakeContainers();
    const other = "o".repeat(24);
    const secrets = { API_KEY: KEY, API_KEYS: ` ${other} ,${"p".repeat(20)}` };
    await routeRequest(
      request("POST", "/sessions", {}, { Authorization: `Bearer ${KEY}` }),
      secrets,
      fake.instances,
    );
    await routeRequest(
      request("POST", `/sessions?api_key=${KEY}`, {}, {}),
      secrets,
      fake.instances,
    );
    await routeRequest(
      request("POST", "/sessions", {}, { "X-API-Key": other }),
      secrets,
      fake.instances,
    );
    expect(fake.started.size).toBe(3);
    expect([...fake.started.values()][0]).toMatchObject({ API_KEYS: secrets.API_KEYS });
  });

  it("creates sessions for anyone when the service has no key (it is open then, too)", async () => {
    const fake = fakeContainers();
    await routeRequest(request("POST", "/sessions", {}, {}), {}, fake.instances);
    expect(fake.started.size).toBe(1);
  });

  it("answers 429 session_limit when no container instance is left (max_instances)", async () => {
    const fake = fakeContainers({
      // The runtime's message, as @cloudflare/containers rethrows it.
      startError: new Error(
        "There is no container instance that can be provided to this durable object",
      ),
    });
    const res = await routeRequest(request("POST", "/sessions", {}), SECRETS, fake.instances);
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("60");
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("session_limit");
    expect(fake.received).toEqual([]);
  });

  it("answers 503 container_unavailable when a session instance fails to start otherwise", async () => {
    const fake = fakeContainers({
      startError: new Error("container exited with unexpected exit code: 1"),
    });
    const res = await routeRequest(request("POST", "/sessions", {}), SECRETS, fake.instances);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "container_unavailable",
    );
  });
});

describe("the container's environment", () => {
  it("is the whole environment (start options replace the class's envVars), tag only for session instances", () => {
    expect(containerEnvVars({ API_KEY: KEY, REDIS_URL: "redis://r:6379" })).toEqual({
      API_KEY: KEY,
      TRUSTED_PROXY_HOPS: "1",
      REDIS_URL: "redis://r:6379",
    });
    expect(containerEnvVars({}, "abc")).toEqual({
      API_KEY: "",
      TRUSTED_PROXY_HOPS: "1",
      INSTANCE_TAG: "abc",
    });
  });

  it("reads a session instance's tag back from its name, and none from the shared instance's", () => {
    expect(tagOfInstanceName("session-a1b2")).toBe("a1b2");
    expect(tagOfInstanceName("cf-singleton-container")).toBeUndefined();
    expect(tagOfInstanceName(undefined)).toBeUndefined();
  });
});
