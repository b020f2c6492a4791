import { randomUUID } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import type {
  Decision,
  Execution,
  Executor,
  GovernedCommand,
  GovernedResult,
  Phase,
  SessionContext,
} from "../executor.js";
import type { CommandLimits, Limits, Place } from "../limits/limits.js";
import { withRecordedDenials } from "./denials.js";
import {
  type CliOutcome,
  interpretCliOutcome,
  interpretStreamedCli,
  WrapperPreambleFilter,
} from "./interpret.js";
import {
  type CommandPlace,
  type LauncherSettings,
  launcherArgv,
  launcherRefusal,
  scratchName,
  slotUid,
} from "./launcher.js";
import { killMarkedProcesses, markPids, RUN_MARKER } from "./process-reaper.js";
import { PoolSaturatedError, type SessionLease, type SessionPool } from "./session-pool.js";
import { readSessionState } from "./session-state.js";

/**
 * Looks up denials agentsh recorded in its event store (nested execve, file, unix socket): the
 * store of the server of `policy` (the session's; undefined: the default server's).
 */
export type DenialLookup = (
  sessionId: string,
  since: Date,
  until: Date,
  policy?: string,
) => Promise<Decision[]>;

/**
 * The one module that runs the agentsh CLI (and the only importer of execa). Every command goes
 * through `agentsh exec` as an argv array; the caller's text is never interpreted by a shell of
 * ours, only by the governed `/bin/bash -c` that agentsh starts.
 */

export interface AgentshCliOptions {
  /** Absolute path of the `agentsh` binary. */
  bin: string;
  serverUrl: string;
  /**
   * The agentsh server of a session's policy (a tenant policy's own server, src/tenants/
   * policy-servers.ts); default: `serverUrl` for every policy.
   */
  serverUrlFor?: (policy: string | undefined) => string;
  /** Sent to the agentsh server as X-API-Key (via the CLI's environment, never argv). */
  apiKey: string | undefined;
  outputLimitBytes: number;
  sessions: SessionPool;
  /** Called when agentsh says the session does not exist (expired, server restarted). */
  recreateSession: (sessionId: string, workspace?: string, policy?: string) => Promise<void>;
  /** Ends an agentsh session (a caller's session was deleted or expired); `policy` as above. */
  destroySession?: (sessionId: string, policy?: string) => Promise<void>;
  /** Reads denials agentsh keeps only in its event store (nested commands, files, sockets). */
  recordedDenials: DenialLookup;
  /**
   * How long to keep looking in the event store for the denial behind a refusal the command
   * itself reported (EACCES/EPERM on its stderr, exit 126). agentsh writes events through
   * queues, so under load a denial can reach the store after the command returned.
   */
  evidenceWaitMs?: number;
  /**
   * agentsh-launch and the bundle's isolation settings: every command then runs as
   * `<launcher> [options] -- /bin/bash -c <command>` under its slot's uid. Without it (stand-in
   * CLIs in unit tests) the command is `/bin/bash -c <command>` as agentsh starts it.
   */
  launcher?: LauncherSettings;
  /** The shared workspace of commands without a session (the launcher grants it to them). */
  workspace?: string;
  /** Run the CLI under this unprivileged uid and gid (isolation.yaml identities.client_uid). */
  cliUid?: number;
  /** Per-command resource limits (with the launcher). */
  limits?: Limits;
}

/** Time the CLI gets beyond the command's own limit to report agentsh's timeout result. */
const CLI_GRACE_MS = 5_000;
/** After its limit, agentsh has killed the command's child; we then end whatever is left. */
const REAP_AFTER_TIMEOUT_MS = 300;
/** agentsh caps each stream at 1 MiB; JSON escaping can grow that several-fold. */
const CLI_MAX_BUFFER_BYTES = 16 * 1024 * 1024;
const SESSION_MISSING = /session[^\n]*not found|404 Not Found|no such session/i;
/** See `evidenceWaitMs`. */
const EVIDENCE_WAIT_MS = 1_000;
const EVIDENCE_POLL_MS = 25;
/** What a refused syscall looks like from inside the command (glibc's strerror, bash's 126). */
const REFUSAL_SIGN = /Permission denied|Operation not permitted/;

export function createAgentshExecutor(options: AgentshCliOptions): Executor {
  return {
    openSession: (sessionId, workspace, policy) =>
      options.recreateSession(sessionId, workspace, policy),
    closeSession: async (sessionId) => options.destroySession?.(sessionId),
    async run(request: GovernedCommand): Promise<Execution> {
      const lap = phaseTimer(request.onPhase);
      let lease: SessionLease;
      try {
        lease = await options.sessions.acquire(
          request.signal,
          request.owner,
          request.tenant?.slots,
        );
        lap("queue");
      } catch (error) {
        const reason = error instanceof PoolSaturatedError ? "busy" : "canceled";
        return { kind: "not_run", reason, detail: (error as Error).message };
      }
      const approvedSession = request.agentshPolicy
        ? `${lease.sessionId}-approved-${randomUUID().slice(0, 8)}`
        : null;
      let commandEnded: (() => Promise<void>) | undefined;
      // The policy of the agentsh session this command runs in, which picks its server: agentsh
      // applies network rules, env_policy and limits from its server's policy, not the session's.
      const sessionPolicy = approvedSession ? request.agentshPolicy : request.tenant?.policy;
      try {
        // A caller's session has an agentsh session of its own (one command at a time: the
        // session registry refuses a second); other commands use the slot's session. Either way
        // it is ours alone until release, so every denial it records from here on belongs to
        // this command.
        // A tenant's plain commands: the slot's agentsh session of that tenant (its workspace and
        // policy), created on first use.
        const tenant = request.session ? undefined : request.tenant;
        // An approved command gets a fresh agentsh session of its own, created with the
        // policy that allows its rule (agentsh judges its nested execs, files and sockets with
        // the session's policy), and ended afterwards.
        const sessionId =
          approvedSession ??
          request.session?.agentshSessionId ??
          (tenant ? `${lease.sessionId}-${tenant.name}` : lease.sessionId);
        if (approvedSession) {
          try {
            await options.recreateSession(
              approvedSession,
              request.session?.workspace ?? tenant?.workspaceRoot,
              request.agentshPolicy,
            );
          } catch (error) {
            return { kind: "not_run", reason: "unavailable", detail: `${error}` };
          }
        }
        const since = new Date(Date.now() - 5);
        // Known only to the launcher's argv: its refusal line carries it (see launcherRefusal).
        const tag = randomUUID();
        // A session with an identity of its own runs as that uid; other commands as the slot's.
        const identity = request.session?.identity ?? lease.slot;
        const place = options.launcher
          ? commandPlace(options.launcher, options.workspace, request, identity)
          : undefined;
        let endCommand = () => {};
        let limits: CommandLimits | undefined;
        try {
          limits =
            options.limits && place
              ? await options.limits.forCommand({
                  // One command at a time per slot: its cgroup is reused (a tenant with limits
                  // of its own has its own per slot, set up with them).
                  slot: tenant?.limits ? `slot-${lease.slot}-${tenant.name}` : `slot-${lease.slot}`,
                  ...(tenant?.limits ? { tighter: tenant.limits } : {}),
                  places: placesOf(options.limits, place, request.session !== undefined),
                  stop: () => endCommand(),
                })
              : undefined;
        } catch (error) {
          // No limits, no command (fail closed).
          return { kind: "not_run", reason: "unavailable", detail: `resource limits: ${error}` };
        }
        lap("limits");
        const prefix =
          options.launcher && place
            ? launcherArgv(options.launcher, identity, tag, place, limits?.launcherArgs)
            : [];
        const stateFile = request.session ? sessionStateFile(place) : undefined;
        commandEnded = request.onAgentshSession?.(sessionId);
        const serverUrl = options.serverUrlFor?.(sessionPolicy) ?? options.serverUrl;
        const run = () =>
          runCli({ ...options, serverUrl }, sessionId, request, prefix, stateFile, (end) => {
            endCommand = end;
          });
        let cli: CliRun;
        try {
          cli = await run();
          if (!cli.canceled && cli.exitCode !== 0 && SESSION_MISSING.test(cli.stderr)) {
            // Nothing ran: agentsh rejected the unknown session before starting the command.
            // (A tenant's caller session too comes back with the tenant's policy.)
            await options.recreateSession(
              sessionId,
              request.session?.workspace ?? tenant?.workspaceRoot,
              sessionPolicy,
            );
            cli = await run();
          }
        } catch (error) {
          await limits?.finish(null).catch(() => {});
          throw error;
        }
        lap("agentsh");
        const hitLimit = (await limits?.finish(cli.exitCode)) ?? null;
        const sessionState = stateFile
          ? await readSessionState(stateFile, options.launcher, identity)
          : undefined;
        const interpreted = cli.streamed
          ? interpretStreamedCli(cli, request.timeoutMs, options.outputLimitBytes)
          : interpretCliOutcome(cli, options.outputLimitBytes);
        const execution: Execution =
          interpreted.kind === "result"
            ? {
                kind: "result",
                result: {
                  ...interpreted.result,
                  sessionId,
                  ...(sessionState !== undefined ? { sessionState } : {}),
                },
              }
            : interpreted;
        lap("after");
        // Nothing started (pre-check denial, no result): no nested denials to look for.
        if (execution.kind === "not_run" || execution.result.sandboxed === null) return execution;
        const { result } = execution;
        const refused = options.launcher
          ? launcherRefusal(result.exitCode, result.stdout.text, result.stderr.text, tag)
          : null;
        if (refused) {
          // The command never started: the launcher could not apply a layer it was asked for.
          return {
            kind: "result",
            result: { ...result, outcome: "blocked", decision: refused, denials: [refused] },
          };
        }
        const recorded = await recordedDenials(
          options,
          sessionId,
          sessionPolicy,
          since,
          mayHaveBeenRefused(result) && !hitLimit
            ? (options.evidenceWaitMs ?? EVIDENCE_WAIT_MS)
            : 0,
        );
        lap("evidence");
        const governed = withRecordedDenials(result, recorded);
        if (!hitLimit) return { kind: "result", result: governed };
        // A resource limit stopped it, on the kernel's evidence: that is the first decision.
        return {
          kind: "result",
          result: {
            ...governed,
            outcome: "blocked",
            decision: hitLimit,
            denials: [hitLimit, ...governed.denials],
          },
        };
      } finally {
        await commandEnded?.().catch(() => {});
        if (approvedSession) {
          await options.destroySession?.(approvedSession, sessionPolicy).catch(() => {});
        }
        lease.release();
      }
    },
  };
}

/** Reports the time since the previous lap (or the start) as the named phase. */
function phaseTimer(onPhase: GovernedCommand["onPhase"]): (phase: Phase) => void {
  let mark = performance.now();
  return (phase) => {
    const now = performance.now();
    onPhase?.(phase, now - mark);
    mark = now;
  };
}

/**
 * Whether the command's own output shows that something was refused. Only a reason to wait
 * for agentsh's evidence, never evidence itself: "blocked" comes from the event store alone.
 */
function mayHaveBeenRefused(result: GovernedResult): boolean {
  return result.exitCode === 126 || REFUSAL_SIGN.test(result.stderr.text);
}

/**
 * Denials agentsh recorded for the session since the command started. Read at once; when the
 * command showed signs of a refusal and none is recorded yet, read again until `waitMs` passed.
 */
async function recordedDenials(
  options: AgentshCliOptions,
  sessionId: string,
  policy: string | undefined,
  since: Date,
  waitMs: number,
): Promise<Decision[]> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const recorded = await options.recordedDenials(sessionId, since, new Date(), policy);
    if (recorded.length > 0 || Date.now() >= deadline) return recorded;
    await sleep(EVIDENCE_POLL_MS);
  }
}

/**
 * Exactly the argv we hand to the CLI; exported so tests can pin it. The request goes as JSON
 * (the only way to give the command an environment): `[launcher options --] /bin/bash -c
 * <command>` with the run marker the reaper looks for, and agentsh's own time limit.
 */
export function agentshExecArgv(
  sessionId: string,
  command: string,
  timeoutMs: number,
  runId: string,
  launcher: readonly string[] = [],
  extras: {
    /** Run in a caller's session: the wrapper restores and records its state. */
    session?: { context: SessionContext; stateFile: string };
    /** agentsh's streaming exec: output as it arrives, the child's exit code as the CLI's. */
    stream?: boolean;
  } = {},
): string[] {
  const [program = "/bin/bash", ...launcherArgs] = launcher;
  const { session } = extras;
  const shell = session
    ? [
        "/bin/bash",
        "-c",
        SESSION_WRAPPER,
        "governed-session",
        session.stateFile,
        session.context.workspace,
        session.context.cwd,
        command,
      ]
    : ["/bin/bash", "-c", command];
  const request = {
    command: program,
    args: launcher.length > 0 ? [...launcherArgs, ...shell] : shell.slice(1),
    timeout: `${timeoutMs}ms`,
    // The session's variables first: the run marker is never theirs to replace.
    env: { ...(session?.context.env ?? {}), [RUN_MARKER]: runId },
  };
  const output = extras.stream
    ? ["--stream", "--output", "shell"]
    : ["--output", "json", "--events", "summary"];
  return ["exec", ...output, "--json", JSON.stringify(request), sessionId];
}

/**
 * The shell around a session's command (argv: state file, workspace, cwd, command). It starts
 * in the session's cwd, runs the command in this same shell (so `cd` and `export` take effect)
 * and, on exit, writes where it ended and what it exported, NUL-separated, for the service to
 * carry into the next command. A command that `exec`s away or sets its own EXIT trap leaves no
 * record; the session then keeps its previous state.
 */
export const SESSION_WRAPPER = [
  "__governed_state=$1",
  'env -0 >"$__governed_state.initial" 2>/dev/null',
  `trap '__governed_status=$?; { printf "%s\\0" "$PWD"; env -0; } >"$__governed_state" 2>/dev/null; exit "$__governed_status"' EXIT`,
  'cd -- "$3" 2>/dev/null || cd -- "$2" || exit 1',
  "__governed_command=$4",
  "shift 4",
  'eval "$__governed_command"',
].join("\n");

/**
 * The CLI's whole environment. The service's own environment (API keys, tokens) is not
 * inherited; AGENTSH_SESSION_ID is never set because it would override the session argument.
 */
export function agentshCliEnv(
  options: Pick<AgentshCliOptions, "bin" | "serverUrl" | "apiKey">,
  timeoutMs: number,
): Record<string, string> {
  const env: Record<string, string> = {
    PATH: [path.dirname(options.bin), "/usr/local/bin", "/usr/bin", "/bin"].join(":"),
    LANG: "C.UTF-8",
    AGENTSH_SERVER: options.serverUrl,
    // No auto-start of a server and no auto-created sessions: sessions are made up front.
    AGENTSH_NO_AUTO: "1",
    // Above the command's limit: a client timeout makes the CLI re-send, running it twice.
    AGENTSH_CLIENT_TIMEOUT: `${timeoutMs + 60_000}ms`,
  };
  if (options.apiKey) env.AGENTSH_API_KEY = options.apiKey;
  return env;
}

/** What one run of the CLI did, and whether it ran agentsh's streaming exec. */
type CliRun = CliOutcome & { streamed: boolean };

async function runCli(
  options: AgentshCliOptions,
  sessionId: string,
  request: GovernedCommand,
  launcher: readonly string[],
  stateFile: string | undefined,
  /** Receives the function that ends the command's processes (the disk watchdog uses it). */
  onStart?: (end: () => void) => void,
): Promise<CliRun> {
  const started = performance.now();
  const runId = randomUUID();
  // Before the command exists: its processes will all get pids after this mark.
  const since = await markPids();
  const reap = () => void killMarkedProcesses(runId, { since });
  onStart?.(reap);
  // Descendants that hold the output pipe keep agentsh's exec open past its timeout; ending
  // them lets agentsh answer with its timeout result. A caller who leaves ends them at once.
  const deadline = setTimeout(reap, request.timeoutMs + REAP_AFTER_TIMEOUT_MS);
  request.signal?.addEventListener("abort", reap, { once: true });
  const streamed = request.onOutput !== undefined;
  const argv = agentshExecArgv(sessionId, request.command, request.timeoutMs, runId, launcher, {
    ...(request.session && stateFile ? { session: { context: request.session, stateFile } } : {}),
    stream: streamed,
  });
  const cliOptions = {
    env: agentshCliEnv(options, request.timeoutMs),
    extendEnv: false,
    stdin: "ignore",
    reject: false,
    timeout: request.timeoutMs + CLI_GRACE_MS,
    forceKillAfterDelay: 2_000,
    stripFinalNewline: false,
    ...(request.signal ? { cancelSignal: request.signal } : {}),
    // Not the service's own uid: where commands keep uid 0, they could otherwise signal another
    // request's CLI (they hold no capability, so another uid is out of their reach).
    ...(options.cliUid !== undefined ? { uid: options.cliUid, gid: options.cliUid } : {}),
  } as const;
  const finish = () => {
    clearTimeout(deadline);
    request.signal?.removeEventListener("abort", reap);
  };
  let outcome: Omit<CliRun, "durationMs">;
  if (request.onOutput) {
    // Streaming: the output is read as it arrives and kept only up to the limit (the CLI
    // passes everything through, so execa's buffer would otherwise grow without bound).
    const stdout = new BoundedText(options.outputLimitBytes);
    const stderr = new BoundedText(options.outputLimitBytes + STDERR_PREAMBLE_ALLOWANCE);
    const onOutput = request.onOutput;
    // agentsh-unixwrap's own lines come first on stderr; callers never see them.
    const preamble = new WrapperPreambleFilter();
    const subprocess = execa(options.bin, argv, { ...cliOptions, buffer: false });
    subprocess.stdout?.setEncoding("utf8");
    subprocess.stderr?.setEncoding("utf8");
    subprocess.stdout?.on("data", (text: string) => {
      stdout.add(text);
      onOutput("stdout", text);
    });
    subprocess.stderr?.on("data", (text: string) => {
      stderr.add(text);
      const rest = preamble.feed(text);
      if (rest !== "") onOutput("stderr", rest);
    });
    const result = await subprocess.finally(finish);
    const held = preamble.end();
    if (held !== "") onOutput("stderr", held);
    outcome = {
      exitCode: result.exitCode ?? null,
      stdout: stdout.text,
      stderr: stderr.text,
      stdoutBytes: stdout.totalBytes,
      stderrBytes: stderr.totalBytes,
      timedOut: result.timedOut,
      canceled: result.isCanceled,
      streamed: true,
    };
  } else {
    const result = await execa(options.bin, argv, {
      ...cliOptions,
      maxBuffer: CLI_MAX_BUFFER_BYTES,
    }).finally(finish);
    outcome = {
      exitCode: result.exitCode ?? null,
      stdout: typeof result.stdout === "string" ? result.stdout : "",
      stderr: typeof result.stderr === "string" ? result.stderr : "",
      timedOut: result.timedOut,
      canceled: result.isCanceled,
      streamed: false,
    };
  }
  // Nothing a command started outlives its request (background jobs included).
  await killMarkedProcesses(runId, { since });
  return { ...outcome, durationMs: Math.round(performance.now() - started) };
}

/** agentsh-unixwrap's lines precede the command's own stderr and are removed later. */
const STDERR_PREAMBLE_ALLOWANCE = 4096;

/** Text kept up to a byte limit, with the total seen. */
class BoundedText {
  private parts: string[] = [];
  private keptBytes = 0;
  totalBytes = 0;

  constructor(private readonly limitBytes: number) {}

  add(text: string) {
    const bytes = Buffer.byteLength(text);
    this.totalBytes += bytes;
    if (this.keptBytes >= this.limitBytes) return;
    this.parts.push(text);
    this.keptBytes += bytes;
  }

  get text(): string {
    return this.parts.join("");
  }
}

/**
 * Where a command may write: its session's directory, or the shared workspace; and its own
 * scratch HOME/TMPDIR (the session's, or its API key's).
 */
function commandPlace(
  launcher: LauncherSettings,
  sharedWorkspace: string | undefined,
  request: GovernedCommand,
  identity: number,
): CommandPlace {
  const workspace = request.session?.workspace ?? request.tenant?.workspaceRoot ?? sharedWorkspace;
  if (!workspace) throw new Error("the launcher needs the shared workspace for plain commands");
  const name = scratchName(
    {
      ...(request.session ? { sessionId: request.session.agentshSessionId } : {}),
      ...(request.owner !== undefined ? { owner: request.owner } : {}),
    },
    slotUid(launcher.isolation, identity),
    launcher.uidDrop,
  );
  return { workspace, scratch: path.join(launcher.isolation.identities.scratch_root, name) };
}

/** Where a command writes, with the disk quota each place has (isolation.yaml limits). */
function placesOf(limits: Limits, place: CommandPlace, inSession: boolean): Place[] {
  const { disk_mb } = limits.settings;
  const MiB = 1024 * 1024;
  return inSession
    ? [{ paths: [place.workspace, place.scratch], quotaBytes: disk_mb.session * MiB }]
    : [
        { paths: [place.workspace], quotaBytes: disk_mb.workspace * MiB },
        { paths: [place.scratch], quotaBytes: disk_mb.session * MiB },
      ];
}

/** Where the session wrapper records its state: the command's own scratch dir. */
function sessionStateFile(place: CommandPlace | undefined): string {
  return path.join(place?.scratch ?? os.tmpdir(), `.governed-session-${randomUUID()}`);
}
