import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { withRecordedDenials } from "../../src/agentsh/denials.js";
import {
  boundStream,
  interpretCliOutcome,
  splitWrapperPreamble,
} from "../../src/agentsh/interpret.js";
import { parseEventSearch } from "../../src/agentsh/server-api.js";
import type { Execution, GovernedResult } from "../../src/executor.js";

/**
 * Real `agentsh exec --output json` captures (agentsh 0.16.9 with our bundle), replayed through
 * the parser. Each fixture records the CLI's exit code, stdout and stderr.
 */
const FIXTURES = path.resolve("test/fixtures/agentsh");
const LIMIT = 64 * 1024;

function replayExecution(name: string): Execution {
  const fixture = JSON.parse(readFileSync(path.join(FIXTURES, `${name}.json`), "utf8")) as {
    cliExitCode: number;
    stdout: string;
    stderr: string;
  };
  return interpretCliOutcome(
    {
      exitCode: fixture.cliExitCode,
      stdout: fixture.stdout,
      stderr: fixture.stderr,
      timedOut: false,
      canceled: false,
      durationMs: 1,
    },
    LIMIT,
  );
}

/** A fixture that must have produced a result (not "nothing ran"). */
function replay(name: string): GovernedResult {
  const execution = replayExecution(name);
  if (execution.kind !== "result") throw new Error(`${name}: not run (${execution.detail})`);
  return execution.result;
}

/** The event-store query that accompanies a nested denial fixture. */
function recorded(name: string) {
  const fixture = JSON.parse(readFileSync(path.join(FIXTURES, `${name}__events.json`), "utf8")) as {
    body: string;
  };
  return parseEventSearch(JSON.parse(fixture.body));
}

describe("parsing agentsh ExecResponses", () => {
  it("allowed: ok, the wrapper's stderr preamble removed, sandbox confirmed", () => {
    expect(replay("echo_hi")).toMatchObject({
      outcome: "ok",
      exitCode: 0,
      stdout: { text: "hi\n", truncated: false },
      stderr: { text: "" },
      decision: null,
      sandboxed: true,
    });
  });

  it("pre-check denial: blocked with the rule from the response; nothing was started", () => {
    expect(replay("sudo_id_precheck_deny")).toMatchObject({
      outcome: "blocked",
      exitCode: 126,
      decision: { rule: "deny-privilege-escalation", kind: "command" },
      sandboxed: null,
    });
  });

  it("nested execve denial: the response alone says only 'failed'; the event store names the rule", () => {
    const alone = replay("sudo_id_nested_execve_deny");
    expect(alone).toMatchObject({
      outcome: "failed",
      exitCode: 126,
      decision: null,
      sandboxed: true,
    });
    const merged = withRecordedDenials(alone, recorded("sudo_id_nested_execve_deny"));
    expect(merged).toMatchObject({
      outcome: "blocked",
      exitCode: 126,
      decision: { rule: "deny-privilege-escalation", kind: "command", operation: "execve" },
    });
    expect(merged.decision?.target).toMatch(/sudo$/);
  });

  it("file denial (seccomp file monitor): blocked by the named file rule via the event store", () => {
    const merged = withRecordedDenials(
      replay("cat_etc_shadow_file_deny"),
      recorded("cat_etc_shadow_file_deny"),
    );
    expect(merged).toMatchObject({
      outcome: "blocked",
      decision: {
        rule: "deny-sensitive-files",
        kind: "file",
        operation: "open",
        target: "/etc/shadow",
      },
    });
  });

  it("proxy denial: blocked although curl exited 0", () => {
    expect(replay("net_metadata_http_proxy_deny")).toMatchObject({
      outcome: "blocked",
      exitCode: 0,
      decision: { rule: "deny-cloud-metadata", kind: "network", target: "169.254.169.254" },
    });
  });

  it("HTTPS CONNECT denial by domain: blocked with every denial listed", () => {
    const result = replay("net_evil_https_connect_deny");
    expect(result).toMatchObject({
      outcome: "blocked",
      decision: { rule: "deny-malicious-domains", kind: "network", target: "evil.com" },
    });
    expect(result.denials.map((d) => d.operation)).toEqual(
      expect.arrayContaining(["dns_query", "net_connect"]),
    );
  });

  it("allowed HTTPS is not blocked", () => {
    expect(replay("net_https_public_allowed_reaches_canary").outcome).not.toBe("blocked");
  });

  it("timeout: timed_out with the partial output, not flagged truncated", () => {
    expect(replay("sleep_timeout_json_2s")).toMatchObject({
      outcome: "timed_out",
      exitCode: 124,
      stdout: { text: "started\n", truncated: false },
      problem: "the command exceeded its time limit and was killed",
    });
  });

  it("truncated output: capped at our limit with the real total", () => {
    const result = replay("output_3mb_stdout_truncated_fixture_shortened");
    expect(result.outcome).toBe("ok");
    expect(result.stdout).toMatchObject({ truncated: true, totalBytes: 3_000_000 });
    expect(Buffer.byteLength(result.stdout.text)).toBeLessThanOrEqual(LIMIT);
  });

  it("server down: nothing ran, agentsh unavailable, with the reason", () => {
    const execution = replayExecution("exec_server_stopped");
    expect(execution).toMatchObject({ kind: "not_run", reason: "unavailable" });
    expect(execution.kind === "not_run" && execution.detail).toMatch(
      /not reachable.*connection refused/,
    );
  });

  it("unknown session: nothing ran (the executor re-creates the session and retries)", () => {
    expect(replayExecution("exec_unknown_session_no_auto")).toMatchObject({
      kind: "not_run",
      reason: "unavailable",
    });
  });

  it("Landlock denial: the kernel says EACCES and agentsh records no rule, so it is 'failed', not 'blocked'", () => {
    expect(replay("symlink_escape_shadow_landlock")).toMatchObject({
      outcome: "failed",
      decision: null,
      sandboxed: true,
      stderr: { text: "cat: /workspace/s: Permission denied\n" },
    });
  });

  it("fail-open (wrapper missing at exec time): the missing sandbox line is detected", () => {
    expect(replay("fail_open_wrapper_missing_at_exec_time")).toMatchObject({
      outcome: "ok",
      sandboxed: false,
    });
  });

  it("a CLI killed by our own deadline is a timeout; by a caller disconnect, no result", () => {
    const base = { exitCode: null, stdout: "", stderr: "", durationMs: 5 };
    expect(interpretCliOutcome({ ...base, timedOut: true, canceled: false }, LIMIT)).toMatchObject({
      kind: "result",
      result: { outcome: "timed_out", exitCode: null },
    });
    expect(interpretCliOutcome({ ...base, timedOut: false, canceled: true }, LIMIT)).toMatchObject({
      kind: "not_run",
      reason: "canceled",
    });
  });

  it("garbage on stdout is no result (agentsh unavailable), never ok", () => {
    const result = interpretCliOutcome(
      {
        exitCode: 0,
        stdout: "not json",
        stderr: "",
        timedOut: false,
        canceled: false,
        durationMs: 1,
      },
      LIMIT,
    );
    expect(result).toMatchObject({ kind: "not_run", reason: "unavailable" });
  });
});

describe("helpers", () => {
  it("strips only the leading wrapper lines", () => {
    expect(
      splitWrapperPreamble(
        "landlock: restrictions applied (abi=5, workspace=/workspace)\nlandlock: mine\n",
      ),
    ).toEqual({
      sandboxed: true,
      rest: "",
    });
    expect(
      splitWrapperPreamble("mine first\nlandlock: restrictions applied (abi=5, workspace=/w)\n"),
    ).toEqual({
      sandboxed: false,
      rest: "mine first\nlandlock: restrictions applied (abi=5, workspace=/w)\n",
    });
  });

  it("cuts on a UTF-8 boundary", () => {
    const result = boundStream("ééé", 3);
    expect(result).toEqual({ text: "é", truncated: true, totalBytes: 6 });
  });
});
