import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  lineSplitter,
  MAX_LINE_BYTES,
  parseAgentshLine,
  relayAgentshLog,
} from "../../src/agentsh/server-log.js";
import { createJsonLogger } from "../../src/logger.js";

/** Lines agentsh 0.16.9 wrote to a stack log of the e2e suite (scripts/boot, before the relay). */
const CAPTURED = [
  "2026/12/05 16:45:08 INFO landlock config prepared for wrapper abi=5 workspace=/workspace session_id=gexec-3",
  "2026/12/05 16:45:08 INFO seccomp openat emulation disabled: other backend active landlock=true fuse_mounts=false",
  "2026/12/05 16:45:26 WARN seccomp wrapper unavailable: wrapper binary not found (running without seccomp enforcement) wrapper_bin=agentsh-unixwrap session_id=gexec-3",
  "2026/12/05 16:44:58 INFO fuse: mount method selected method=new-api",
  "agentsh server listening on 127.0.0.1:18080",
  'trash purge: invalid ttl "7d": time: unknown unit "d" in duration "7d"',
];

describe("parseAgentshLine", () => {
  it("parses Go's slog text lines: level, message, key=value attributes", () => {
    expect(parseAgentshLine(CAPTURED[2] ?? "")).toEqual({
      level: "warn",
      message:
        "seccomp wrapper unavailable: wrapper binary not found (running without seccomp enforcement)",
      fields: { attrs: { wrapper_bin: "agentsh-unixwrap", session_id: "gexec-3" } },
    });
    expect(parseAgentshLine(CAPTURED[3] ?? "")).toEqual({
      level: "info",
      message: "fuse: mount method selected",
      fields: { attrs: { method: "new-api" } },
    });
  });

  it("demotes the per-command lines to debug and keeps agentsh's level beside", () => {
    expect(parseAgentshLine(CAPTURED[0] ?? "")).toEqual({
      level: "debug",
      message: "landlock config prepared for wrapper",
      fields: {
        attrs: { abi: "5", workspace: "/workspace", session_id: "gexec-3" },
        agentshLevel: "INFO",
      },
    });
    expect(parseAgentshLine(CAPTURED[1] ?? "")?.level).toBe("debug");
    // The same message at WARN (a problem, not chatter) keeps its level.
    expect(
      parseAgentshLine("2026/12/05 16:45:08 WARN landlock config prepared for wrapper abi=5")
        ?.level,
    ).toBe("warn");
  });

  it("unquotes quoted values, including spaces, '=' and escapes", () => {
    const line =
      '2026/12/05 16:45:08.123 ERROR exec failed error="open /x: permission denied" cmd="a=b \\"c\\"" n=3 empty=';
    expect(parseAgentshLine(line)).toEqual({
      level: "error",
      message: "exec failed",
      fields: {
        attrs: { error: "open /x: permission denied", cmd: 'a=b "c"', n: "3", empty: "" },
      },
    });
    // Go escapes that JSON lacks stay as written.
    expect(parseAgentshLine('2026/12/05 16:45:08 INFO m v="\\x00"')?.fields).toEqual({
      attrs: { v: "\\x00" },
    });
  });

  it("maps slog's offset levels (INFO+2) to their base level and keeps a bare message", () => {
    expect(parseAgentshLine("2026/12/05 16:45:08 INFO+2 server started")).toEqual({
      level: "info",
      message: "server started",
      fields: {},
    });
    expect(parseAgentshLine("2026/12/05 16:45:08 DEBUG x")?.level).toBe("debug");
  });

  it("keeps plain lines: the listen notice as info, other output as warn, panics as error", () => {
    expect(parseAgentshLine(CAPTURED[4] ?? "")).toEqual({
      level: "info",
      message: "agentsh server listening on 127.0.0.1:18080",
      fields: {},
    });
    expect(parseAgentshLine(CAPTURED[5] ?? "")?.level).toBe("warn");
    expect(parseAgentshLine("panic: runtime error: nil map")?.level).toBe("error");
    // Its kill of a command's process group that had already ended.
    expect(
      parseAgentshLine("exec: failed to kill process group 15738: no such process")?.level,
    ).toBe("debug");
    expect(
      parseAgentshLine("exec: failed to kill process group 15738: operation not permitted")?.level,
    ).toBe("warn");
    expect(parseAgentshLine("goroutine 1 [running]:")?.level).toBe("warn");
    expect(parseAgentshLine("")).toBeNull();
    expect(parseAgentshLine("  \r")).toBeNull();
  });
});

describe("lineSplitter", () => {
  it("joins chunks into lines and cuts a line longer than the bound once", () => {
    const lines: [string, boolean][] = [];
    const split = lineSplitter((line, cut) => lines.push([line, cut]));
    split.push("a");
    split.push("b\nc\n");
    split.push("x".repeat(MAX_LINE_BYTES + 10));
    split.push("yyy\nd");
    split.flush();
    expect(lines).toEqual([
      ["ab", false],
      ["c", false],
      ["x".repeat(MAX_LINE_BYTES), true],
      ["d", false],
    ]);
  });
});

describe("relayAgentshLog (a real named pipe, as scripts/boot makes it)", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("relays every line as one JSON line of the schema, source agentsh, at LOG_LEVEL", async () => {
    dir = mkdtempSync(path.join(tmpdir(), "server-log-"));
    const pipe = path.join(dir, "agentsh-log.pipe");
    execFileSync("mkfifo", [pipe]);
    // Held read-write like scripts/boot's fd 8: the relay never sees end-of-file.
    const writer = openSync(pipe, "r+");
    const out: string[] = [];
    const problems: string[] = [];
    const stop = relayAgentshLog(
      pipe,
      createJsonLogger("info", (line) => out.push(line), "agentsh"),
      createJsonLogger("debug", (line) => problems.push(line)),
    );
    try {
      writeSync(writer, `${CAPTURED.join("\n")}\n`);
      const deadline = Date.now() + 5_000;
      while (out.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    } finally {
      stop();
      closeSync(writer);
    }
    const records = out.map((line) => JSON.parse(line) as Record<string, unknown>);
    // The two per-command lines are debug: below LOG_LEVEL=info.
    expect(records.map((r) => [r.level, r.message])).toEqual([
      ["warn", expect.stringMatching(/^seccomp wrapper unavailable/)],
      ["info", "fuse: mount method selected"],
      ["info", "agentsh server listening on 127.0.0.1:18080"],
      ["warn", CAPTURED[5]],
    ]);
    for (const record of records) {
      expect(Object.keys(record).slice(0, 4)).toEqual(["time", "level", "source", "message"]);
      expect(record.source).toBe("agentsh");
      expect(new Date(record.time as string).toISOString()).toBe(record.time);
    }
    expect(problems).toEqual([]);
  });

  it("drains what agentsh wrote before the service started (scripts/boot's failure path)", () => {
    dir = mkdtempSync(path.join(tmpdir(), "server-log-"));
    const pipe = path.join(dir, "agentsh-log.pipe");
    execFileSync("mkfifo", [pipe]);
    const writer = openSync(pipe, "r+");
    try {
      writeSync(writer, `${CAPTURED.slice(3).join("\n")}\n`);
      const run = spawnSync(
        process.execPath,
        ["--import", "tsx", "src/agentsh/server-log-drain.ts", pipe],
        { encoding: "utf8", timeout: 20_000, env: { ...process.env, LOG_LEVEL: "info" } },
      );
      expect(run.status, run.stderr).toBe(0);
      const records = run.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { source: string; message: string });
      expect(records.map((r) => [r.source, r.message])).toEqual([
        ["agentsh", "fuse: mount method selected"],
        ["agentsh", "agentsh server listening on 127.0.0.1:18080"],
        ["agentsh", CAPTURED[5]],
      ]);
    } finally {
      closeSync(writer);
    }
  });
});
