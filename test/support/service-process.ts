import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const ENTRY = fileURLToPath(new URL("./audit-service.ts", import.meta.url));

export interface ServiceProcess {
  pid: number;
  url: string;
  child: ChildProcess;
  /** SIGKILL, then waits (with a deadline) until it is gone. */
  kill9(): Promise<void>;
  /** SIGTERM (the service closes its audit store), then waits until it is gone. */
  stop(): Promise<void>;
}

/** Starts test/support/audit-service.ts with `env` and waits (deadline) for its port. */
export async function startService(
  env: Record<string, string>,
  deadlineMs = 20_000,
): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", ENTRY], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += String(chunk);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the service did not listen within ${deadlineMs} ms: ${stderr}`));
    }, deadlineMs);
    let out = "";
    child.stdout?.on("data", (chunk) => {
      out += String(chunk);
      const match = /\{"port":(\d+)\}/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the service exited (${code}) before it listened: ${stderr}`));
    });
  });
  const gone = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await Promise.race([
      exited,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`pid ${child.pid} still runs after ${signal}`)), 10_000),
      ),
    ]);
  };
  return {
    pid: child.pid ?? 0,
    url: `http://127.0.0.1:${port}`,
    child,
    kill9: () => gone("SIGKILL"),
    stop: () => gone("SIGTERM"),
  };
}
