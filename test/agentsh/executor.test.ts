import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  agentshExecArgv,
  createAgentshExecutor,
  type DenialLookup,
  SESSION_WRAPPER,
} from "../../src/agentsh/executor.js";
import { SessionPool } from "../../src/agentsh/session-pool.js";
import { readSessionState } from "../../src/agentsh/session-state.js";
import type { Execution, GovernedResult } from "../../src/executor.js";
import { carriedEnv } from "../../src/sessions/session-registry.js";
import { TEST_ISOLATION } from "../support/isolation.js";
import { isRunning } from "../support/processes.js";

const FAKE_CLI = path.resolve("test/support/fake-agentsh");

const isolation = TEST_ISOLATION;

function executorWith(
  options: {
    recreate?: (id: string, workspace?: string, policy?: string) => Promise<void>;
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
            fsRules: ["--fs=rx:/usr"],
          },
          workspace: "/workspace",
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
      executorWith({ launcher: true }).run({ command: "true", timeoutMs: 5_000, owner: "key-1" }),
    );
    const { request } = JSON.parse(result.stdout.text) as {
      request: { command: string; args: string[] };
    };
    expect(request.command).toBe("/opt/bin/agentsh-launch");
    expect(request.args).toEqual([
      "--uid=47002", // the pool hands out its last free slot first: unit-2
      "--gid=47000",
      "--umask=007",
      // A plain command gets its key's scratch dir (per uid) and the shared workspace.
      "--scratch=/home/gexec/key-1.47002",
      "--fs=rx:/usr",
      "--bind-ports=8000-8001",
      "--fs=rwx:/workspace",
      "--fs=rwx:/home/gexec/key-1.47002",
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

  it("runs a tenant's plain command in the slot's session of that tenant, created with its workspace and policy", async () => {
    const dir = await scratchDir();
    const marker = path.join(dir, "created");
    const recreated: unknown[] = [];
    const executor = executorWith({
      launcher: true,
      recreate: async (...args) => {
        recreated.push(args);
        writeFileSync(marker, "");
      },
    });
    const tenant = {
      name: "ci",
      policy: "strict",
      workspaceRoot: "/sessions/tenant-ci",
      slots: 1,
    };
    const result = await resultOf(
      executor.run({
        command: `session-missing:${marker}`,
        timeoutMs: 5_000,
        owner: "tenant-ci",
        tenant,
      }),
    );
    expect(recreated).toEqual([["unit-2-ci", "/sessions/tenant-ci", "strict"]]);
    expect(result.sessionId).toBe("unit-2-ci");
    const { argv, request } = JSON.parse(result.stdout.text) as {
      argv: string[];
      request: { args: string[] };
    };
    expect(argv.at(-1)).toBe("unit-2-ci");
    // The launcher grants the tenant's workspace and a scratch dir of the tenant's.
    expect(request.args).toContain("--fs=rwx:/sessions/tenant-ci");
    expect(request.args).not.toContain("--fs=rwx:/workspace");
    expect(request.args.find((a) => a.startsWith("--scratch="))).toMatch(
      /^--scratch=.*\/tenant-ci\.\d+$/,
    );
  });

  it("sends a tenant's command, its denial lookup and a session's re-creation to the server of the tenant's policy", async () => {
    const recorded: unknown[] = [];
    const executor = createAgentshExecutor({
      bin: FAKE_CLI,
      serverUrl: "http://127.0.0.1:18080",
      serverUrlFor: (policy) =>
        policy === "strict" ? "http://127.0.0.1:18081" : "http://127.0.0.1:18080",
      apiKey: undefined,
      outputLimitBytes: 64 * 1024,
      sessions: new SessionPool("unit", 2, 2),
      recreateSession: async () => {},
      recordedDenials: async (...args) => {
        recorded.push(args.at(-1));
        return [];
      },
    });
    const tenant = (policy: string) => ({
      name: policy === "strict" ? "ci" : "dev",
      policy,
      workspaceRoot: `/sessions/tenant-${policy}`,
      slots: 1,
    });
    const serverOf = async (policy: string) => {
      const result = await resultOf(
        executor.run({ command: "true", timeoutMs: 5_000, tenant: tenant(policy) }),
      );
      return (JSON.parse(result.stdout.text) as { env: Record<string, string> }).env.AGENTSH_SERVER;
    };
    expect(await serverOf("strict")).toBe("http://127.0.0.1:18081");
    expect(await serverOf("default")).toBe("http://127.0.0.1:18080");
    expect(recorded).toEqual(["strict", "default"]);
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

  it("tells the caller each phase's time, in order (the answer's Server-Timing)", async () => {
    const phases: [string, number][] = [];
    await resultOf(
      executorWith().run({
        command: "echo",
        timeoutMs: 5_000,
        onPhase: (phase, ms) => phases.push([phase, ms]),
      }),
    );
    expect(phases.map(([phase]) => phase)).toEqual([
      "queue",
      "limits",
      "agentsh",
      "after",
      "evidence",
    ]);
    for (const [, ms] of phases) expect(ms).toBeGreaterThanOrEqual(0);
    // The CLI's run is most of it (a process start), the bookkeeping around it is not.
    const agentsh = phases.find(([phase]) => phase === "agentsh")?.[1] ?? 0;
    expect(agentsh).toBeGreaterThan(0);
  });

  it("a refusal with no recorded denial stays what was observed ('ok' here), never a guessed block", async () => {
    const result = await resultOf(executorWith().run({ command: "refused", timeoutMs: 5_000 }));
    expect(result).toMatchObject({ outcome: "ok", decision: null });
  });
});

describe("agentshExecArgv: sessions and streaming", () => {
  const context = {
    agentshSessionId: "s-local-0123456789abcdef01234567",
    workspace: "/workspace/sessions/s-local-0123456789abcdef01234567",
    cwd: "/workspace/sessions/s-local-0123456789abcdef01234567/src",
    env: { FOO: "bar baz", GEXEC_RUN: "forged-by-an-earlier-command" },
  };
  const stateFile = "/tmp/gexec-home/47002/.governed-session-1";
  const requestOf = (argv: string[]) =>
    JSON.parse(argv[argv.indexOf("--json") + 1] ?? "null") as {
      command: string;
      args: string[];
      timeout: string;
      env: Record<string, string>;
    };

  it("wraps a session's command: state file, workspace, cwd and command as separate argv elements", () => {
    const nasty = `cd "$(echo src)"; export X='a b'`;
    const argv = agentshExecArgv(context.agentshSessionId, nasty, 5_000, "run-1", [], {
      session: { context, stateFile },
    });
    expect(argv.slice(0, 6)).toEqual(["exec", "--output", "json", "--events", "summary", "--json"]);
    expect(argv.at(-1)).toBe(context.agentshSessionId);
    const request = requestOf(argv);
    expect(request.command).toBe("/bin/bash");
    expect(request.args).toEqual([
      "-c",
      SESSION_WRAPPER,
      "governed-session",
      stateFile,
      context.workspace,
      context.cwd,
      nasty,
    ]);
    expect(request.timeout).toBe("5000ms");
  });

  it("passes the session's variables with the run marker last (never the session's own value)", () => {
    const request = requestOf(
      agentshExecArgv("s", "true", 5_000, "run-1", [], { session: { context, stateFile } }),
    );
    expect(request.env).toEqual({ FOO: "bar baz", GEXEC_RUN: "run-1" });
    expect(Object.keys(request.env).at(-1)).toBe("GEXEC_RUN");
  });

  it("behind the launcher, the wrapper is the program the launcher execs", () => {
    const launcher = ["/opt/bin/agentsh-launch", "--uid=47002", "--tag=t", "--"];
    const request = requestOf(
      agentshExecArgv("s", "pwd", 5_000, "run-1", launcher, { session: { context, stateFile } }),
    );
    expect(request.command).toBe("/opt/bin/agentsh-launch");
    expect(request.args).toEqual([
      "--uid=47002",
      "--tag=t",
      "--",
      "/bin/bash",
      "-c",
      SESSION_WRAPPER,
      "governed-session",
      stateFile,
      context.workspace,
      context.cwd,
      "pwd",
    ]);
  });

  it("asks for agentsh's streaming exec with --stream --output shell (no JSON result, no events)", () => {
    const argv = agentshExecArgv("unit-1", "ls", 5_000, "run-1", [], { stream: true });
    expect(argv.slice(0, 5)).toEqual(["exec", "--stream", "--output", "shell", "--json"]);
    expect(argv).not.toContain("--events");
    expect(argv.at(-1)).toBe("unit-1");
    expect(requestOf(argv)).toEqual({
      command: "/bin/bash",
      args: ["-c", "ls"],
      timeout: "5000ms",
      env: { GEXEC_RUN: "run-1" },
    });
  });

  it("without a session, the command is plain /bin/bash -c and no other variable is passed", () => {
    const request = requestOf(agentshExecArgv("unit-1", "ls", 5_000, "run-1"));
    expect(request.args).toEqual(["-c", "ls"]);
    expect(request.env).toEqual({ GEXEC_RUN: "run-1" });
  });
});

describe("the session wrapper, run by bash as agentsh would start it", () => {
  /** Runs a session command through the wrapper (no agentsh), then reads its record. */
  async function runWrapped(
    command: string,
    session: { workspace: string; cwd: string; env: Record<string, string> },
  ) {
    const stateFile = path.join(await scratchDir(), ".governed-session-test");
    const argv = agentshExecArgv("s", command, 5_000, "run-1", [], {
      session: { context: { agentshSessionId: "s", ...session }, stateFile },
    });
    const request = JSON.parse(argv[argv.indexOf("--json") + 1] ?? "null") as {
      command: string;
      args: string[];
      env: Record<string, string>;
    };
    const child = spawnSync(request.command, request.args, {
      env: { PATH: "/usr/bin:/bin", ...request.env },
      // Not a pipe on stdin: bash takes a socket there for a remote shell and reads ~/.bashrc.
      stdio: ["ignore", "pipe", "pipe"],
      encoding: "utf8",
      timeout: 5_000,
    });
    const state = await readSessionState(stateFile, undefined, 0);
    return { child, state };
  }

  it("records where the command ended and what it exported; the next command starts there", async () => {
    const workspace = await scratchDir();
    mkdirSync(path.join(workspace, "src"));
    const first = await runWrapped(
      "cd src && export FOO='a b' && unset GONE; NOT_EXPORTED=1; echo \"hi [$#]\"",
      { workspace, cwd: workspace, env: { GONE: "x", KEPT: "k" } },
    );
    expect(first.child.status).toBe(0);
    expect(first.child.stdout).toBe("hi [0]\n");
    expect(first.child.stderr).toBe("");
    const state = first.state;
    expect(state?.cwd).toBe(path.join(workspace, "src"));
    expect(state?.exported).toMatchObject({ FOO: "a b", KEPT: "k", GEXEC_RUN: "run-1" });
    expect(state?.exported).not.toHaveProperty("GONE");
    expect(state?.exported).not.toHaveProperty("NOT_EXPORTED");
    expect(state?.initial).toMatchObject({ GONE: "x", KEPT: "k" });
    if (!state) throw new Error("no record");
    const carried = carriedEnv({ GONE: "x", KEPT: "k" }, state, () => false, new Set());
    expect(carried).toEqual({ FOO: "a b", KEPT: "k" });

    const second = await runWrapped('pwd; echo "$FOO"', {
      workspace,
      cwd: state.cwd,
      env: carried,
    });
    expect(second.child.stdout).toBe(`${path.join(workspace, "src")}\na b\n`);
  });

  it("keeps the command's exit status and still records", async () => {
    const workspace = await scratchDir();
    const { child, state } = await runWrapped("cd /; exit 3", {
      workspace,
      cwd: workspace,
      env: {},
    });
    expect(child.status).toBe(3);
    expect(state?.cwd).toBe("/");
  });

  it("starts in the workspace when the cwd no longer exists", async () => {
    const workspace = await scratchDir();
    const { child } = await runWrapped("pwd", {
      workspace,
      cwd: path.join(workspace, "deleted"),
      env: {},
    });
    expect(child.stdout).toBe(`${workspace}\n`);
  });

  it("leaves no record when the command replaces the shell (the session keeps its state)", async () => {
    const workspace = await scratchDir();
    const { child, state } = await runWrapped("cd /; exec true", {
      workspace,
      cwd: workspace,
      env: {},
    });
    expect(child.status).toBe(0);
    expect(state).toBeNull();
  });

  it("a command that puts a directory where its record goes gets no record, and nothing fails", async () => {
    const workspace = await scratchDir();
    const { child, state } = await runWrapped(
      'rm -f "$__governed_state"; mkdir "$__governed_state"',
      { workspace, cwd: workspace, env: {} },
    );
    expect(child.status).toBe(0);
    expect(state).toBeNull();
  });
});

describe("agentsh executor: sessions and streaming (against the stand-in CLI)", () => {
  const context = {
    agentshSessionId: "s-local-0123456789abcdef01234567",
    workspace: "/workspace/sessions/s-local-0123456789abcdef01234567",
    cwd: "/workspace/sessions/s-local-0123456789abcdef01234567",
    env: { FOO: "1" },
  };

  it("runs a session's command in its own agentsh session, through the wrapper", async () => {
    const windows: string[] = [];
    const result = await resultOf(
      executorWith({
        recorded: async (sessionId) => {
          windows.push(sessionId);
          return [];
        },
      }).run({ command: "echo", timeoutMs: 5_000, session: context }),
    );
    const { argv, request } = JSON.parse(result.stdout.text) as {
      argv: string[];
      request: { args: string[]; env: Record<string, string> };
    };
    expect(argv.at(-1)).toBe(context.agentshSessionId);
    expect(request.args.slice(0, 3)).toEqual(["-c", SESSION_WRAPPER, "governed-session"]);
    expect(request.args[3]).toMatch(new RegExp(`^${tmpdir()}/\\.governed-session-[0-9a-f-]{36}$`));
    expect(request.args.slice(4)).toEqual([context.workspace, context.cwd, "echo"]);
    expect(request.env).toEqual({ FOO: "1", GEXEC_RUN: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(result.sessionId).toBe(context.agentshSessionId);
    // The stand-in runs no wrapper: no record, so the session keeps its state.
    expect(result.sessionState).toBeNull();
    expect(windows).toEqual([context.agentshSessionId]);
  });

  it("behind the launcher, a session's command gets its own directory and scratch dir, where the record goes", async () => {
    const result = await resultOf(
      executorWith({ launcher: true }).run({ command: "true", timeoutMs: 5_000, session: context }),
    );
    const { request } = JSON.parse(result.stdout.text) as { request: { args: string[] } };
    const scratch = `/home/gexec/${context.agentshSessionId}`;
    expect(request.args).toContain(`--scratch=${scratch}`);
    expect(request.args).toContain(`--fs=rwx:${context.workspace}`);
    expect(request.args).toContain(`--fs=rwx:${scratch}`);
    expect(request.args).not.toContain("--fs=rwx:/workspace");
    const wrapper = request.args.indexOf(SESSION_WRAPPER);
    expect(request.args[wrapper + 2]).toMatch(
      new RegExp(`^${scratch}/\\.governed-session-[0-9a-f-]{36}$`),
    );
  });

  it("commands without a session have no sessionState at all", async () => {
    const result = await resultOf(executorWith().run({ command: "echo", timeoutMs: 5_000 }));
    expect(result).not.toHaveProperty("sessionState");
  });

  it("streams: --stream argv, output passed on as it arrives, the wrapper's preamble never", async () => {
    const chunks: Array<[string, string]> = [];
    const result = await resultOf(
      executorWith().run({
        command: "echo",
        timeoutMs: 5_000,
        onOutput: (stream, text) => chunks.push([stream, text]),
      }),
    );
    const stdout = chunks
      .filter(([s]) => s === "stdout")
      .map(([, t]) => t)
      .join("");
    const stderr = chunks
      .filter(([s]) => s === "stderr")
      .map(([, t]) => t)
      .join("");
    expect(stderr).toBe("own stderr\n");
    expect(stdout).toBe(result.stdout.text);
    const { argv } = JSON.parse(stdout) as { argv: string[] };
    expect(argv.slice(0, 4)).toEqual(["exec", "--stream", "--output", "shell"]);
    expect(result).toMatchObject({
      outcome: "ok",
      exitCode: 0,
      sandboxed: true,
      stderr: { text: "own stderr\n", truncated: false, totalBytes: 11 },
    });
  });

  it("streams: agentsh's exit 124 at the time limit is timed_out", async () => {
    const started = Date.now();
    const result = await resultOf(
      executorWith().run({ command: "hang", timeoutMs: 100, onOutput: () => {} }),
    );
    expect(result).toMatchObject({ outcome: "timed_out", exitCode: 124, sandboxed: true });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("streams: an unreachable server is 'nothing ran: unavailable'", async () => {
    const execution = await executorWith().run({
      command: "unreachable",
      timeoutMs: 5_000,
      onOutput: () => {},
    });
    expect(execution).toMatchObject({ kind: "not_run", reason: "unavailable" });
  });
});
