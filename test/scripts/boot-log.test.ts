import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

/**
 * scripts/boot writes its own lines as JSON (docs/logging.md). Its helpers, taken from the
 * script itself and run by bash, must produce valid JSON for any message, including text it
 * embeds from elsewhere (a command's output in a failure, paths, `agentsh --version`).
 */
const BOOT = readFileSync("scripts/boot", "utf8");
const helper = (name: string) => {
  const match = new RegExp(`^${name}\\(\\) \\{\\n[\\s\\S]*?^\\}\\n`, "m").exec(BOOT);
  if (!match) throw new Error(`scripts/boot has no ${name}()`);
  return match[0];
};

function logLine(level: string, message: string): string {
  const run = spawnSync(
    "bash",
    [
      "-c",
      `${helper("json_string")}${helper("log_line")}log_line "$1" "$2" 2>&1`,
      "_",
      level,
      message,
    ],
    { encoding: "utf8", timeout: 10_000 },
  );
  expect(run.status, run.stderr).toBe(0);
  return run.stdout;
}

describe("scripts/boot's log lines", () => {
  it("are one JSON line of the schema, source boot", () => {
    const out = logLine("info", "agentsh server up on 127.0.0.1:18080");
    expect(out.endsWith("\n")).toBe(true);
    expect(out.trimEnd().split("\n")).toHaveLength(1);
    const record = JSON.parse(out) as Record<string, unknown>;
    expect(Object.keys(record)).toEqual(["time", "level", "source", "message"]);
    expect(record).toMatchObject({
      level: "info",
      source: "boot",
      message: "agentsh server up on 127.0.0.1:18080",
    });
    expect(new Date(record.time as string).toISOString()).toBe(record.time);
  });

  it("escape quotes, backslashes, newlines and tabs, drop other control characters, keep UTF-8", () => {
    const message =
      'npm run build failed: src/a.ts(1,2): error "x"\n\tC:\\path %s %d\u0001\u001b[1m é ✓';
    const record = JSON.parse(logLine("error", message)) as { message: string };
    expect(record.message).toBe(
      'npm run build failed: src/a.ts(1,2): error "x"\n\tC:\\path %s %d[1m é ✓',
    );
  });
});
