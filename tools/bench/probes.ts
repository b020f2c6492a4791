import { execFile } from "node:child_process";
import { readdir, readFile, readlink } from "node:fs/promises";

/** Timing probes the benchmark runs against the stack: processes, HTTP, memory. */

export interface Timed<T> {
  ms: number;
  value: T;
}

export async function timed<T>(work: () => Promise<T>): Promise<Timed<T>> {
  const started = performance.now();
  const value = await work();
  return { ms: performance.now() - started, value };
}

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs argv with exactly `env` (nothing inherited), bounded by `timeoutMs`. */
export function run(
  argv: readonly string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<ProcessResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error("empty argv");
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: "utf8" },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The app over HTTP: every request has a deadline. */
export class ServiceClient {
  constructor(
    readonly baseUrl: string,
    private readonly apiKey: string | undefined,
  ) {}

  async request(
    path: string,
    init: { method?: string; body?: unknown; timeoutMs?: number } = {},
  ): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = {};
    if (this.apiKey) headers["X-API-Key"] = this.apiKey;
    if (init.body !== undefined) headers["Content-Type"] = "application/json";
    try {
      const response = await fetch(`${this.baseUrl}${path}`, {
        method: init.method ?? "GET",
        headers,
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
        signal: AbortSignal.timeout(init.timeoutMs ?? 60_000),
      });
      const text = await response.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {}
      return { status: response.status, body };
    } catch (error) {
      // Status 0: no HTTP answer (connection refused or reset, deadline passed).
      return { status: 0, body: String(error) };
    }
  }

  execute(command: string, timeoutMs?: number) {
    return this.request("/execute", {
      method: "POST",
      body: timeoutMs ? { command, timeoutMs } : { command },
      timeoutMs: (timeoutMs ?? 30_000) + 30_000,
    });
  }
}

/**
 * The pid of the process listening on TCP `port` in this network namespace: the socket's inode
 * from /proc/net/tcp{,6}, then the process holding an fd on that socket.
 */
export async function listenerPid(port: number): Promise<number | undefined> {
  const portHex = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = await readFile(table, "utf8").catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is field 1 ("ADDR:PORT"), st field 3 (0A = LISTEN), inode field 9.
      if (fields[1]?.endsWith(`:${portHex}`) && fields[3] === "0A" && fields[9]) {
        inodes.add(`socket:[${fields[9]}]`);
      }
    }
  }
  if (inodes.size === 0) return undefined;
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const fds = await readdir(`/proc/${name}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${name}/fd/${fd}`).catch(() => "");
      if (inodes.has(target)) return Number(name);
    }
  }
  return undefined;
}

/** VmRSS and VmHWM (peak) of a process, in MiB; undefined once it is gone. */
export async function memoryOf(
  pid: number,
): Promise<{ rssMiB: number; hwmMiB: number } | undefined> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => undefined);
  if (status === undefined) return undefined;
  const kib = (field: string) =>
    Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))?.[1] ?? Number.NaN);
  return { rssMiB: kib("VmRSS") / 1024, hwmMiB: kib("VmHWM") / 1024 };
}

/** Samples a process's RSS every `everyMs` until stopped; returns the samples (MiB). */
export function sampleRss(pid: number, everyMs: number): { stop: () => Promise<number[]> } {
  const samples: number[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const memory = await memoryOf(pid);
      if (memory) samples.push(memory.rssMiB);
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return samples;
    },
  };
}
