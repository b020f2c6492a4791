#!/usr/bin/env -S node --import tsx
// tenant-servers: what an agentsh server of a tenant policy costs (docs/tenants.md).
//
// Runs inside a stack booted with test/e2e/tenants.yaml (alpha: default policy, beta: strict,
// on its own server at 127.0.0.1:18081), as with-stack's command:
//   phase "idle":  RSS of the default (18080) and strict (18081) servers right after boot; the
//                  boot time of one more server of the same kind (started on 18089, 5 times);
//                  the latency of `echo hi` through POST /execute for alpha and beta,
//                  interleaved (--runs, default 40), median and p90.
//   phase "after": RSS and peak RSS of both servers (run it after the tenants suite).
// Env: SERVICE_URL (with-stack), E2E_API_KEY (alpha), E2E_API_KEY_2 (beta), AGENTSH_BIN_DIR.

import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

const phase = process.argv[2] ?? "idle";
const runs = Number(process.argv[3] ?? 40);
const base = process.env.SERVICE_URL ?? "";
const alpha = process.env.E2E_API_KEY ?? "";
const beta = process.env.E2E_API_KEY_2 ?? "";
const repo = path.join(import.meta.dirname, "..", "..");

function memoryOf(port: number): { rssMiB: number; peakMiB: number; pid: number } {
  const out = execFileSync("ss", ["-Hltnp", `sport = :${port}`], { encoding: "utf8" });
  const pid = Number(out.match(/pid=(\d+)/)?.[1]);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) =>
    Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))?.[1]);
  return { pid, rssMiB: round(kib("VmRSS") / 1024), peakMiB: round(kib("VmHWM") / 1024) };
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};

async function execute(key: string): Promise<number> {
  const started = performance.now();
  const res = await fetch(`${base}/execute`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-API-Key": key },
    body: JSON.stringify({ command: "echo hi" }),
  });
  const body = (await res.json()) as { result?: { stdout?: string } };
  if (res.status !== 200 || body.result?.stdout !== "hi\n") {
    throw new Error(`echo hi: HTTP ${res.status} ${JSON.stringify(body)}`);
  }
  return performance.now() - started;
}

/** Starts one more server as scripts/boot starts a tenant policy's, and times its /health. */
async function bootTime(): Promise<number> {
  const state = await mkdtemp(path.join(os.tmpdir(), "tenant-server-bench-"));
  await writeFile(
    path.join(state, "api-keys.yaml"),
    `- id: bench\n  key: ${"b".repeat(48)}\n  role: agent\n`,
  );
  await mkdir(path.join(state, "policy-strict"), { mode: 0o700 });
  const binDir = process.env.AGENTSH_BIN_DIR ?? "/usr/local/bin";
  const started = performance.now();
  const child = spawn(
    path.join(binDir, "agentsh"),
    ["server", "--config", path.join(repo, "agentsh", "config.yaml")],
    {
      cwd: state,
      stdio: "ignore",
      env: {
        PATH: `${binDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
        AGENTSH_BUNDLE_DIR: path.join(repo, "agentsh"),
        AGENTSH_STATE_DIR: state,
        AGENTSH_BIN_DIR: binDir,
        AGENTSH_POLICY_NAME: "strict",
        AGENTSH_HTTP_ADDR: "127.0.0.1:18089",
        AGENTSH_DATA_DIR: path.join(state, "policy-strict"),
      },
    },
  );
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (Date.now() > deadline) throw new Error("no /health within 30 s");
      const ok = await fetch("http://127.0.0.1:18089/health", { signal: AbortSignal.timeout(500) })
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) return performance.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
    await rm(state, { recursive: true, force: true });
  }
}

const report: Record<string, unknown> = { phase };
report.defaultServer = memoryOf(18080);
report.strictServer = memoryOf(18081);
if (phase === "idle") {
  const boots: number[] = [];
  for (let i = 0; i < 5; i++) boots.push(await bootTime());
  report.bootMs = { median: round(quantile(boots, 0.5), 0), all: boots.map((b) => round(b, 0)) };
  // Warm both servers' slot sessions first (created on first use).
  for (let i = 0; i < 4; i++) await Promise.all([execute(alpha), execute(beta)]);
  const times: Record<"alpha" | "beta", number[]> = { alpha: [], beta: [] };
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? (["alpha", "beta"] as const) : (["beta", "alpha"] as const);
    for (const who of order) times[who].push(await execute(who === "alpha" ? alpha : beta));
  }
  for (const who of ["alpha", "beta"] as const) {
    report[`${who}EchoMs`] = {
      median: round(quantile(times[who], 0.5)),
      p90: round(quantile(times[who], 0.9)),
      runs,
    };
  }
}
console.log(JSON.stringify(report));
