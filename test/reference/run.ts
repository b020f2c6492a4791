/**
 * Runs the reference system's own test suite (68 vitest cases, unchanged) against a booted stack.
 *
 *   npx tsx test/reference/run.ts prepare
 *       copy the suite to a fresh temp dir and `npm ci` its devDependencies there; prints the
 *       dir as the last stdout line. Needs the package registry, so run it OUTSIDE the test
 *       namespace of test/net/with-stack.ts (which has no route out).
 *   npx tsx test/reference/run.ts run --suite DIR [--url URL]
 *       run a prepared copy against URL (default: TEST_URL, else SERVICE_URL from with-stack),
 *       then delete DIR (--keep keeps it).
 *   npx tsx test/reference/run.ts [--url URL]
 *       both steps in one go, for a stack reachable from where the registry is.
 *
 * `run` ends with exactly one line `reference suite: N passed, N failed` on stdout and exits
 * non-zero when a case failed, when vitest failed, or when nothing ran. `--known-failure NAME`
 * (repeatable; NAME = the case's full name as vitest reports it) names a failure that is
 * understood and documented: it still counts as failed in that line, is listed on a
 * `reference suite: known failure: NAME` line before it, and alone does not fail the run.
 *
 * The suite lives outside the repository (read-only, REFERENCE_SUITE_DIR, default
 * ../shared/reference-suite next to the checkout); it is copied, never vendored.
 * Node builtins only, every child process has a deadline.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const REPO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const INSTALL_TIMEOUT_MS = 5 * 60_000;
const SUITE_TIMEOUT_MS = 10 * 60_000;
/** The copy's JSON report, read for the counts. */
const REPORT_FILE = "reference-results.json";

function log(message: string): void {
  process.stderr.write(`reference-suite runner: ${message}\n`);
}

function suiteSource(): string {
  const candidates = [
    process.env.REFERENCE_SUITE_DIR,
    path.resolve(REPO_DIR, "../shared/reference-suite"),
    "/work/shared/reference-suite",
  ].filter((dir): dir is string => dir !== undefined && dir !== "");
  const found = candidates.find((dir) => existsSync(path.join(dir, "package-lock.json")));
  if (!found) {
    throw new Error(
      `reference suite not found (tried ${candidates.join(", ")}); set REFERENCE_SUITE_DIR`,
    );
  }
  return found;
}

/** Runs a child with inherited stderr; its stdout goes to our stderr so ours stays parseable. */
function runChild(
  argv: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined) throw new Error("empty argv");
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ["ignore", process.stderr, process.stderr],
      timeout: options.timeoutMs,
      killSignal: "SIGKILL",
    });
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      if (signal !== null) {
        log(`${argv.join(" ")} ended by ${signal} (deadline ${options.timeoutMs / 1000} s)`);
        resolve(1);
      } else resolve(code ?? 1);
    });
  });
}

async function prepare(): Promise<string> {
  const source = suiteSource();
  const dir = await mkdtemp(path.join(tmpdir(), "reference-suite-"));
  try {
    await cp(source, dir, {
      recursive: true,
      filter: (from) => !from.split(path.sep).includes("node_modules"),
    });
    log(`copied ${source} to ${dir}; npm ci`);
    // Its own lockfile and devDependencies; npm's cache may speed this up but never decides it.
    const code = await runChild(["npm", "ci", "--no-audit", "--no-fund"], {
      cwd: dir,
      env: process.env,
      timeoutMs: INSTALL_TIMEOUT_MS,
    });
    if (code !== 0) throw new Error(`npm ci failed in ${dir} (exit ${code})`);
    if (!existsSync(path.join(dir, "node_modules/vitest/vitest.mjs"))) {
      throw new Error(`npm ci did not install vitest in ${dir}`);
    }
    return dir;
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

interface VitestReport {
  numPassedTests: number;
  numFailedTests: number;
  numTotalTests: number;
  testResults: Array<{
    name: string;
    status: string;
    assertionResults: Array<{ fullName: string; status: string }>;
  }>;
}

/** Runs a prepared copy; returns the counts (null when vitest left no report). */
async function runSuite(
  dir: string,
  url: string,
): Promise<{ code: number; report: VitestReport | null }> {
  const reportPath = path.join(dir, REPORT_FILE);
  await rm(reportPath, { force: true });
  log(`running ${dir} against ${url}`);
  // vitest straight from the copy's node_modules: nothing may reach for the registry here.
  const code = await runChild(
    [
      process.execPath,
      "node_modules/vitest/vitest.mjs",
      "run",
      "--reporter=default",
      "--reporter=json",
      `--outputFile=${REPORT_FILE}`,
    ],
    { cwd: dir, env: { ...process.env, TEST_URL: url }, timeoutMs: SUITE_TIMEOUT_MS },
  );
  try {
    return { code, report: JSON.parse(await readFile(reportPath, "utf8")) as VitestReport };
  } catch {
    return { code, report: null };
  }
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    strict: true,
    options: {
      url: { type: "string" },
      suite: { type: "string" },
      keep: { type: "boolean", default: false },
      "known-failure": { type: "string", multiple: true, default: [] },
    },
  });
  const [mode = "all", ...rest] = positionals;
  if (rest.length > 0 || !["prepare", "run", "all"].includes(mode)) {
    throw new Error(
      "usage: run.ts [prepare | run --suite DIR] [--url URL] [--keep] [--known-failure NAME]...",
    );
  }
  if (mode === "prepare") {
    process.stdout.write(`${await prepare()}\n`);
    return 0;
  }

  const url = values.url ?? process.env.TEST_URL ?? process.env.SERVICE_URL;
  if (!url)
    throw new Error("no stack URL: pass --url, or set TEST_URL (with-stack sets SERVICE_URL)");
  if (mode === "run" && !values.suite) throw new Error("run needs --suite DIR (from `prepare`)");
  // Checked before anything is deleted: `run` removes the directory it is given.
  if (values.suite && !existsSync(path.join(values.suite, "node_modules/vitest/vitest.mjs"))) {
    throw new Error(`${values.suite} is not a prepared copy of the suite (run \`prepare\` first)`);
  }
  const dir = values.suite ?? (await prepare());
  try {
    const { code, report } = await runSuite(dir, url);
    const passed = report?.numPassedTests ?? 0;
    const failed = report?.numFailedTests ?? 0;
    const failures = (report?.testResults ?? [])
      .flatMap((file) => file.assertionResults)
      .filter((test) => test.status === "failed")
      .map((test) => test.fullName);
    const known = new Set(values["known-failure"]);
    for (const name of failures.filter((name) => known.has(name)))
      process.stdout.write(`reference suite: known failure: ${name}\n`);
    process.stdout.write(`reference suite: ${passed} passed, ${failed} failed\n`);
    if (report === null) log("vitest wrote no report");
    else if (passed + failed === 0) log("no test ran");
    const unexplained = failures.filter((name) => !known.has(name));
    for (const name of unexplained) log(`failed: ${name}`);
    // A file that failed without a failed case (e.g. it did not load) is never a known failure.
    const brokenFiles = (report?.testResults ?? []).filter(
      (file) =>
        file.status === "failed" && !file.assertionResults.some((t) => t.status === "failed"),
    );
    for (const file of brokenFiles) log(`file failed: ${file.name}`);
    // vitest exits 1 for failed cases; anything else (or a failure not accounted for) fails us.
    const vitestOk =
      code === 0 || (code === 1 && failed > 0 && failures.length === failed && !brokenFiles.length);
    return vitestOk && report !== null && unexplained.length === 0 && passed > 0 ? 0 : 1;
  } finally {
    if (!values.keep) await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    log(`error: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
