import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecuteBody, SessionInfo } from "../../src/sessions/contract.js";
import { skipWhen } from "../support/skip-when.js";
import {
  ARTIFACTS_DIR,
  BASE_URL,
  expectAllowed,
  expectBlocked,
  memoryOf,
  REMOTE,
} from "./harness.js";

/**
 * The MCP endpoint against the real stack, through the SDK's own client over HTTP. Every HTTP
 * exchange of the run is kept, API key redacted, in test/artifacts/mcp-transcript.jsonl.
 */
const KEY = process.env.E2E_API_KEY ?? "";
const TRANSCRIPT = join(ARTIFACTS_DIR, "mcp-transcript.jsonl");

const transcript: string[] = [];
const redact = (text: string) => (KEY ? text.replaceAll(KEY, "[redacted]") : text);

/** What the client sent and got, as one JSON line (bodies parsed when they are JSON). */
function record(request: Request, requestBody: string, response: Response, responseBody: string) {
  const headers = (h: Headers, names: string[]) =>
    Object.fromEntries(names.flatMap((n) => (h.has(n) ? [[n, redact(h.get(n) ?? "")]] : [])));
  const parse = (text: string) => {
    try {
      return text === "" ? undefined : JSON.parse(redact(text));
    } catch {
      return redact(text);
    }
  };
  transcript.push(
    JSON.stringify({
      request: {
        method: request.method,
        path: new URL(request.url).pathname,
        headers: headers(request.headers, [
          "content-type",
          "accept",
          "mcp-protocol-version",
          "x-api-key",
          "authorization",
        ]),
        body: parse(requestBody),
      },
      response: {
        status: response.status,
        headers: headers(response.headers, ["content-type", "allow", "www-authenticate"]),
        body: parse(responseBody),
      },
    }),
  );
}

/** The SDK client's fetch: each request with a deadline, and recorded. */
async function recordingFetch(url: string | URL, init?: RequestInit): Promise<Response> {
  const deadline = AbortSignal.timeout(60_000);
  const signal = init?.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
  const request = new Request(url, { ...init, signal });
  const requestBody = await request.clone().text();
  const response = await fetch(request);
  // JSON answers only (the endpoint never streams), so reading a copy whole is safe.
  const responseBody = await response.clone().text();
  record(request, requestBody, response, responseBody);
  return response;
}

async function connect(headers: Record<string, string>) {
  const client = new Client({ name: "governed-executor-e2e", version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${BASE_URL}/mcp`), {
      fetch: recordingFetch,
      requestInit: { headers },
    }),
  );
  return client;
}

interface ToolAnswer<T> {
  isError?: boolean;
  content: Array<{ type: string; text: string }>;
  structuredContent: T;
}

let client: Client;
let memoryBefore: { peakMiB: number; rssMiB: number } | undefined;

async function call<T = ExecuteBody>(name: string, args: Record<string, unknown> = {}) {
  return (await client.callTool({ name, arguments: args })) as unknown as ToolAnswer<T>;
}

describe("MCP endpoint (POST /mcp) with the SDK's client", () => {
  beforeAll(async () => {
    if (!KEY) throw new Error("E2E_API_KEY is not set: the client needs the stack's API key");
    if (!REMOTE) memoryBefore = memoryOf(10000);
    client = await connect({ "X-API-Key": KEY });
  });

  afterAll(async () => {
    await client?.close();
    mkdirSync(ARTIFACTS_DIR, { recursive: true });
    writeFileSync(TRANSCRIPT, transcript.map((line) => `${line}\n`).join(""));
  });

  it("lists the governed tools", async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      "close_session",
      "create_session",
      "get_session",
      "list_sessions",
      "run_command",
    ]);
  });

  it("run_command: sudo id is blocked by deny-privilege-escalation, as a normal result", async () => {
    const answer = await call("run_command", { command: "sudo id" });
    expect(answer.isError).toBeFalsy();
    expectBlocked(answer.structuredContent.result, "deny-privilege-escalation", "command");
    expect(answer.content[0]?.text).toMatch(/^BLOCKED by policy rule 'deny-privilege-escalation'/);
  });

  it("run_command: echo hi runs", async () => {
    const answer = await call("run_command", { command: "echo hi" });
    expect(answer.isError).toBeFalsy();
    expectAllowed(answer.structuredContent.result, "hi\n");
    expect(answer.content[0]?.text).toBe("exit 0\n--- stdout\nhi");
  });

  it("a session keeps its working directory between commands, then closes", async () => {
    const created = await call<{ session: SessionInfo }>("create_session");
    expect(created.isError, created.content[0]?.text).toBeFalsy();
    const { id, workspace } = created.structuredContent.session;

    const cd = await call("run_command", { command: "mkdir -p sub && cd sub", sessionId: id });
    expectAllowed(cd.structuredContent.result);
    expect(cd.structuredContent.session).toMatchObject({ id, cwd: `${workspace}/sub` });

    const pwd = await call("run_command", { command: "pwd", sessionId: id });
    expectAllowed(pwd.structuredContent.result, `${workspace}/sub\n`);

    const listed = await call<{ sessions: SessionInfo[] }>("list_sessions");
    expect(listed.structuredContent.sessions.map((s) => s.id)).toContain(id);
    const got = await call<{ session: SessionInfo }>("get_session", { sessionId: id });
    expect(got.structuredContent.session).toMatchObject({
      id,
      cwd: `${workspace}/sub`,
      commands: 2,
    });

    const closed = await call<{ deleted: boolean }>("close_session", { sessionId: id });
    expect(closed.structuredContent.deleted).toBe(true);
    const gone = await call<{ error: { code: string } }>("get_session", { sessionId: id });
    expect(gone.isError).toBe(true);
    expect(gone.structuredContent.error.code).toBe("session_not_found");
  });

  it("refuses a client without the API key (401)", async () => {
    const error = await connect({}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StreamableHTTPError);
    expect((error as StreamableHTTPError).code).toBe(401);
  });

  it(
    "what MCP costs in resident memory stays inside the budget [local only]",
    skipWhen("remote"),
    () => {
      const after = memoryOf(10000);
      expect(after.peakMiB).toBeLessThan(150);
      console.log(
        `[measured] MCP (SDK loaded on first use, ${transcript.length} HTTP exchanges): app RSS ${memoryBefore?.rssMiB} → ${after.rssMiB} MiB, peak ${memoryBefore?.peakMiB} → ${after.peakMiB} MiB`,
      );
    },
  );
});
