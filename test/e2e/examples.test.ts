import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { describe, expect, it } from "vitest";
import type { ExecuteBody } from "../../src/sessions/contract.js";
import { skipWhen } from "../support/skip-when.js";
import { BASE_URL, expectAllowed, expectBlocked } from "./harness.js";

/**
 * The integration examples (examples/, docs/examples.md) against the real stack, each as an
 * integrator runs it: the MCP clients' configuration files parsed and resolved the way each client
 * does, then used, unchanged, by the MCP SDK's client; the Node and Python agent loops run as
 * programs with the stack's URL and key, their output checked.
 */
const KEY = process.env.E2E_API_KEY ?? "";
const run = promisify(execFile);

// --- MCP client configuration ------------------------------------------------------------------

interface McpSettings {
  url: string;
  headers: Record<string, string>;
}

/** Each client's own variable syntax, as its documentation defines it. */
const CLIENTS = {
  // Claude Code: ${VAR} and ${VAR:-default} from the environment, in url and headers.
  "claude-code": {
    file: "examples/mcp/claude-code/.mcp.json",
    servers: (json: ConfigFile) => json.mcpServers,
    expand: (text: string, env: Env) =>
      text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (whole, name, fallback) =>
        env[name] !== undefined && env[name] !== "" ? (env[name] ?? "") : (fallback ?? whole),
      ),
  },
  // Cursor: ${env:NAME}.
  cursor: {
    file: "examples/mcp/cursor/.cursor/mcp.json",
    servers: (json: ConfigFile) => json.mcpServers,
    expand: (text: string, env: Env) =>
      text.replace(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name) => env[name] ?? ""),
  },
  // VS Code: ${input:ID}, prompted once (the API key); the URL is the local default.
  vscode: {
    file: "examples/mcp/vscode/.vscode/mcp.json",
    servers: (json: ConfigFile) => json.servers,
    expand: (text: string, env: Env) =>
      text.replace(/\$\{input:([^}]+)\}/g, (whole, id) => env[`input:${id}`] ?? whole),
  },
} as const;
type Env = Record<string, string | undefined>;
interface ConfigFile {
  mcpServers?: Record<string, ServerEntry>;
  servers?: Record<string, ServerEntry>;
}
interface ServerEntry {
  type?: string;
  url: string;
  headers?: Record<string, string>;
}

function settingsOf(client: keyof typeof CLIENTS, env: Env): McpSettings {
  const { file, servers, expand } = CLIENTS[client];
  const entry = servers(JSON.parse(readFileSync(file, "utf8")) as ConfigFile)?.[
    "governed-executor"
  ];
  if (!entry) throw new Error(`${file} has no governed-executor server`);
  // Streamable HTTP: "http" where the client asks for a type (Cursor infers it from url).
  if (entry.type !== undefined) expect(entry.type).toBe("http");
  return {
    url: expand(entry.url, env),
    headers: Object.fromEntries(
      Object.entries(entry.headers ?? {}).map(([name, value]) => [name, expand(value, env)]),
    ),
  };
}

async function connect({ url, headers }: McpSettings): Promise<Client> {
  const client = new Client({ name: "governed-executor-examples", version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers, signal: AbortSignal.timeout(60_000) },
    }),
  );
  return client;
}

type ToolAnswer = { isError?: boolean; structuredContent: ExecuteBody };

describe("examples/mcp: each client's configuration, used by the MCP SDK's client", () => {
  const env: Env = {
    GOVERNED_EXECUTOR_URL: BASE_URL,
    GOVERNED_EXECUTOR_API_KEY: KEY,
    "input:governed-executor-api-key": KEY,
  };

  for (const name of ["claude-code", "cursor", "vscode"] as const) {
    // The VS Code file names the local default URL; a deployment is another URL.
    const only = name === "vscode" ? [skipWhen("remote")] : [];
    it(
      `${name}: connects, lists run_command, runs echo and is blocked on sudo`,
      ...only,
      async () => {
        const settings = settingsOf(name, env);
        expect(settings.url).toBe(`${BASE_URL}/mcp`);
        expect(settings.headers).toEqual({ "X-API-Key": KEY });
        const client = await connect(settings);
        try {
          const { tools } = await client.listTools();
          expect(tools.map((t) => t.name)).toContain("run_command");
          const echo = (await client.callTool({
            name: "run_command",
            arguments: { command: "echo from-mcp-config" },
          })) as unknown as ToolAnswer;
          expectAllowed(echo.structuredContent.result, "from-mcp-config\n");
          const sudo = (await client.callTool({
            name: "run_command",
            arguments: { command: "sudo id" },
          })) as unknown as ToolAnswer;
          expectBlocked(sudo.structuredContent.result, "deny-privilege-escalation", "command");
        } finally {
          await client.close();
        }
        // The key in the headers is what lets it in: the same file without it is refused.
        const error = await connect({ ...settings, headers: {} }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(StreamableHTTPError);
        expect((error as StreamableHTTPError).code).toBe(401);
      },
    );
  }
});

// --- the agent loops -----------------------------------------------------------------------------

/** The same checks for both loops: they print the same lines. */
function expectAgentLoopOutput(stdout: string) {
  expect(stdout).toMatch(/^session s-[a-z0-9]+-[0-9a-f]+$/m);
  // The session kept the directory and the exported variable from the command before.
  expect(stdout).toMatch(/^ {2}hello from \/\S+\/project$/m);
  // Streamed: each tick arrived on its own, about 0.3 s apart, before the command ended.
  const ticks = [...stdout.matchAll(/^ {2}\[stdout (\S+)\] tick (\d)$/gm)].map((m) =>
    Date.parse(m[1] ?? ""),
  );
  expect(ticks).toHaveLength(3);
  expect((ticks[2] ?? 0) - (ticks[0] ?? 0)).toBeGreaterThanOrEqual(400);
  expect(stdout).toMatch(/^(?: {2}\[stdout \S+\] )?42$/m);
  // Blocked, named by its rule, and the agent went on without sudo.
  expect(stdout).toMatch(/^ {2}BLOCKED by deny-privilege-escalation: /m);
  expect(stdout).toMatch(/^\$ id -u\n {2}\d+\n {2}exit 0;/m);
  expect(stdout).toMatch(/^session s-\S+ closed: true$/m);
  const transcript = JSON.parse(stdout.match(/^transcript (.*)$/m)?.[1] ?? "null") as {
    outcome: string;
    rule?: string | null;
  }[];
  expect(transcript.map((t) => t.outcome)).toEqual(["ok", "ok", "ok", "blocked", "ok"]);
  expect(transcript[3]?.rule).toBe("deny-privilege-escalation");
}

const loopEnv = { ...process.env, GOVERNED_EXECUTOR_URL: BASE_URL, GOVERNED_EXECUTOR_API_KEY: KEY };

describe("examples/node: the agent loop on the typed client", () => {
  it("runs a session, streams, and recovers from a blocked command", async () => {
    const { stdout } = await run(
      process.execPath,
      ["--import", "tsx", "examples/node/agent-loop.ts"],
      { env: loopEnv, timeout: 90_000 },
    );
    expectAgentLoopOutput(stdout);
  }, 120_000);
});

describe("examples/python: the agent loop over plain HTTP (requests)", () => {
  it("runs a session, streams, and recovers from a blocked command", async () => {
    const { stdout } = await run("python3", ["examples/python/agent_loop.py"], {
      env: loopEnv,
      timeout: 90_000,
    });
    expectAgentLoopOutput(stdout);
  }, 120_000);
});
