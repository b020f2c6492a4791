import type { Execution, GovernedResult, StreamOutput } from "../executor.js";
import { collectDenials } from "./denials.js";
import { type ExecResponse, parseExecResponse } from "./wire.js";

/** What one run of the CLI means: a result, or why there is none. */

/** What the CLI process did, as the executor observed it. */
export interface CliOutcome {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Our own backstop timer killed the CLI. */
  timedOut: boolean;
  /** The caller went away and we killed the CLI. */
  canceled: boolean;
  durationMs: number;
  /** Streamed runs keep only the first bytes of each stream; these are the full sizes. */
  stdoutBytes?: number;
  stderrBytes?: number;
}

/** agentsh exit code for a server-side command timeout. */
const AGENTSH_TIMEOUT_EXIT = 124;

export function interpretCliOutcome(cli: CliOutcome, outputLimitBytes: number): Execution {
  if (cli.canceled) {
    return notRun("canceled", "the request was canceled before the command finished");
  }
  if (cli.timedOut) {
    return { kind: "result", result: timedOutResult(cli) };
  }
  const response = parseExecResponse(cli.stdout);
  if (!response) return notRun("unavailable", describeCliFailure(cli));
  return interpretExecResponse(response, outputLimitBytes);
}

export function interpretExecResponse(response: ExecResponse, outputLimitBytes: number): Execution {
  const { result } = response;
  const denials = collectDenials(response);
  const blocked = denials.length > 0;
  const precheckDenied = result.error?.code === "E_POLICY_DENIED";
  const timedOut = !blocked && isServerTimeout(response);
  if (!blocked && !timedOut && result.error && !isChildExit(response)) {
    return notRun(
      "unavailable",
      `agentsh could not run the command: ${result.error.code ?? "error"} ${result.error.message ?? ""}`.trim(),
    );
  }
  const outcome = blocked
    ? "blocked"
    : timedOut
      ? "timed_out"
      : result.exit_code === 0
        ? "ok"
        : "failed";
  const stderr = splitWrapperPreamble(result.stderr);
  return {
    kind: "result",
    result: {
      outcome,
      exitCode: result.exit_code,
      stdout: boundStream(result.stdout, outputLimitBytes, result.stdout_total_bytes),
      stderr: boundStream(
        stderr.rest,
        outputLimitBytes,
        result.stderr_total_bytes === undefined
          ? undefined
          : result.stderr_total_bytes -
              (Buffer.byteLength(result.stderr) - Buffer.byteLength(stderr.rest)),
      ),
      durationMs: result.duration_ms,
      decision: denials[0] ?? null,
      denials,
      problem:
        outcome === "timed_out" ? "the command exceeded its time limit and was killed" : null,
      sandboxed: precheckDenied ? null : stderr.sandboxed,
      ...(response.command_id ? { commandId: response.command_id } : {}),
    },
  };
}

/**
 * agentsh-unixwrap writes its own lines to the command's stderr before the command starts:
 * `landlock: restrictions applied (abi=N, workspace=W)` proves the sandbox was applied; the
 * others are noise. They are removed from what callers see.
 */
const WRAPPER_LINE =
  /^(landlock: .*|PR_SET_PTRACER\(.*|ptracer: .*|warning: skipped unknown syscalls.*|seccomp wrapper.*)$/;

const SANDBOX_APPLIED = /^landlock: restrictions applied \(abi=\d+, workspace=[^)]*\)$/;

export function splitWrapperPreamble(stderr: string): { sandboxed: boolean; rest: string } {
  let sandboxed = false;
  let rest = stderr;
  for (;;) {
    const newline = rest.indexOf("\n");
    const line = newline === -1 ? rest : rest.slice(0, newline);
    if (line === "" || !WRAPPER_LINE.test(line)) break;
    if (SANDBOX_APPLIED.test(line)) sandboxed = true;
    rest = newline === -1 ? "" : rest.slice(newline + 1);
  }
  return { sandboxed, rest };
}

/**
 * The result of agentsh's streaming exec (`exec --stream --output shell`): the CLI passes the
 * command's stdout and stderr through and exits with its exit code. There is no JSON result:
 * denials come from the event store as for every command, and a time limit shows as agentsh's
 * exit 124 at (or after) the limit.
 */
export function interpretStreamedCli(
  cli: CliOutcome,
  timeoutMs: number,
  outputLimitBytes: number,
): Execution {
  if (cli.canceled) {
    return notRun("canceled", "the request was canceled before the command finished");
  }
  if (cli.timedOut) return { kind: "result", result: timedOutResult(cli) };
  const stderr = splitWrapperPreamble(cli.stderr);
  // No wrapper line, no output, exit 1: the CLI failed before agentsh started anything
  // (server unreachable, session refused). Anything else without the wrapper's line ran
  // unsandboxed and is reported as such (sandboxed: false), so the service fails closed.
  if (!stderr.sandboxed && cli.stdout === "" && cli.exitCode === 1 && cli.stderr.trim() !== "") {
    return notRun("unavailable", describeCliFailure(cli));
  }
  const timedOut = cli.exitCode === AGENTSH_TIMEOUT_EXIT && cli.durationMs >= timeoutMs;
  const preambleBytes = Buffer.byteLength(cli.stderr) - Buffer.byteLength(stderr.rest);
  return {
    kind: "result",
    result: {
      outcome: timedOut ? "timed_out" : cli.exitCode === 0 ? "ok" : "failed",
      exitCode: cli.exitCode,
      stdout: boundStream(cli.stdout, outputLimitBytes, cli.stdoutBytes),
      stderr: boundStream(
        stderr.rest,
        outputLimitBytes,
        cli.stderrBytes === undefined ? undefined : cli.stderrBytes - preambleBytes,
      ),
      durationMs: cli.durationMs,
      decision: null,
      denials: [],
      problem: timedOut ? "the command exceeded its time limit and was killed" : null,
      sandboxed: stderr.sandboxed,
    },
  };
}

/**
 * `splitWrapperPreamble` for output that arrives in pieces: holds stderr back until the
 * wrapper's lines are past, then passes everything through.
 */
export class WrapperPreambleFilter {
  private held = "";
  private done = false;

  /** The part of `text` that is the command's own output (may be empty). */
  feed(text: string): string {
    if (this.done) return text;
    this.held += text;
    for (;;) {
      const newline = this.held.indexOf("\n");
      const line = newline === -1 ? this.held : this.held.slice(0, newline);
      // A partial line that could still become a wrapper line: wait for more.
      if (newline === -1 && line.length < 200) return "";
      if (line === "" || !WRAPPER_LINE.test(line)) {
        this.done = true;
        const rest = this.held;
        this.held = "";
        return rest;
      }
      this.held = this.held.slice(newline + 1);
    }
  }

  /** Whatever is still held when the stream ends. */
  end(): string {
    const rest = this.done || WRAPPER_LINE.test(this.held) ? "" : this.held;
    this.done = true;
    this.held = "";
    return rest;
  }
}

function isServerTimeout(response: ExecResponse): boolean {
  return response.result.exit_code === AGENTSH_TIMEOUT_EXIT && response.result.error != null;
}

/** agentsh sets `error` for some non-zero child exits too; those are still the child's result. */
function isChildExit(response: ExecResponse): boolean {
  const code = response.result.error?.code ?? "";
  return code === "" || /EXIT|NONZERO/i.test(code);
}

/**
 * Caps a stream at `limitBytes` (UTF-8, cut on a character boundary). It counts as truncated
 * when we cut it or when agentsh reports a larger total than it returned (agentsh's own
 * `*_truncated` flags are also set on every timeout, so they are not used).
 */
export function boundStream(
  text: string,
  limitBytes: number,
  reportedTotal?: number,
): StreamOutput {
  const bytes = Buffer.from(text, "utf8");
  const totalBytes = Math.max(reportedTotal ?? 0, bytes.length);
  if (bytes.length <= limitBytes) {
    return { text, truncated: totalBytes > bytes.length, totalBytes };
  }
  let end = limitBytes;
  // Step back over UTF-8 continuation bytes so we never split a character.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return { text: bytes.subarray(0, end).toString("utf8"), truncated: true, totalBytes };
}

function notRun(reason: "canceled" | "unavailable", detail: string): Execution {
  return { kind: "not_run", reason, detail };
}

/** Our own backstop timer ended the CLI: the command ran, and nothing of its output is known. */
function timedOutResult(cli: CliOutcome): GovernedResult {
  const empty: StreamOutput = { text: "", truncated: false, totalBytes: 0 };
  return {
    outcome: "timed_out",
    exitCode: null,
    stdout: empty,
    stderr: empty,
    durationMs: cli.durationMs,
    decision: null,
    denials: [],
    problem: "the command exceeded its time limit",
    sandboxed: null,
  };
}

function describeCliFailure(cli: CliOutcome): string {
  const detail = cli.stderr.trim().split("\n").slice(-3).join(" ").slice(0, 500);
  if (cli.exitCode === null) return "the agentsh CLI could not be started";
  if (/connection refused|no such host|dial tcp|connect:/i.test(detail)) {
    return `the agentsh server is not reachable (${detail})`;
  }
  return `agentsh exited ${cli.exitCode} without a result${detail ? `: ${detail}` : ""}`;
}
