// The v0 app beside ours (`npm run bench -- --reference DIR`): the same `echo hi` through its
// POST /execute, on the same agentsh server, interleaved with ours in one run. The v0 app is an
// Express server that runs `agentsh exec --root=/workspace demo -- /bin/bash -c CMD` per request.

import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { run } from "./probes.js";

export const REFERENCE_PORT = 10091;
/** The agentsh session the v0 app names in every `agentsh exec`. */
export const REFERENCE_SESSION = "demo";

/**
 * Outside the namespace (it has no route to the package registry): a copy of DIR with its
 * production dependencies installed. Returns the copy and its cleanup.
 */
export async function prepareReference(dir: string): Promise<{ dir: string; remove(): void }> {
  if (!existsSync(path.join(dir, "package.json"))) {
    throw new Error(`--reference ${dir}: no package.json there`);
  }
  const copy = mkdtempSync("/tmp/bench-reference-");
  cpSync(dir, copy, { recursive: true, filter: (source) => !source.includes("node_modules") });
  const install = await run(
    ["npm", "ci", "--prefix", copy, "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"],
    { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin", HOME: process.env.HOME ?? "/root" },
    180_000,
  );
  if (install.code !== 0) {
    rmSync(copy, { recursive: true, force: true });
    throw new Error(`--reference: npm ci failed: ${install.stderr.slice(-600)}`);
  }
  return { dir: copy, remove: () => rmSync(copy, { recursive: true, force: true }) };
}

/** Inside the namespace: the v0 app on REFERENCE_PORT, with the agentsh CLI environment given. */
export async function startReference(
  dir: string,
  cliEnv: Record<string, string>,
): Promise<{ client: ReferenceClient; stop(): void }> {
  const child: ChildProcess = spawn(process.execPath, ["src/index.js"], {
    cwd: dir,
    env: { ...cliEnv, PORT: String(REFERENCE_PORT), NODE_ENV: "production" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const client = new ReferenceClient(REFERENCE_PORT);
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the reference app exited (${child.exitCode})`);
    const status = await client.status("/health").catch(() => 0);
    if (status === 200) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error("the reference app did not answer /health within 15 s");
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { client, stop: () => child.kill("SIGTERM") };
}

/**
 * POST /execute on the v0 app, each request from its own loopback source address: the v0 app
 * limits /execute to 10 a minute per client address and has no setting to raise it.
 */
export class ReferenceClient {
  private next = 0;
  constructor(private readonly port: number) {}

  status(pathname: string): Promise<number> {
    return this.send("GET", pathname, undefined).then((r) => r.status);
  }

  /** The command's trimmed stdout, as the v0 app answers it. */
  async execute(command: string): Promise<{ status: number; stdout: string | undefined }> {
    const { status, body } = await this.send("POST", "/execute", JSON.stringify({ command }));
    let stdout: string | undefined;
    try {
      stdout = (JSON.parse(body) as { result?: { stdout?: string } }).result?.stdout;
    } catch {}
    return { status, stdout };
  }

  private send(
    method: string,
    pathname: string,
    body: string | undefined,
  ): Promise<{ status: number; body: string }> {
    const i = this.next++;
    const localAddress = `127.1.${Math.floor(i / 250) % 250}.${(i % 250) + 2}`;
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          host: "127.0.0.1",
          port: this.port,
          method,
          path: pathname,
          localAddress,
          headers: body ? { "content-type": "application/json" } : {},
          timeout: 60_000,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () =>
            resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
        },
      );
      request.on("timeout", () => request.destroy(new Error("no answer within 60 s")));
      request.on("error", reject);
      request.end(body);
    });
  }
}
