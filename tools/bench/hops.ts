import { randomUUID } from "node:crypto";
import path from "node:path";
import { withRecordedDenials } from "../../src/agentsh/denials.js";
import {
  agentshCliEnv,
  agentshExecArgv,
  createAgentshExecutor,
} from "../../src/agentsh/executor.js";
import { type CliOutcome, interpretCliOutcome } from "../../src/agentsh/interpret.js";
import { killMarkedProcesses, markPids } from "../../src/agentsh/process-reaper.js";
import { createAgentshServerApi } from "../../src/agentsh/server-api.js";
import { SessionPool } from "../../src/agentsh/session-pool.js";
import type { Redactor } from "../../src/bundle/redactor.js";
import { toCommandResult } from "../../src/command-result.js";
import { run } from "./probes.js";

/**
 * Where the time of `POST /execute` goes, measured hop by hop from outside the app: the app's
 * own modules (the executor, the reaper, the event-store lookup, the result shaping) are run
 * here, in the benchmark's process, against the same agentsh server, one at a time and
 * interleaved with the end-to-end requests. No timing hook in src/.
 *
 * Coupled to src/agentsh/: when the executor changes, these probes follow it.
 */

export interface HopContext {
  bin: string;
  serverUrl: string;
  apiKey: string;
  workspace: string;
  redact: Redactor;
}

/** One measurement per hop name, in ms. */
export type HopSample = Record<string, number>;

export const HOP_NAMES = {
  cliStartup: "agentsh --version (CLI start-up)",
  cliAsExecutor: "agentsh exec, the executor's argv + env",
  execApi: "agentsh exec API over HTTP (no CLI)",
  eventLookup: "event-store lookup (events/search)",
  reaperScan: "process reaper, nothing to kill",
  executorRun: "executor.run() in-process",
  executorLookup: "  of which: its event-store lookup",
  shaping: "result shaping (parse, map, redact, JSON)",
} as const;

export async function createHopProbes(context: HopContext) {
  const api = createAgentshServerApi({
    serverUrl: context.serverUrl,
    apiKey: context.apiKey,
    workspace: context.workspace,
  });
  const argvSession = "bench-hop-cli";
  const apiSession = "bench-hop-api";
  const pool = new SessionPool("bench-hop-exec", 1, 0);
  for (const id of [argvSession, apiSession, ...pool.sessionIds]) await api.ensureSession(id);

  let lookupMs = Number.NaN;
  const executor = createAgentshExecutor({
    bin: context.bin,
    serverUrl: context.serverUrl,
    apiKey: context.apiKey,
    outputLimitBytes: 64 * 1024,
    sessions: pool,
    recreateSession: (id) => api.ensureSession(id),
    recordedDenials: async (sessionId, since, until) => {
      const started = performance.now();
      try {
        return await api.recordedDenials(sessionId, since, until);
      } finally {
        lookupMs = performance.now() - started;
      }
    },
  });
  const cliEnv = agentshCliEnv(context, 30_000);
  let lastCliOutcome: CliOutcome | undefined;

  const probes: Array<[keyof typeof HOP_NAMES, () => Promise<number>]> = [
    [
      "cliStartup",
      async () => {
        const started = performance.now();
        const result = await run([context.bin, "--version"], cliEnv);
        if (result.code !== 0) throw new Error(`agentsh --version failed: ${result.stderr}`);
        return performance.now() - started;
      },
    ],
    [
      "cliAsExecutor",
      async () => {
        const started = performance.now();
        const argv = agentshExecArgv(argvSession, "echo hi", 30_000, randomUUID());
        const result = await run([context.bin, ...argv], cliEnv);
        const ms = performance.now() - started;
        if (!/"stdout":\s*"hi\\n"/.test(result.stdout)) {
          throw new Error(`agentsh exec (executor argv) gave no 'hi': ${result.stderr}`);
        }
        lastCliOutcome = {
          exitCode: result.code,
          stdout: result.stdout,
          stderr: result.stderr,
          timedOut: false,
          canceled: false,
          durationMs: Math.round(ms),
        };
        return ms;
      },
    ],
    [
      "execApi",
      async () => {
        const started = performance.now();
        const response = await fetch(`${context.serverUrl}/api/v1/sessions/${apiSession}/exec`, {
          method: "POST",
          headers: { "X-API-Key": context.apiKey, "Content-Type": "application/json" },
          body: JSON.stringify({ command: "/bin/bash", args: ["-c", "echo hi"] }),
          signal: AbortSignal.timeout(60_000),
        });
        const text = await response.text();
        if (!response.ok)
          throw new Error(`exec API: HTTP ${response.status} ${text.slice(0, 200)}`);
        return performance.now() - started;
      },
    ],
    [
      "eventLookup",
      async () => {
        const started = performance.now();
        await api.recordedDenials(argvSession, new Date(Date.now() - 1_000), new Date());
        return performance.now() - started;
      },
    ],
    [
      "reaperScan",
      async () => {
        // As the executor does it: a pid mark before a command (here /bin/true), then the reap
        // with a fresh run id that no process carries (nothing is killed): the scan alone.
        const since = await markPids();
        await run(["/bin/true"], {});
        const started = performance.now();
        await killMarkedProcesses(randomUUID(), { since });
        return performance.now() - started;
      },
    ],
    [
      "executorRun",
      async () => {
        lookupMs = Number.NaN;
        const started = performance.now();
        const execution = await executor.run({ command: "echo hi", timeoutMs: 30_000 });
        const ms = performance.now() - started;
        if (execution.kind !== "result" || execution.result.stdout.text !== "hi\n") {
          throw new Error(`executor.run gave no 'hi': ${JSON.stringify(execution).slice(0, 300)}`);
        }
        return ms;
      },
    ],
  ];

  return {
    /** One sample of every hop, in an order rotated by `offset` (position bias evens out). */
    async sample(offset: number): Promise<HopSample> {
      const sample: HopSample = {};
      for (let i = 0; i < probes.length; i++) {
        const probe = probes[(i + offset) % probes.length];
        if (!probe) continue;
        sample[probe[0]] = await probe[1]();
        if (probe[0] === "executorRun") sample.executorLookup = lookupMs;
      }
      sample.shaping = shapingMs(lastCliOutcome, context.redact);
      return sample;
    },
  };
}

/** The CPU-only steps after the CLI answered, averaged over many repetitions (ms per request). */
function shapingMs(cli: CliOutcome | undefined, redact: Redactor): number {
  if (!cli) return Number.NaN;
  const repetitions = 200;
  const started = performance.now();
  for (let i = 0; i < repetitions; i++) {
    const execution = interpretCliOutcome(cli, 64 * 1024);
    if (execution.kind !== "result") throw new Error("shaping: the CLI outcome has no result");
    const result = toCommandResult(withRecordedDenials(execution.result, []), redact);
    JSON.stringify({ command: "echo hi", result });
  }
  return (performance.now() - started) / repetitions;
}

export const bundleVars = (bundleDir: string, stateDir: string, bin: string) => ({
  AGENTSH_BUNDLE_DIR: path.resolve(bundleDir),
  AGENTSH_STATE_DIR: stateDir,
  AGENTSH_BIN_DIR: path.dirname(bin),
});
