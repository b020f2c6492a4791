import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { describe, expect, expectTypeOf, it } from "vitest";
import {
  type Client,
  createClient,
  type ExecuteAnswer,
  type ExecuteStreamEvent,
  GovernedExecutorError,
  type SessionAnswer,
} from "../src/client.js";
import { listen } from "../src/listen.js";
import type { ExecuteBody, SessionInfo } from "../src/sessions/contract.js";
import { blockedResult, FakeExecutor, gate, notRun } from "./support/fake-executor.js";
import { buildTestApp, type TestAppOptions } from "./support/test-app.js";

const KEY = "client-test-key-0123456789";

/** The typed client talking to a test app (fakes only at the process boundary). */
function clientFor(options: TestAppOptions = {}, apiKey: string | null = KEY) {
  const { app } = buildTestApp({ env: { API_KEY: KEY }, ...options });
  return createClient("http://service.test", {
    fetch: async (input, init) => app.request(input, init),
    ...(apiKey === null ? {} : { apiKey }),
  });
}

/** What a call threw, as the client's error. */
async function refusal(call: Promise<unknown>): Promise<GovernedExecutorError> {
  const error = await call.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(GovernedExecutorError);
  return error as GovernedExecutorError;
}

async function collect(events: AsyncIterable<ExecuteStreamEvent>) {
  const seen: ExecuteStreamEvent[] = [];
  for await (const event of events) seen.push(event);
  return seen;
}

describe("the client's types come from the routes", () => {
  it("types requests and answers as the routes declare them", () => {
    expectTypeOf<ExecuteAnswer>().toEqualTypeOf<ExecuteBody>();
    expectTypeOf<SessionAnswer["session"]>().toEqualTypeOf<SessionInfo>();
    expectTypeOf<ExecuteStreamEvent["event"]>().toEqualTypeOf<
      "started" | "stdout" | "stderr" | "heartbeat" | "approval_required" | "result" | "error"
    >();
    expectTypeOf<
      Extract<ExecuteStreamEvent, { event: "result" }>["data"]
    >().toEqualTypeOf<ExecuteBody>();
    expectTypeOf<Extract<ExecuteStreamEvent, { event: "stdout" }>["data"]>().toEqualTypeOf<{
      text: string;
    }>();
    expectTypeOf<Client["sessions"]["delete"]>().returns.resolves.toHaveProperty("deleted");
    const client = createClient("http://service.test");
    // @ts-expect-error: a command is a string
    void (() => client.execute({ command: 1 }));
    // @ts-expect-error: a field the route does not take
    void (() => client.execute({ command: "id", cwd: "/" }));
    // @ts-expect-error: not a route
    void client.api.nowhere;
  });
});

describe("createClient", () => {
  it("runs a command; a blocked one is an answer with its rule", async () => {
    const executor = new FakeExecutor().respond((request) =>
      request.command === "sudo id" ? blockedResult() : undefined,
    );
    const client = clientFor({ executor });
    const ran = await client.execute({ command: "echo hi" });
    expect(ran.result).toMatchObject({ outcome: "ok", exitCode: 0, stdout: "ran: echo hi\n" });
    const blocked = await client.execute({ command: "sudo id" });
    expect(blocked.result.blocked).toBe(true);
    expect(blocked.result.decision?.rule).toBe("deny-privilege-escalation");
  });

  it("sends the API key, and throws the envelope without it", async () => {
    const error = await refusal(clientFor({}, null).execute({ command: "id" }));
    expect(error.status).toBe(401);
    expect(error.code).toBe("api_key_missing");
    expect(error.envelope?.error.hint).toContain("X-API-Key");
    expect(error.message).toMatch(/^api_key_missing: /);
  });

  it("throws validation problems by field, and Retry-After when busy", async () => {
    const invalid = await refusal(clientFor().execute({ command: " " }));
    expect(invalid.status).toBe(400);
    expect(invalid.code).toBe("validation_failed");
    expect(invalid.envelope?.error.details).toEqual([
      { path: "command", message: "command must not be empty" },
    ]);
    const busy = new FakeExecutor().respond(() => notRun("busy"));
    const refused = await refusal(clientFor({ executor: busy }).execute({ command: "id" }));
    expect([refused.status, refused.code, refused.retryAfter]).toEqual([503, "busy", 2]);
  });

  it("explains a command without running it", async () => {
    const executor = new FakeExecutor();
    const verdict = await clientFor({ executor }).explain({ command: "sudo id" });
    expect(verdict).toMatchObject({ verdict: "blocked", executed: false });
    expect(executor.commands).toEqual([]);
  });

  it("creates, lists, uses, reads and ends a session", async () => {
    const client = clientFor();
    const { session } = await client.sessions.create();
    expect(session.id).toMatch(/^s-[a-z0-9]+-[0-9a-f]{24}$/);
    expect((await client.sessions.list()).sessions.map((s) => s.id)).toEqual([session.id]);
    const ran = await client.execute({ command: "pwd", sessionId: session.id });
    expect(ran.session?.id).toBe(session.id);
    expect((await client.sessions.get(session.id)).session.commands).toBe(1);
    const ended = await client.sessions.delete(session.id);
    expect(ended).toMatchObject({ deleted: true, session: { id: session.id } });
    const gone = await refusal(client.sessions.get(session.id));
    expect([gone.status, gone.code]).toEqual([404, "session_not_found"]);
  });

  it("streams a command's output as events, ending with the result", async () => {
    const executor = new FakeExecutor().respond((request) => {
      request.onOutput?.("stdout", "first\n");
      request.onOutput?.("stderr", "careful\n");
      return undefined;
    });
    const events = await collect(clientFor({ executor }).stream({ command: "echo first" }));
    expect(events.map((e) => e.event)).toEqual(["started", "stdout", "stderr", "result"]);
    expect(events[1]).toEqual({ event: "stdout", data: { text: "first\n" } });
    const last = events.at(-1);
    if (last?.event !== "result") throw new Error("no result event");
    expect(last.data.result.stdout).toBe("ran: echo first\n");
  });

  it("streams a refusal after the stream opened as the last event; one before it is thrown", async () => {
    const client = clientFor();
    const elsewhere = `s-elsewhere-${"0".repeat(24)}`;
    const events = await collect(client.stream({ command: "id", sessionId: elsewhere }));
    expect(events.map((e) => e.event)).toEqual(["started", "error"]);
    const last = events.at(-1);
    if (last?.event !== "error") throw new Error("no error event");
    expect(last.data.error.code).toBe("session_on_other_instance");
    const invalid = await refusal(collect(client.stream({ command: "" })));
    expect([invalid.status, invalid.code]).toEqual([400, "validation_failed"]);
    const unauthenticated = await refusal(collect(clientFor({}, null).stream({ command: "id" })));
    expect([unauthenticated.status, unauthenticated.code]).toEqual([401, "api_key_missing"]);
  });

  it("stops a streamed command when the caller aborts", async () => {
    const started = gate();
    const executor = new FakeExecutor().respond(async (request) => {
      started.open();
      await new Promise((resolve) => request.signal?.addEventListener("abort", resolve));
      return notRun("canceled");
    });
    const controller = new AbortController();
    const events = clientFor({ executor }).stream(
      { command: "sleep 60" },
      { signal: controller.signal },
    );
    const first = await events.next();
    expect(first.value).toMatchObject({ event: "started" });
    await started.promise;
    controller.abort();
    const rest: ExecuteStreamEvent[] = [];
    try {
      for await (const event of events) rest.push(event);
    } catch {
      // Over HTTP, fetch ends the body with an AbortError; in process the stream ends itself.
    }
    expect(executor.commands[0]?.signal?.aborted).toBe(true);
    expect(rest.map((event) => event.event)).not.toContain("result");
  });

  it("reads health, also when commands are refused (503)", async () => {
    expect((await clientFor().health()).status).toBe("ok");
    const down = await clientFor({ agentshProblem: "connection refused" }).health();
    expect(down).toMatchObject({ status: "unavailable", reason: expect.any(String) });
  });

  it("reads the audit trail with typed filters", async () => {
    const client = clientFor();
    await client.execute({ command: "echo audited" });
    const page = await client.audit({ limit: 5, outcome: "ok" });
    expect(page.entries[0]).toMatchObject({ command: "echo audited", outcome: "ok" });
  });

  it("is the package's export governed-executor/client", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    expect(pkg.exports["./client"]).toEqual({
      types: "./dist/client.d.ts",
      default: "./dist/client.js",
    });
    // tsc -p tsconfig.build.json compiles src/client.ts to dist/client.js, with declarations.
    const build = JSON.parse(
      readFileSync(new URL("../tsconfig.build.json", import.meta.url), "utf8"),
    );
    expect(build.compilerOptions).toMatchObject({
      rootDir: "src",
      outDir: "dist",
      declaration: true,
    });
    // Only types come from the service: at run time the client needs hono and eventsource-parser.
    const source = readFileSync(new URL("../src/client.ts", import.meta.url), "utf8");
    const runtime = [...source.matchAll(/^import (?!type )[^;]*from "([^"]+)"/gm)].map((m) => m[1]);
    expect(runtime).toEqual(["eventsource-parser/stream", "hono/client"]);
  });
});

describe("createClient over HTTP (loopback)", () => {
  /** The app behind production's server on 127.0.0.1 (port 0), for `run`; then closed. */
  async function overHttp(options: TestAppOptions, run: (client: Client) => Promise<void>) {
    const { app } = buildTestApp({ env: { API_KEY: KEY }, socketAddress: "127.0.0.1", ...options });
    const server = listen(app, { port: 0, hostname: "127.0.0.1" });
    await new Promise<void>((resolve, reject) => {
      if (server.listening) resolve();
      server.once("listening", () => resolve());
      server.once("error", reject);
    });
    const { port } = server.address() as AddressInfo;
    try {
      await run(createClient(`http://127.0.0.1:${port}`, { apiKey: KEY }));
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  it("streams events that arrive in pieces, and ends a stream the caller aborts", async () => {
    const release = gate();
    const executor = new FakeExecutor().respond(async (request) => {
      if (request.command === "sleep 60") {
        await new Promise((resolve) => request.signal?.addEventListener("abort", resolve));
        return notRun("canceled");
      }
      request.onOutput?.("stdout", "one\n");
      await release.promise;
      request.onOutput?.("stdout", "two\n");
      return undefined;
    });
    await overHttp({ executor }, async (client) => {
      const seen: ExecuteStreamEvent[] = [];
      for await (const event of client.stream({ command: "count" })) {
        seen.push(event);
        if (event.event === "stdout" && event.data.text === "one\n") release.open();
      }
      expect(seen.map((e) => e.event)).toEqual(["started", "stdout", "stdout", "result"]);

      const controller = new AbortController();
      const events = client.stream({ command: "sleep 60" }, { signal: controller.signal });
      expect((await events.next()).value).toMatchObject({ event: "started" });
      controller.abort();
      await expect(events.next()).rejects.toThrow(/abort/i);
      const deadline = Date.now() + 5_000;
      while (!executor.commands[1]?.signal?.aborted && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(executor.commands[1]?.signal?.aborted).toBe(true);
    });
  });
});
