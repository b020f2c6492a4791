#!/usr/bin/env -S node --import tsx
// bench: how much the service adds on top of agentsh, measured against the real local stack.
//
// Usage (from the repository root, as root):
//   npm run bench                     3 runs (about 5-6 minutes on 2 shared cores)
//   npm run bench -- --runs 5         more runs
//   npm run bench -- --quick          smoke test of the tool itself (1 short run)
//   npm run bench -- --no-hops        skip the hop-by-hop profile
//   npm run bench -- --reference DIR  also time the v0 app (a checkout of it in DIR) beside ours:
//                                     the same echo, on the same agentsh, interleaved
//   npm run bench -- --cpu-prof       only profile the app (node --cpu-prof) over N sequential
//                                     POST /execute (--iterations, default 200): where its main
//                                     thread spends the time, per request
// Options: --runs N, --iterations N (sequential samples per path and run), --duration S (per
// concurrency level), --floods N, --flood-mb M, --demos a,b (only these /demo routes),
// --out DIR (default bench-results/).
//
// It boots the stack (scripts/boot: agentsh server + the app) in a sealed network namespace
// through test/net/with-stack.ts, with rate limits raised and a state dir of its own, and runs
// itself inside it. Each run measures, interleaved so a noisy machine hits every path alike:
//   - latency of `echo hi`: plain bash, the bare agentsh CLI, POST /execute, and each hop of
//     POST /execute timed alone (hops.ts); with --reference, the v0 app's POST /execute too
//   - every /demo/* route against the slowest of its commands, each timed alone via /execute
//   - throughput and status counts at concurrency 1, 4, 16 for --duration seconds each
//   - the app's RSS at rest, under concurrency 16 and during an output flood
// Prints one table (medians across runs, min-max in brackets) and writes the raw figures as JSON
// to bench-results/<timestamp>.json.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, loadavg } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { locateExecutable } from "../../src/agentsh/locate.js";
import { loadPolicyBundle } from "../../src/bundle/load-bundle.js";
import { createRedactor } from "../../src/bundle/redactor.js";
import {
  findAppProfile,
  type ProfileWindow,
  renderCpuSummary,
  summarizeProfile,
} from "./cpu-profile.js";
import { bundleVars, createHopProbes, HOP_NAMES, type HopSample } from "./hops.js";
import {
  listenerPid,
  memoryOf,
  type ProcessResult,
  run,
  ServiceClient,
  sampleRss,
  timed,
} from "./probes.js";
import {
  prepareReference,
  REFERENCE_PORT,
  REFERENCE_SESSION,
  type ReferenceClient,
  startReference,
} from "./reference.js";
import {
  formatSpread,
  median,
  type Percentiles,
  percentiles,
  renderTable,
  spread,
} from "./stats.js";

const REPO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const AGENTSH_URL = "http://127.0.0.1:18080";
const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

interface Options {
  runs: number;
  iterations: number;
  warmup: number;
  durationS: number;
  levels: number[];
  floods: number;
  floodMb: number;
  demos: string[] | undefined;
  hops: boolean;
  cpuProf: boolean;
  out: string;
  quick: boolean;
  reference: string | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: "string" },
      iterations: { type: "string" },
      duration: { type: "string" },
      floods: { type: "string" },
      "flood-mb": { type: "string" },
      demos: { type: "string" },
      "no-hops": { type: "boolean" },
      "cpu-prof": { type: "boolean" },
      out: { type: "string" },
      quick: { type: "boolean" },
      reference: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: false,
  });
  if (values.help) {
    const header = readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n");
    const end = header.findIndex((line, i) => i > 0 && !line.startsWith("//"));
    process.stdout.write(
      `${header
        .slice(1, end)
        .map((l) => l.replace(/^\/\/ ?/, ""))
        .join("\n")}\n`,
    );
    process.exit(0);
  }
  const quick = values.quick ?? false;
  const cpuProf = values["cpu-prof"] ?? false;
  const int = (value: string | undefined, fallback: number, name: string) => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
    return n;
  };
  return {
    runs: int(values.runs, quick ? 1 : 3, "runs"),
    iterations: int(values.iterations, cpuProf ? (quick ? 20 : 200) : quick ? 4 : 40, "iterations"),
    warmup: quick ? 1 : 3,
    durationS: int(values.duration, quick ? 2 : 10, "duration"),
    levels: [1, 4, 16],
    floods: int(values.floods, quick ? 2 : 4, "floods"),
    floodMb: int(values["flood-mb"], quick ? 5 : 50, "flood-mb"),
    demos: values.demos?.split(",") ?? (quick ? ["status", "allowed"] : undefined),
    hops: !(values["no-hops"] ?? false),
    cpuProf,
    out: values.out ?? path.join(REPO_DIR, "bench-results"),
    quick,
    reference: values.reference ? path.resolve(values.reference) : undefined,
  };
}

// --- outside the namespace: boot the stack and run ourselves inside it -------------------------

async function outside(options: Options, argv: string[]): Promise<number> {
  if (process.getuid?.() !== 0) {
    log("run as root: the harness creates a network namespace and agentsh's sandbox needs it");
    return 1;
  }
  const stateDir = `/var/lib/governed-executor-bench/${process.pid}`;
  // The app writes its profile when it exits (at teardown), into a directory of this run.
  const profileDir = options.cpuProf ? mkdtempSync("/tmp/bench-cpu-prof-") : undefined;
  const keepProfile = path.join(REPO_DIR, "tools/bench/keep-profile-on-term.cjs");
  const nodeOptions = profileDir
    ? `NODE_OPTIONS='--cpu-prof --cpu-prof-dir=${profileDir} --require ${keepProfile}' `
    : "";
  // The v0 app's dependencies are installed here: the namespace has no route to the registry.
  const reference = options.reference ? await prepareReference(options.reference) : undefined;
  // Generous: boot (up to 90 s) + teardown + the runs themselves (~90 s each by default).
  const budgetMs =
    180_000 +
    options.runs *
      (options.iterations * 2_000 + options.levels.length * options.durationS * 1_000 + 120_000);
  const child = spawn(
    "test/net/with-stack.ts",
    ["--", process.execPath, "--import", "tsx", fileURLToPath(import.meta.url), ...argv],
    {
      cwd: REPO_DIR,
      stdio: "inherit",
      env: {
        ...process.env,
        // The service's key, by environment (the harness logs command lines).
        API_KEY: randomBytes(16).toString("hex"),
        AGENTSH_STATE_DIR: stateDir,
        BENCH_IN_STACK: "1",
        ...(reference ? { BENCH_REFERENCE_DIR: reference.dir } : {}),
        // As in production and CI: per-command cgroups (the namespace remounts /sys).
        STACK_CMD: `RATE_LIMIT_EXECUTE=100000 RATE_LIMIT_DEMO=100000 ${nodeOptions}test/net/with-host-cgroups scripts/boot`,
        ...(profileDir
          ? // The app's own shutdown deadline is 10 s; the profile is written on its exit.
            { BENCH_CPU_PROF_DIR: profileDir, STACK_STOP_TIMEOUT: "20" }
          : {}),
      },
    },
  );
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  const deadline = setTimeout(() => {
    log(`still running after ${Math.round(budgetMs / 1000)} s: stopping (TERM)`);
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 60_000).unref();
  }, budgetMs);
  const code = await new Promise<number>((resolve) =>
    child.on("exit", (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0))),
  );
  clearTimeout(deadline);
  reference?.remove();
  rmSync(stateDir, { recursive: true, force: true });
  try {
    rmdirSync(path.dirname(stateDir)); // only when no other benchmark is using it
  } catch {}
  if (profileDir) {
    try {
      if (code === 0) reportCpuProfile(profileDir, options.out);
    } finally {
      rmSync(profileDir, { recursive: true, force: true });
    }
  }
  return code;
}

function reportCpuProfile(profileDir: string, outDir: string): void {
  // Written by the app as it exits, before the harness sees it gone.
  const file = findAppProfile(profileDir);
  if (!file) {
    const found = readdirSync(profileDir).join(", ") || "nothing";
    throw new Error(`the app wrote no CPU profile into ${profileDir} (found: ${found})`);
  }
  const window = JSON.parse(
    readFileSync(path.join(profileDir, "window.json"), "utf8"),
  ) as ProfileWindow & { executeP50Ms: number };
  const summary = summarizeProfile(file, window);
  process.stdout.write(
    `POST /execute p50 ${window.executeP50Ms.toFixed(1)} ms over the same requests\n${renderCpuSummary(summary)}\n`,
  );
  mkdirSync(outDir, { recursive: true });
  const base = path.join(outDir, `${new Date().toISOString().replace(/[:.]/g, "-")}-cpu`);
  copyFileSync(file, `${base}.cpuprofile`);
  writeFileSync(`${base}.json`, `${JSON.stringify({ window, summary }, null, 2)}\n`);
  log(`profile (open in Chrome DevTools): ${path.relative(process.cwd(), `${base}.cpuprofile`)}`);
}

// --- inside the namespace ------------------------------------------------------------------------

interface LatencyRun {
  bash: Percentiles;
  cli: Percentiles;
  execute: Percentiles;
  badRequest: Percentiles;
  root: Percentiles;
  /** The v0 app's POST /execute (only with --reference). */
  reference?: Percentiles;
  hops: Record<string, Percentiles>;
}

interface DemoRun {
  route: string;
  commands: number;
  status: number;
  routeMs: number;
  slowestMs: number;
  slowestCommand: string;
  ratio: number;
}

interface LoadRun {
  concurrency: number;
  durationS: number;
  ok: number;
  busy: number;
  other: number;
  perSecond: number;
  p50: number;
  p99: number;
  rssMaxMiB: number | undefined;
}

interface FloodRun {
  floods: number;
  mb: number;
  statuses: number[];
  wallMs: number;
  rssMaxMiB: number;
  hwmMiB: number | undefined;
}

interface RunResult {
  loadavg: number[];
  rssRestMiB: number;
  latency: LatencyRun;
  demos: DemoRun[];
  load: LoadRun[];
  flood: FloodRun;
}

interface Stack {
  service: ServiceClient;
  appPid: number | undefined;
  bin: string;
  cliEnv: Record<string, string>;
  cliSession: string;
  hopProbes: Awaited<ReturnType<typeof createHopProbes>> | undefined;
  reference: ReferenceClient | undefined;
}

async function inside(options: Options): Promise<number> {
  const serviceUrl = process.env.SERVICE_URL ?? "";
  const port = Number(process.env.PORT ?? new URL(serviceUrl).port);
  const stateDir = process.env.AGENTSH_STATE_DIR ?? "/var/lib/governed-executor";
  const workspace = process.env.WORKSPACE ?? "/workspace";
  const keys = readFileSync(path.join(stateDir, "api-keys.yaml"), "utf8");
  const agentshKey = keys.match(/key:\s*(\S+)/)?.[1];
  if (!agentshKey) throw new Error(`no agentsh API key in ${stateDir}/api-keys.yaml`);
  const searchPath = [process.env.AGENTSH_BIN_DIR, process.env.PATH].filter(Boolean).join(":");
  const bin = await locateExecutable("agentsh", searchPath);
  if (!bin) throw new Error("agentsh is not on PATH");

  const cliSession = "bench-cli";
  await createSession(agentshKey, cliSession, workspace);
  const cliEnv = {
    PATH: [path.dirname(bin), "/usr/local/bin", "/usr/bin", "/bin"].join(":"),
    AGENTSH_SERVER: AGENTSH_URL,
    AGENTSH_API_KEY: agentshKey,
    AGENTSH_NO_AUTO: "1",
  };
  let reference: Awaited<ReturnType<typeof startReference>> | undefined;
  const referenceDir = process.env.BENCH_REFERENCE_DIR;
  if (referenceDir) {
    await createSession(agentshKey, REFERENCE_SESSION, workspace);
    reference = await startReference(referenceDir, cliEnv);
    log(`reference app: ${options.reference ?? referenceDir} on :${REFERENCE_PORT}`);
  }
  let hopProbes: Stack["hopProbes"];
  if (options.hops) {
    const vars = { ...bundleVars("agentsh", stateDir, bin), ...stringEnv(process.env) };
    const bundle = await loadPolicyBundle(process.env.AGENTSH_BUNDLE_DIR ?? "agentsh", vars);
    hopProbes = await createHopProbes({
      bin,
      serverUrl: AGENTSH_URL,
      apiKey: agentshKey,
      workspace,
      redact: createRedactor(bundle.redactionPatterns),
    });
  }
  const stack: Stack = {
    service: new ServiceClient(serviceUrl, process.env.API_KEY),
    appPid: await listenerPid(port),
    bin,
    cliEnv,
    cliSession,
    hopProbes,
    reference: reference?.client,
  };
  const appCommand =
    stack.appPid === undefined
      ? "(not found)"
      : readFileSync(`/proc/${stack.appPid}/cmdline`, "utf8").split("\0").join(" ").trim();
  if (stack.appPid === undefined) log(`warning: no process found listening on port ${port}`);
  else log(`app: pid ${stack.appPid}, ${appCommand} (listening on :${port})`);

  const profileDir = process.env.BENCH_CPU_PROF_DIR;
  if (options.cpuProf && profileDir) return profileWorkload(stack, options, profileDir);

  const agentshVersion = (await run([bin, "--version"], cliEnv)).stdout.trim();
  const commit = (
    await run(["git", "rev-parse", "--short", "HEAD"], { PATH: "/usr/bin:/bin" })
  ).stdout.trim();
  const started = new Date();
  const loadBefore = loadavg();
  const runs: RunResult[] = [];
  try {
    for (let i = 1; i <= options.runs; i++) {
      log(`run ${i}/${options.runs} (load average ${fmtLoad(loadavg())})`);
      runs.push(await runOnce(stack, options));
    }
  } finally {
    reference?.stop();
  }
  const meta = {
    started: started.toISOString(),
    finished: new Date().toISOString(),
    commit,
    node: process.version,
    agentsh: agentshVersion,
    cpus: cpus().length,
    appProcess: appCommand,
    loadavgBefore: loadBefore,
    loadavgAfter: loadavg(),
    options,
  };
  const summary = summarize(runs);
  process.stdout.write(`${renderReport(meta, runs.length, summary, options)}\n`);

  mkdirSync(options.out, { recursive: true });
  const file = path.join(options.out, `${started.toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify({ meta, summary, runs }, null, 2)}\n`);
  log(`raw figures: ${path.relative(process.cwd(), file)}`);
  return 0;
}

/** Sequential POST /execute only, inside a window the profile summary selects by timestamp. */
async function profileWorkload(stack: Stack, options: Options, profileDir: string) {
  for (let i = 0; i < 5; i++) await stack.service.execute("echo hi");
  const latencies: number[] = [];
  const startUs = Number(process.hrtime.bigint() / 1_000n);
  for (let i = 0; i < options.iterations; i++) {
    const r = await timed(() => stack.service.execute("echo hi"));
    if (r.value.status !== 200) throw new Error(`POST /execute: HTTP ${r.value.status}`);
    latencies.push(r.ms);
  }
  const endUs = Number(process.hrtime.bigint() / 1_000n);
  const window = { startUs, endUs, requests: options.iterations, executeP50Ms: median(latencies) };
  writeFileSync(path.join(profileDir, "window.json"), JSON.stringify(window));
  log(`${options.iterations} requests profiled; the app writes its profile at teardown`);
  return 0;
}

async function createSession(apiKey: string, id: string, workspace: string): Promise<void> {
  const response = await fetch(`${AGENTSH_URL}/api/v1/sessions`, {
    method: "POST",
    headers: { "X-API-Key": apiKey, "Content-Type": "application/json" },
    body: JSON.stringify({ id, workspace }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok && response.status !== 409) {
    throw new Error(`creating agentsh session ${id}: HTTP ${response.status}`);
  }
}

async function runOnce(stack: Stack, options: Options): Promise<RunResult> {
  const loadavgAtStart = loadavg();
  const rssRestMiB = await restingRss(stack.appPid);
  log("  latency (interleaved)");
  const latency = await measureLatency(stack, options);
  log("  demo routes");
  const demos = await measureDemos(stack, options);
  const load: LoadRun[] = [];
  for (const concurrency of options.levels) {
    log(`  concurrency ${concurrency} for ${options.durationS} s`);
    load.push(await measureLoad(stack, concurrency, options.durationS));
  }
  log(`  output flood (${options.floods} x ${options.floodMb} MB)`);
  const flood = await measureFlood(stack, options);
  return { loadavg: loadavgAtStart, rssRestMiB, latency, demos, load, flood };
}

async function restingRss(pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN;
  await sleep(1_000);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const memory = await memoryOf(pid);
    if (memory) samples.push(memory.rssMiB);
    await sleep(100);
  }
  return median(samples);
}

async function measureLatency(stack: Stack, options: Options): Promise<LatencyRun> {
  const bashEnv = { PATH: "/usr/bin:/bin" };
  const samples = {
    bash: [] as number[],
    cli: [] as number[],
    execute: [] as number[],
    badRequest: [] as number[],
    root: [] as number[],
    reference: [] as number[],
  };
  const hopSamples: HopSample[] = [];
  const expectHi = (what: string, ok: boolean, detail: string) => {
    if (!ok) throw new Error(`${what} did not print 'hi': ${detail.slice(0, 400)}`);
  };
  const steps: Array<(record: boolean, offset: number) => Promise<void>> = [
    async (record) => {
      const r = await timed(() => run(["/bin/bash", "-c", "echo hi"], bashEnv));
      expectHi("bash", r.value.stdout === "hi\n", r.value.stderr);
      if (record) samples.bash.push(r.ms);
    },
    async (record) => {
      const argv = [stack.bin, "exec", "--output", "json", "--events", "summary"];
      const r = await timed(() =>
        run([...argv, stack.cliSession, "--", "/bin/bash", "-c", "echo hi"], stack.cliEnv),
      );
      expectHi("agentsh exec", cliStdout(r.value) === "hi\n", r.value.stdout + r.value.stderr);
      if (record) samples.cli.push(r.ms);
    },
    async (record) => {
      const r = await timed(() => stack.service.execute("echo hi"));
      const body = r.value.body as { result?: { stdout?: string } };
      expectHi("POST /execute", body.result?.stdout === "hi\n", JSON.stringify(r.value));
      if (record) samples.execute.push(r.ms);
    },
    async (record) => {
      // Every middleware and the validator, no command: the HTTP side of the service alone.
      const r = await timed(() =>
        stack.service.request("/execute", { method: "POST", body: { command: "" } }),
      );
      if (r.value.status !== 400) throw new Error(`invalid body: HTTP ${r.value.status}`);
      if (record) samples.badRequest.push(r.ms);
    },
    async (record) => {
      const r = await timed(() => stack.service.request("/"));
      if (r.value.status !== 200) throw new Error(`GET /: HTTP ${r.value.status}`);
      if (record) samples.root.push(r.ms);
    },
  ];
  const reference = stack.reference;
  if (reference) {
    steps.push(async (record) => {
      const r = await timed(() => reference.execute("echo hi"));
      expectHi("the reference app", r.value.stdout === "hi", JSON.stringify(r.value));
      if (record) samples.reference.push(r.ms);
    });
  }
  const hopProbes = stack.hopProbes;
  if (hopProbes) {
    steps.push(async (record, offset) => {
      const sample = await hopProbes.sample(offset);
      if (record) hopSamples.push(sample);
    });
  }
  for (let i = 0; i < options.warmup + options.iterations; i++) {
    const record = i >= options.warmup;
    // Rotate the order so no path always runs right after the same other one.
    for (let s = 0; s < steps.length; s++) await steps[(s + i) % steps.length]?.(record, i);
  }
  const hops: Record<string, Percentiles> = {};
  for (const name of Object.keys(HOP_NAMES)) {
    const values = hopSamples.map((h) => h[name]).filter((v): v is number => v !== undefined);
    if (values.length > 0) hops[name] = percentiles(values);
  }
  return {
    bash: percentiles(samples.bash),
    cli: percentiles(samples.cli),
    execute: percentiles(samples.execute),
    badRequest: percentiles(samples.badRequest),
    root: percentiles(samples.root),
    ...(reference ? { reference: percentiles(samples.reference) } : {}),
    hops,
  };
}

/** The command's stdout from the CLI's JSON answer ("" when there is none). */
function cliStdout(result: ProcessResult): string {
  try {
    const parsed = JSON.parse(result.stdout) as { result?: { stdout?: string } };
    return parsed.result?.stdout ?? "";
  } catch {
    return "";
  }
}

async function measureDemos(stack: Stack, options: Options): Promise<DemoRun[]> {
  const list = await stack.service.request("/demo");
  const demos = (list.body as { demos?: Array<{ path: string }> }).demos ?? [];
  const names = demos
    .map((d) => d.path.replace(/^\/demo\//, ""))
    .filter((name) => options.demos === undefined || options.demos.includes(name));
  const results: DemoRun[] = [];
  for (const name of names) {
    const route = await timed(() => stack.service.request(`/demo/${name}`, { timeoutMs: 120_000 }));
    const body = route.value.body as
      | Array<{ command: string }>
      | { results?: { command: string }[] };
    const commands = (Array.isArray(body) ? body : (body.results ?? [])).map((e) => e.command);
    let slowestMs = 0;
    let slowestCommand = "";
    for (const command of commands) {
      const alone = await timed(() => stack.service.execute(command));
      if (alone.value.status !== 200) log(`    ${name}: '${command}' → HTTP ${alone.value.status}`);
      if (alone.ms > slowestMs) {
        slowestMs = alone.ms;
        slowestCommand = command;
      }
    }
    results.push({
      route: name,
      commands: commands.length,
      status: route.value.status,
      routeMs: route.ms,
      slowestMs,
      slowestCommand,
      ratio: slowestMs > 0 ? route.ms / slowestMs : Number.NaN,
    });
  }
  return results;
}

async function measureLoad(stack: Stack, concurrency: number, durationS: number) {
  const rss = stack.appPid !== undefined ? sampleRss(stack.appPid, 200) : undefined;
  const latencies: number[] = [];
  let ok = 0;
  let busy = 0;
  let other = 0;
  const started = performance.now();
  const endAt = started + durationS * 1_000;
  const worker = async () => {
    while (performance.now() < endAt) {
      const r = await timed(() => stack.service.execute("echo hi"));
      if (r.value.status === 200) {
        ok++;
        latencies.push(r.ms);
      } else if (r.value.status === 503) {
        busy++;
        // A refused client backs off briefly instead of spinning on 503s.
        await sleep(50);
      } else other++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedS = (performance.now() - started) / 1_000;
  const samples = rss ? await rss.stop() : [];
  return {
    concurrency,
    durationS: elapsedS,
    ok,
    busy,
    other,
    perSecond: ok / elapsedS,
    p50: median(latencies),
    p99: percentiles(latencies).p99,
    rssMaxMiB: samples.length > 0 ? Math.max(...samples) : undefined,
  };
}

async function measureFlood(stack: Stack, options: Options): Promise<FloodRun> {
  const rss = stack.appPid !== undefined ? sampleRss(stack.appPid, 100) : undefined;
  const command = `head -c ${options.floodMb * 1_000_000} /dev/zero | tr '\\0' a`;
  const started = performance.now();
  const answers = await Promise.all(
    Array.from({ length: options.floods }, () => stack.service.execute(command, 60_000)),
  );
  const wallMs = performance.now() - started;
  const samples = rss ? await rss.stop() : [];
  const memory = stack.appPid !== undefined ? await memoryOf(stack.appPid) : undefined;
  return {
    floods: options.floods,
    mb: options.floodMb,
    statuses: answers.map((a) => a.status),
    wallMs,
    rssMaxMiB: samples.length > 0 ? Math.max(...samples) : Number.NaN,
    hwmMiB: memory?.hwmMiB,
  };
}

// --- summary and report --------------------------------------------------------------------------

type Summary = ReturnType<typeof summarize>;

function summarize(runs: RunResult[]) {
  const paths = ["bash", "cli", "execute", "badRequest", "root"] as const;
  const latency = Object.fromEntries(
    paths.map((p) => [
      p,
      {
        p50: spread(runs.map((r) => r.latency[p].p50)),
        p95: spread(runs.map((r) => r.latency[p].p95)),
        p99: spread(runs.map((r) => r.latency[p].p99)),
      },
    ]),
  ) as Record<
    (typeof paths)[number],
    {
      p50: ReturnType<typeof spread>;
      p95: ReturnType<typeof spread>;
      p99: ReturnType<typeof spread>;
    }
  >;
  const ratio = (key: "p50" | "p95" | "p99") =>
    spread(runs.map((r) => r.latency.execute[key] / r.latency.cli[key]));
  const hops = Object.fromEntries(
    Object.keys(HOP_NAMES).map((name) => [
      name,
      spread(runs.map((r) => r.latency.hops[name]?.p50 ?? Number.NaN)),
    ]),
  );
  const routes = [...new Set(runs.flatMap((r) => r.demos.map((d) => d.route)))];
  const demos = routes.map((route) => {
    const of = runs.flatMap((r) => r.demos.filter((d) => d.route === route));
    return {
      route,
      commands: of[0]?.commands ?? 0,
      statuses: [...new Set(of.map((d) => d.status))],
      routeMs: spread(of.map((d) => d.routeMs)),
      slowestMs: spread(of.map((d) => d.slowestMs)),
      ratio: spread(of.map((d) => d.ratio)),
    };
  });
  const levels = [...new Set(runs.flatMap((r) => r.load.map((l) => l.concurrency)))];
  const load = levels.map((concurrency) => {
    const of = runs.flatMap((r) => r.load.filter((l) => l.concurrency === concurrency));
    return {
      concurrency,
      perSecond: spread(of.map((l) => l.perSecond)),
      ok: spread(of.map((l) => l.ok)),
      busy: spread(of.map((l) => l.busy)),
      other: spread(of.map((l) => l.other)),
      p50: spread(of.map((l) => l.p50)),
      p99: spread(of.map((l) => l.p99)),
      rssMaxMiB: spread(of.map((l) => l.rssMaxMiB ?? Number.NaN)),
    };
  });
  // POST /execute p50 = HTTP side (a request that stops at validation) + executor.run() + the
  // rest (run-command gate, result shaping and redaction, response). Each term from the same run.
  const p50 = (r: RunResult, hop: string) => r.latency.hops[hop]?.p50 ?? Number.NaN;
  const decomposition = {
    execute: spread(runs.map((r) => r.latency.execute.p50)),
    http: spread(runs.map((r) => r.latency.badRequest.p50)),
    executorRun: spread(runs.map((r) => p50(r, "executorRun"))),
    cli: spread(runs.map((r) => p50(r, "cliAsExecutor"))),
    reaper: spread(runs.map((r) => p50(r, "reaperScan"))),
    lookup: spread(runs.map((r) => p50(r, "executorLookup"))),
    executorRest: spread(
      runs.map(
        (r) =>
          p50(r, "executorRun") -
          p50(r, "cliAsExecutor") -
          p50(r, "reaperScan") -
          p50(r, "executorLookup"),
      ),
    ),
    appRest: spread(
      runs.map((r) => r.latency.execute.p50 - r.latency.badRequest.p50 - p50(r, "executorRun")),
    ),
  };
  // Ours over the v0 app's, p50 of each run (only with --reference).
  const versusReference = runs.every((r) => r.latency.reference)
    ? {
        ours: spread(runs.map((r) => r.latency.execute.p50)),
        reference: spread(runs.map((r) => r.latency.reference?.p50 ?? Number.NaN)),
        ratio: spread(runs.map((r) => r.latency.execute.p50 / (r.latency.reference?.p50 ?? 1))),
      }
    : undefined;
  return {
    latency,
    versusReference,
    decomposition,
    ratio: { p50: ratio("p50"), p95: ratio("p95"), p99: ratio("p99") },
    hops,
    demos,
    load,
    // Per run as well: the order shows whether memory comes back between runs.
    rss: {
      rest: withRuns(runs.map((r) => r.rssRestMiB)),
      load16: withRuns(runs.map((r) => r.load.at(-1)?.rssMaxMiB ?? Number.NaN)),
      flood: withRuns(runs.map((r) => r.flood.rssMaxMiB)),
      hwm: withRuns(runs.map((r) => r.flood.hwmMiB ?? Number.NaN)),
    },
    flood: {
      wallMs: spread(runs.map((r) => r.flood.wallMs)),
      statuses: runs.flatMap((r) => r.flood.statuses),
    },
  };
}

const withRuns = (values: number[]) => ({ ...spread(values), perRun: values });
const rssRow = (label: string, figure: ReturnType<typeof withRuns>) => [
  label,
  formatSpread(figure, 0),
  figure.perRun.map((v) => v.toFixed(0)).join(" → "),
];

function renderReport(
  meta: {
    commit: string;
    agentsh: string;
    cpus: number;
    appProcess: string;
    loadavgBefore: number[];
    loadavgAfter: number[];
  },
  runCount: number,
  s: Summary,
  options: Options,
): string {
  const ms = (x: ReturnType<typeof spread>) => formatSpread(x, 1);
  const out: string[] = [];
  out.push(
    `governed-executor benchmark: ${runCount} run(s), commit ${meta.commit}, ${meta.agentsh}, ${meta.cpus} cores, load average ${fmtLoad(meta.loadavgBefore)} → ${fmtLoad(meta.loadavgAfter)}`,
    "Figures: median across runs (min–max across runs).",
    "",
    `echo hi, ${options.iterations} sequential samples per path and run, interleaved (ms)`,
  );
  const lat = (label: string, key: keyof Summary["latency"]) => [
    label,
    ms(s.latency[key].p50),
    ms(s.latency[key].p95),
    ms(s.latency[key].p99),
  ];
  out.push(
    renderTable(
      ["path", "p50", "p95", "p99"],
      [
        lat("bash -c 'echo hi'", "bash"),
        lat("agentsh exec (bare CLI)", "cli"),
        lat("POST /execute", "execute"),
        [
          "ratio execute / bare CLI",
          formatSpread(s.ratio.p50, 2, "×"),
          formatSpread(s.ratio.p95, 2, "×"),
          formatSpread(s.ratio.p99, 2, "×"),
        ],
        lat("POST /execute, invalid body (400)", "badRequest"),
        lat("GET / (HTTP alone)", "root"),
      ],
    ),
  );
  if (s.versusReference) {
    const v = s.versusReference;
    out.push(
      "",
      "POST /execute p50, ours and the v0 app's, same agentsh, same run (ms)",
      renderTable(
        ["ours", "v0 app", "ratio ours / v0"],
        [[ms(v.ours), ms(v.reference), formatSpread(v.ratio, 2, "×")]],
      ),
    );
  }
  if (options.hops) {
    out.push("", "Hops of POST /execute, each timed alone (p50 per run, ms)");
    out.push(
      renderTable(
        ["hop", "p50"],
        Object.entries(HOP_NAMES).map(([key, label]) => [
          label,
          formatSpread(s.hops[key] ?? spread([]), key === "shaping" ? 3 : 1),
        ]),
      ),
    );
    const d = s.decomposition;
    out.push("", "Where the p50 of POST /execute goes (differences of p50s from the same run, ms)");
    out.push(
      renderTable(
        ["part", "ms"],
        [
          ["POST /execute p50", ms(d.execute)],
          ["  HTTP, middleware, validation (the 400 request)", ms(d.http)],
          ["  executor.run()", ms(d.executorRun)],
          ["    agentsh exec CLI (spawn → agentsh answer)", ms(d.cli)],
          ["    process reaper (/proc scan after the CLI)", ms(d.reaper)],
          ["    event-store lookup", ms(d.lookup)],
          ["    rest of the executor (by difference)", ms(d.executorRest)],
          ["  rest of the app (by difference)", ms(d.appRest)],
        ],
      ),
    );
  }
  out.push("", "Demo routes vs. their slowest command alone via POST /execute (ms)");
  out.push(
    renderTable(
      ["route", "cmds", "route", "slowest cmd", "route/slowest"],
      s.demos.map((d) => [
        `/demo/${d.route}${d.statuses.some((x) => x !== 200) ? ` (HTTP ${d.statuses.join("/")})` : ""}`,
        String(d.commands),
        ms(d.routeMs),
        ms(d.slowestMs),
        formatSpread(d.ratio, 2, "×"),
      ]),
    ),
  );
  out.push("", `POST /execute echo hi under load, ${options.durationS} s per level`);
  out.push(
    renderTable(
      ["concurrency", "req/s", "200", "503", "other", "p50 ms", "p99 ms"],
      s.load.map((l) => [
        String(l.concurrency),
        formatSpread(l.perSecond, 1),
        formatSpread(l.ok, 0),
        formatSpread(l.busy, 0),
        formatSpread(l.other, 0),
        ms(l.p50),
        ms(l.p99),
      ]),
    ),
  );
  const floodStatuses = [...new Set(s.flood.statuses)].join("/");
  out.push("", `App RSS (MiB, VmRSS of the process serving the app: ${meta.appProcess})`);
  out.push(
    renderTable(
      ["state", "RSS", "run by run"],
      [
        rssRow("at rest (before the run)", s.rss.rest),
        rssRow("concurrency 16 (max sampled)", s.rss.load16),
        rssRow(
          `flood ${options.floods} × ${options.floodMb} MB (max sampled; HTTP ${floodStatuses}, ${formatSpread(s.flood.wallMs, 0)} ms)`,
          s.rss.flood,
        ),
        rssRow("VmHWM (peak since boot) after the flood", s.rss.hwm),
      ],
    ),
  );
  return out.join("\n");
}

const fmtLoad = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function stringEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

// --- entry ---------------------------------------------------------------------------------------

const argv = process.argv.slice(2);
try {
  const options = parseOptions(argv);
  const inNamespace = process.env.BENCH_IN_STACK === "1" && process.env.SERVICE_URL;
  const code = inNamespace ? await inside(options) : await outside(options, argv);
  process.exit(code);
} catch (error) {
  log(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
