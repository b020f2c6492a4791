/**
 * The counting of scripts/test, in one place. Every stage appends its counts to a totals file
 * (one JSON line each); `close` prints the closing line and fails unless every stage passed.
 *
 *   test-counts.ts vitest TOTALS STAGE REPORT EXIT   a vitest run: its JSON report and exit code
 *   test-counts.ts add TOTALS STAGE PASSED FAILED ERRORS   a stage counted elsewhere
 *   test-counts.ts close TOTALS                      the closing line; exit 1 unless all passed
 *
 * A vitest stage fails on a failed test, on an error, or on an unexpected skip:
 * - an error: vitest exited non-zero with no failed test to show for it, a file that could not
 *   load or whose beforeAll/afterAll threw, no report, no tests;
 * - an unexpected skip: a test that did not run and that skipWhen (test/support/skip-when.ts)
 *   did not skip for a documented condition. vitest reports the tests of a failed beforeAll as
 *   skipped, so these are counted too, by name.
 * `vitest` exits 1 when its stage failed (scripts/test keeps the stack's logs then).
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { isSkipCondition } from "../test/support/skip-when.js";

interface StageCounts {
  stage: string;
  passed: number;
  failed: number;
  errors: number;
  unexpectedSkips: number;
  /** Declared skips by condition (skipWhen). */
  declaredSkips: Record<string, number>;
  /** The problems by name (failed tests with their first message line, errors, unexpected
   * skips), repeated by `close` so that the last lines of a run say what failed. */
  problems?: string[];
}

/** The part of vitest's JSON report (`--reporter=json`) that is counted. */
interface VitestJsonReport {
  numTotalTests: number;
  testResults: Array<{
    name: string;
    status: string;
    message: string;
    assertionResults: Array<{
      fullName: string;
      status: string;
      failureMessages: string[];
      meta?: { skippedWhen?: unknown };
    }>;
  }>;
}

/** How many problems of each kind a stage's own line lists by name. */
const LISTED = 25;

function plural(n: number, word: string, words = `${word}s`): string {
  return `${n} ${n === 1 ? word : words}`;
}

function summary(c: Omit<StageCounts, "stage">): string {
  const declared = Object.entries(c.declaredSkips);
  const declaredTotal = declared.reduce((sum, [, n]) => sum + n, 0);
  return (
    `${c.passed} passed, ${c.failed} failed, ${plural(c.errors, "error")}, ` +
    `${plural(c.unexpectedSkips, "unexpected skip")}` +
    (declaredTotal > 0
      ? ` (${declaredTotal} skipped as declared: ${declared.map(([name, n]) => `${name}: ${n}`).join(", ")})`
      : "")
  );
}

function isClean(c: StageCounts): boolean {
  return c.failed === 0 && c.errors === 0 && c.unexpectedSkips === 0;
}

/** The first non-empty line of a failure message, cut to a readable length. */
function firstLine(message: string | undefined): string {
  const line = (message ?? "").split("\n").find((l) => l.trim() !== "") ?? "(no message)";
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

function readReport(file: string): VitestJsonReport | string {
  if (!existsSync(file)) return "it wrote no report (did it start?)";
  try {
    const report = JSON.parse(readFileSync(file, "utf8")) as VitestJsonReport;
    if (!Array.isArray(report.testResults)) return "its report has no testResults";
    return report;
  } catch (error) {
    return `its report is not JSON: ${(error as Error).message}`;
  }
}

function countVitest(stage: string, reportFile: string, exitCode: number): StageCounts {
  const counts: StageCounts = {
    stage,
    passed: 0,
    failed: 0,
    errors: 0,
    unexpectedSkips: 0,
    declaredSkips: {},
  };
  const errors: string[] = [];
  const unexpected: string[] = [];
  const failures: string[] = [];
  const report = readReport(reportFile);
  if (typeof report === "string") {
    errors.push(report);
  } else {
    for (const file of report.testResults) {
      const where = path.relative(process.cwd(), file.name);
      let fileFailed = 0;
      for (const test of file.assertionResults) {
        if (test.status === "passed") counts.passed++;
        else if (test.status === "failed") {
          counts.failed++;
          fileFailed++;
          failures.push(`${where} > ${test.fullName}: ${firstLine(test.failureMessages[0])}`);
        } else {
          // skipped, pending or todo: it did not run.
          const declared = test.meta?.skippedWhen;
          const conditions = Array.isArray(declared) ? declared.map(String) : [];
          const first = conditions[0];
          if (first !== undefined && conditions.every(isSkipCondition)) {
            counts.declaredSkips[first] = (counts.declaredSkips[first] ?? 0) + 1;
          } else {
            unexpected.push(`${where} > ${test.fullName} (${test.status})`);
          }
        }
      }
      // A file-level error (it could not load, or a top-level hook threw), or a failed file
      // without a failed test: a describe's hook threw.
      if (file.message !== "" || (file.status === "failed" && fileFailed === 0)) {
        errors.push(
          `${where}: ${file.message || "a beforeAll/afterAll hook failed (vitest's output above says which)"}`,
        );
      }
    }
    if (report.numTotalTests === 0) errors.push("it ran no tests");
  }
  if (exitCode !== 0 && counts.failed === 0 && errors.length === 0) {
    errors.push(
      `vitest exited ${exitCode} without a failed test (an error outside the tests: its output above says which)`,
    );
  }
  counts.errors = errors.length;
  counts.unexpectedSkips = unexpected.length;

  const lines = [
    ...failures.slice(0, LISTED).map((f) => `  failed: ${f}`),
    ...(failures.length > LISTED ? [`  … and ${failures.length - LISTED} more failed`] : []),
    ...errors.map((e) => `  error: ${e}`),
    ...unexpected.slice(0, LISTED).map((s) => `  unexpected skip: ${s}`),
    ...(unexpected.length > LISTED ? [`  … and ${unexpected.length - LISTED} more skipped`] : []),
  ];
  console.log(`\n${stage}: ${summary(counts)}${lines.length > 0 ? `\n${lines.join("\n")}` : ""}`);
  return { ...counts, problems: lines };
}

function readTotals(file: string): StageCounts[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as StageCounts);
}

function close(file: string): boolean {
  const stages = readTotals(file);
  const total: Omit<StageCounts, "stage"> = {
    passed: 0,
    failed: 0,
    errors: 0,
    unexpectedSkips: 0,
    declaredSkips: {},
  };
  for (const s of stages) {
    total.passed += s.passed;
    total.failed += s.failed;
    total.errors += s.errors;
    total.unexpectedSkips += s.unexpectedSkips;
    for (const [name, n] of Object.entries(s.declaredSkips)) {
      total.declaredSkips[name] = (total.declaredSkips[name] ?? 0) + n;
    }
  }
  const failing = stages.filter((s) => !isClean(s));
  if (failing.length > 0) {
    console.log(`\nfailed stages: ${failing.map((s) => `${s.stage} (${summary(s)})`).join("; ")}`);
    for (const s of failing) {
      for (const problem of s.problems ?? []) console.log(`  ${s.stage}: ${problem.trim()}`);
    }
  }
  if (stages.length === 0) {
    total.errors++;
    console.log("\nno stage reported any counts");
  }
  console.log(`\n${summary(total)}`);
  return stages.length > 0 && failing.length === 0;
}

function count(arg: string | undefined, what: string): number {
  const n = Number(arg);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${what}: not a count: ${arg}`);
  return n;
}

const [command, totals, ...rest] = process.argv.slice(2);
if (!totals) throw new Error("usage: test-counts.ts vitest|add|close TOTALS …");
switch (command) {
  case "vitest": {
    const [stage, report, exitCode] = rest;
    if (!stage || !report) throw new Error("usage: test-counts.ts vitest TOTALS STAGE REPORT EXIT");
    const counts = countVitest(stage, report, count(exitCode, "EXIT"));
    appendFileSync(totals, `${JSON.stringify(counts)}\n`);
    process.exitCode = isClean(counts) ? 0 : 1;
    break;
  }
  case "add": {
    const [stage, passed, failed, errors] = rest;
    if (!stage) throw new Error("usage: test-counts.ts add TOTALS STAGE PASSED FAILED ERRORS");
    const counts: StageCounts = {
      stage,
      passed: count(passed, "PASSED"),
      failed: count(failed, "FAILED"),
      errors: count(errors, "ERRORS"),
      unexpectedSkips: 0,
      declaredSkips: {},
    };
    appendFileSync(totals, `${JSON.stringify(counts)}\n`);
    break;
  }
  case "close":
    process.exitCode = close(totals) ? 0 : 1;
    break;
  default:
    throw new Error(`test-counts.ts: unknown command ${command} (vitest, add, close)`);
}
