import { type ChildProcess, spawn } from "node:child_process";
import { chmod, chown, mkdir } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import type { Logger } from "../logger.js";

/**
 * `agentsh-launch --serve` (agentsh/launcher/server.c): builds each command's Landlock rulesets
 * outside agentsh's sandbox and hands them to the launcher as file descriptors, so the launcher
 * opens none of the bundle's ~70 file-rule paths itself (each open inside the sandbox is a round
 * trip to agentsh's file monitor). It runs under an unprivileged uid (out of commands' reach) and
 * is restarted if it exits; while it is down, launchers refuse (fail closed).
 */

export interface RulesetServerOptions {
  launcherPath: string;
  /** Directory for its socket: created here, owned by `uid`, mode 0700. */
  dir: string;
  uid: number;
  /** The launcher's static options: `--fs=…`, `--bind-ports=…`, `--max-abi=…`, `--place-root=…`. */
  args: readonly string[];
  logger: Logger;
}

export interface RulesetServer {
  socket: string;
  uid: number;
  stop(): void;
}

const READY_TIMEOUT_MS = 5_000;
const RESTART_DELAY_MS = 500;

export async function startRulesetServer(options: RulesetServerOptions): Promise<RulesetServer> {
  await mkdir(options.dir, { recursive: true });
  await chown(options.dir, options.uid, options.uid);
  await chmod(options.dir, 0o700);
  const socket = path.join(options.dir, "ruleset.sock");
  let child: ChildProcess | undefined;
  let stopped = false;

  const start = () =>
    new Promise<void>((resolve, reject) => {
      const proc = spawn(options.launcherPath, [`--serve=${socket}`, ...options.args], {
        uid: options.uid,
        gid: options.uid,
        env: {},
        stdio: ["ignore", "pipe", "pipe"],
      });
      child = proc;
      const deadline = setTimeout(
        () => reject(new Error(`the ruleset server did not start within ${READY_TIMEOUT_MS} ms`)),
        READY_TIMEOUT_MS,
      );
      let stderr = "";
      proc.stderr?.on("data", (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-2000);
      });
      createInterface({ input: proc.stdout as NodeJS.ReadableStream }).once("line", (line) => {
        clearTimeout(deadline);
        options.logger.info("launcher ruleset server ready", { pid: proc.pid, ...parse(line) });
        resolve();
      });
      proc.once("exit", (code, signal) => {
        clearTimeout(deadline);
        reject(new Error(`the ruleset server exited (${code ?? signal}): ${stderr.trim()}`));
        if (stopped) return;
        options.logger.error("launcher ruleset server exited; restarting", {
          code,
          signal,
          stderr: stderr.trim(),
        });
        setTimeout(() => {
          if (!stopped) start().catch(() => {});
        }, RESTART_DELAY_MS).unref();
      });
    });

  await start();
  return {
    socket,
    uid: options.uid,
    stop() {
      stopped = true;
      child?.kill("SIGTERM");
    },
  };
}

function parse(line: string): Record<string, unknown> {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return { output: line };
  }
}
