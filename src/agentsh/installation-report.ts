import { execa } from "execa";
import type { CommandResult } from "../command-result.js";

/**
 * The installation report of `/demo/status`: `agentsh --version` and `agentsh detect`, run by
 * the service itself (outside the sandbox) once at boot. Governed commands may not run the agentsh
 * CLI (it could drive the agentsh server), so these two fixed, read-only subcommands are the only
 * agentsh invocations that do not go through the executor. No input reaches their argv.
 */

export interface ServiceRunEntry {
  /** The command as v0's status demo names it. */
  command: string;
  /** Run by this service, not governed by agentsh. */
  ranBy: "service";
  result: CommandResult;
}

export interface InstallationReport {
  collectedAt: string;
  entries: ServiceRunEntry[];
}

const REPORT_COMMANDS: ReadonlyArray<{ command: string; args: string[] }> = [
  { command: "agentsh --version", args: ["--version"] },
  // agentsh 0.16.9 prints the detect report on stderr.
  { command: "agentsh detect", args: ["detect"] },
];

const TIMEOUT_MS = 10_000;
const MAX_OUTPUT_BYTES = 256 * 1024;

export async function collectInstallationReport(
  bin: string,
  options: { timeoutMs?: number; now?: () => Date } = {},
): Promise<InstallationReport> {
  const entries: ServiceRunEntry[] = [];
  for (const { command, args } of REPORT_COMMANDS) {
    entries.push({
      command,
      ranBy: "service",
      result: await runReportCommand(bin, args, options.timeoutMs ?? TIMEOUT_MS),
    });
  }
  return { collectedAt: (options.now?.() ?? new Date()).toISOString(), entries };
}

async function runReportCommand(
  bin: string,
  args: string[],
  timeoutMs: number,
): Promise<CommandResult> {
  const started = performance.now();
  const run = await execa(bin, args, {
    // Nothing of the service's environment (API keys) is needed or passed.
    env: { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin", LANG: "C.UTF-8" },
    extendEnv: false,
    cwd: "/",
    stdin: "ignore",
    reject: false,
    timeout: timeoutMs,
    killSignal: "SIGKILL",
    maxBuffer: MAX_OUTPUT_BYTES,
    stripFinalNewline: false,
  });
  const exitCode = run.exitCode ?? null;
  const problem =
    run.failed && exitCode === null
      ? `${bin} ${args.join(" ")}: ${run.timedOut ? `no answer within ${timeoutMs} ms` : run.shortMessage}`
      : undefined;
  const stdout = typeof run.stdout === "string" ? run.stdout : "";
  const stderr = typeof run.stderr === "string" ? run.stderr : "";
  return {
    success: exitCode === 0,
    stdout,
    stderr: problem ? `${stderr}${problem}\n` : stderr,
    exitCode,
    blocked: false,
    outcome: exitCode === 0 ? "ok" : "failed",
    decision: null,
    completed: exitCode !== null,
    durationMs: Math.round(performance.now() - started),
  };
}
