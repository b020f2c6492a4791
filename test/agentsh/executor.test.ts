import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createAgentshExecutor, type DenialLookup } from "../../src/agentsh/executor.js";
import { SessionPool } from "../../src/agentsh/session-pool.js";
import type { Execution, GovernedResult } from "../../src/executor.js";
import { isRunning } from "../support/processes.js";

const FAKE_CLI = path.resolve("test/support/fake-agentsh");

const isolation = {
  version: 1 as const,
  identities: {
    uid_drop: "when-permitted" as const,
    group: "gexec",
    gid: 47000,
    user_prefix: "gexec-",
    first_uid: 47001,
    count: 2,
    umask: "007",
    scratch_root: "/tmp/gexec-home",
  },
  network: { bind_tcp_ports: [{ lo: 8000, hi: 8001 }], udp: false, netlink_route: true },
};

function executorWith(
  options: {
    recreate?: (id: string) => Promise<void>;
    apiKey?: string;
    recorded?: DenialLookup;
    launcher?: boolean;
  } = {},
) {
  return createAgentshExecutor({
    bin: FAKE_CLI,
    serverUrl: "http://127.0.0.1:18080",
    apiKey: options.apiKey,
    outputLimitBytes: 64 * 1024,
    sessions: new SessionPool("unit", 2, 2),
    recreateSession: options.recreate ?? (async () => {}),
    recordedDenials: options.recorded ?? (async () => []),
    evidenceWaitMs: 200,
    ...(options.launcher
      ? {
          launcher: {
            path: "/opt/bin/agentsh-launch",
            isolation,
            bestEffort: false,
            uidDrop: true,
          },
        }
      : {}),
  });
}

const scratch: string[] = [];
afterEach(() => {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A temporary directory removed after the test. */
async function scratchDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "gexec-"));
  scratch.push(dir);
  return dir;
}

/** The result of an execution that must have produced one. */
async function resultOf(execution: Promise<Execution>): Promise<GovernedResult> {
  const done = await execution;
  if (done.kind !== "result") throw new Error(`no result: ${done.reason}: ${done.detail}`);
  return done.result;
}

/** The fake CLI reports what it received as the command's stdout. */
async function received(command: string, apiKey?: string) {
  const result = await resultOf(
    executorWith(apiKey ? { apiKey } : {}).run({ command, timeoutMs: 5_000 }),
  );
  expect(result.outcome).toBe("ok");
  return JSON.parse(result.stdout.text) as {
    argv: string[];
    env: Record<string, string>;
    request: Record<string, unknown>;
  };
}

describe("agentsh executor (against a stand-in CLI)", () => {
  it("passes the command as one argv element inside the JSON request, never through a shell of ours", async () => {
    const nasty = `echo "$(id)" ; rm -rf / && 'quoted' \`tick\` $HOME`;
    const { argv, request } = await received(nasty);
    expect(argv.slice(0, 6)).toEqual(["exec", "--output", "json", "--events", "summary", "--json"]);
    expect(argv.at(-1)).toBe("unit-2");
    expect(request).toEqual({
      command: "/bin/bash",
      args: ["-c", nasty],
      timeout: "5000ms",
      env: { GEXEC_RUN: expect.stringMatching(/^[0-9a-f-]{36}$/) },
    });
  });

  it("with the launcher: agentsh starts agentsh-launch with the slot's identity, which execs /bin/bash -c", async () => {
    const result = await resultOf(
      executorWith({ launcher: true }).run({ command: "true", timeoutMs: 5_000 }),
    );
    const { request } = JSON.parse(result.stdout.text) as {
      request: { command: string; args: string[] };
    };
    expect(request.command).toBe("/opt/bin/agentsh-launch");
    expect(request.args).toEqual([
      "--uid=47002", // the pool hands out its last free slot first: unit-2
      "--gid=47000",
      "--umask=007",
      "--scratch=/tmp/gexec-home/47002",
      "--bind-ports=8000-8001",
      "--netlink-route",
      expect.stringMatching(/^--tag=[0-9a-f-]{36}$/),
      "--",
      "/bin/bash",
      "-c",
      "true",
    ]);
  });

  it("reports a launcher refusal as blocked by launcher-refused (layer launcher), nothing ran", async () => {
    const result = await resultOf(
      executorWith({ launcher: true }).run({ command: "launcher-refuses", timeoutMs: 5_000 }),
    );
    expect(result.outcome).toBe("blocked");
    expect(result.decision).toEqual({
      rule: "launcher-refused",
      kind: "other",
      layer: "launcher",
      operation: "landlock-net",
      target: null,
      message: "the kernel's Landlock ABI is 3",
    });
  });

  it("does not take a command's own copy of the refusal line for one (it lacks the run tag)", async () => {
    const result = await resultOf(
      executorWith({ launcher: true }).run({ command: "forged-refusal", timeoutMs: 5_000 }),
    );
    expect(result.outcome).toBe("failed");
    expect(result.decision).toBeNull();
  });

  it("gives the CLI an explicit minimal environment: none of the service's secrets", async () => {
    process.env.API_KEY = "service-secret-api-key";
    process.env.AGENTSH_SESSION_ID = "hijack";
    process.env.SOME_TOKEN = "tok-123";
    try {
      const { env } = await received("true", "agentsh-credential-0123456789");
      const ours = Object.keys(env).filter(
        (key) => !["PWD", "SHLVL", "_", "PREAMBLE"].includes(key),
      ); // set by bash and the stand-in
      expect(ours.sort()).toEqual(
        [
          "AGENTSH_API_KEY",
          "AGENTSH_CLIENT_TIMEOUT",
          "AGENTSH_NO_AUTO",
          "AGENTSH_SERVER",
          "LANG",
          "PATH",
        ].sort(),
      );
      expect(env.AGENTSH_NO_AUTO).toBe("1");
      expect(env.AGENTSH_CLIENT_TIMEOUT).toBe("65000ms");
      expect(JSON.stringify(env)).not.toContain("service-secret-api-key");
      expect(JSON.stringify(env)).not.toContain("tok-123");
    } finally {
      delete process.env.API_KEY;
      delete process.env.AGENTSH_SESSION_ID;
      delete process.env.SOME_TOKEN;
    }
  });

  it("kills the CLI when the caller aborts, and reports no result", async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 200);
    const execution = await executorWith().run({
      command: "hang",
      timeoutMs: 30_000,
      signal: controller.signal,
    });
    expect(execution).toMatchObject({ kind: "not_run", reason: "canceled" });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("at the time limit, ends the command's processes so agentsh can report the timeout", async () => {
    const started = Date.now();
    const result = await resultOf(executorWith().run({ command: "hang", timeoutMs: 100 }));
    expect(result.outcome).toBe("timed_out");
    expect(result.exitCode).toBe(124);
    // The reaper fired at limit + 300 ms, long before the CLI backstop (limit + 5 s).
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("ends background processes a command left behind", async () => {
    const dir = await scratchDir();
    const pidFile = path.join(dir, "pid");
    const result = await resultOf(
      executorWith().run({ command: `background:${pidFile}`, timeoutMs: 5_000 }),
    );
    expect(result.outcome).toBe("ok");
    const pid = Number(readFileSync(pidFile, "utf8"));
    expect(isRunning(pid)).toBe(false);
  });

  it("re-creates a missing session once and then runs the command", async () => {
    const dir = await scratchDir();
    const marker = path.join(dir, "created");
    const recreated: string[] = [];
    const executor = executorWith({
      recreate: async (id) => {
        recreated.push(id);
        writeFileSync(marker, "");
      },
    });
    const result = await resultOf(
      executor.run({ command: `session-missing:${marker}`, timeoutMs: 5_000 }),
    );
    expect(recreated).toEqual(["unit-2"]);
    expect(existsSync(marker)).toBe(true);
    expect(result.outcome).toBe("ok");
  });

  it("reports an unreachable server as 'nothing ran: unavailable' with the reason", async () => {
    const execution = await executorWith().run({ command: "unreachable", timeoutMs: 5_000 });
    expect(execution).toMatchObject({
      kind: "not_run",
      reason: "unavailable",
      detail: expect.stringMatching(/not reachable.*connection refused/),
    });
  });

  it("reports 'nothing ran: busy' when every slot is taken and the queue is full", async () => {
    const executor = executorWith();
    const controller = new AbortController();
    // Two slots and two queue places (executorWith): four hanging commands fill them.
    const hanging = Array.from({ length: 4 }, () =>
      executor.run({ command: "hang", timeoutMs: 30_000, signal: controller.signal }),
    );
    try {
      expect(await executor.run({ command: "true", timeoutMs: 1_000 })).toMatchObject({
        kind: "not_run",
        reason: "busy",
      });
    } finally {
      controller.abort();
      await Promise.all(hanging);
    }
  });

  it("reports a missing CLI binary as unavailable", async () => {
    const executor = createAgentshExecutor({
      bin: "/nonexistent/agentsh",
      serverUrl: "http://127.0.0.1:18080",
      apiKey: undefined,
      outputLimitBytes: 1024,
      sessions: new SessionPool("unit", 1, 0),
      recreateSession: async () => {},
      recordedDenials: async () => [],
    });
    expect(await executor.run({ command: "true", timeoutMs: 1_000 })).toMatchObject({
      kind: "not_run",
      reason: "unavailable",
    });
  });

  it("strips the sandbox wrapper's preamble from stderr and records that the sandbox was applied", async () => {
    const result = await resultOf(executorWith().run({ command: "echo", timeoutMs: 5_000 }));
    expect(result.stderr.text).toBe("own stderr\n");
    expect(result.sandboxed).toBe(true);
    const unsandboxed = await resultOf(
      executorWith().run({ command: "unsandboxed", timeoutMs: 5_000 }),
    );
    expect(unsandboxed.sandboxed).toBe(false);
  });

  it("reads denials agentsh recorded for the session during the command and reports them as blocked", async () => {
    const windows: Array<{ sessionId: string; since: Date; until: Date }> = [];
    const before = Date.now();
    const execution = executorWith({
      recorded: async (sessionId, since, until) => {
        windows.push({ sessionId, since, until });
        return [
          {
            rule: "deny-sensitive-files",
            kind: "file",
            operation: "open",
            target: "/etc/shadow",
            message: null,
          },
        ];
      },
    }).run({ command: "cat /etc/shadow", timeoutMs: 5_000 });
    const result = await resultOf(execution);
    expect(result).toMatchObject({
      outcome: "blocked",
      exitCode: 0,
      decision: { rule: "deny-sensitive-files", target: "/etc/shadow" },
    });
    expect(windows).toHaveLength(1);
    expect(windows[0]?.sessionId).toBe("unit-2");
    expect(windows[0]?.since.getTime()).toBeLessThanOrEqual(before);
    expect(windows[0]?.until.getTime()).toBeGreaterThan(before);
  });

  it("waits for the event store's evidence when the command shows a refusal (evidence arriving late is still found)", async () => {
    let reads = 0;
    const denial = {
      rule: "deny-privilege-escalation",
      kind: "command" as const,
      operation: "execve",
      target: "/usr/bin/sudo",
      message: null,
    };
    const result = await resultOf(
      executorWith({
        recorded: async () => (++reads >= 3 ? [denial] : []),
      }).run({ command: "refused", timeoutMs: 5_000 }),
    );
    expect(reads).toBe(3);
    expect(result).toMatchObject({ outcome: "blocked", decision: denial });
  });

  it("reads the event store once, without waiting, when nothing was refused", async () => {
    let reads = 0;
    const started = Date.now();
    const result = await resultOf(
      executorWith({
        recorded: async () => {
          reads++;
          return [];
        },
      }).run({ command: "echo", timeoutMs: 5_000 }),
    );
    expect(reads).toBe(1);
    expect(result.outcome).toBe("ok");
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("a refusal with no recorded denial stays what was observed ('ok' here), never a guessed block", async () => {
    const result = await resultOf(executorWith().run({ command: "refused", timeoutMs: 5_000 }));
    expect(result).toMatchObject({ outcome: "ok", decision: null });
  });
});
