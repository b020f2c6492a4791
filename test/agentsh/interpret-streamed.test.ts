import { describe, expect, it } from "vitest";
import {
  type CliOutcome,
  interpretStreamedCli,
  WrapperPreambleFilter,
} from "../../src/agentsh/interpret.js";

/** agentsh-unixwrap's lines as they precede a command's own stderr. */
const PTRACER = "PR_SET_PTRACER(3): invalid argument (ProcessVMReadv may fail under Yama)\n";
const LANDLOCK = "landlock: restrictions applied (abi=5, workspace=/workspace)\n";
const PREAMBLE = PTRACER + LANDLOCK;
const LIMIT = 64 * 1024;

function cli(overrides: Partial<CliOutcome>): CliOutcome {
  return {
    exitCode: 0,
    stdout: "",
    stderr: PREAMBLE,
    timedOut: false,
    canceled: false,
    durationMs: 40,
    ...overrides,
  };
}

describe("WrapperPreambleFilter (stderr as it arrives)", () => {
  it("removes the wrapper's lines even when they are split across pieces", () => {
    const filter = new WrapperPreambleFilter();
    const pieces = [
      "PR_SET_PTR",
      "ACER(3): invalid argument (Pro",
      "cessVMReadv may fail under Yama)\nland",
      "lock: restrictions applied (abi=5, workspace=/workspace)",
      "\nown ",
      "error\n",
    ];
    const passed = pieces.map((piece) => filter.feed(piece));
    expect(passed.slice(0, 4)).toEqual(["", "", "", ""]);
    expect(passed.join("") + filter.end()).toBe("own error\n");
  });

  it("passes everything through once the first non-wrapper line arrives", () => {
    const filter = new WrapperPreambleFilter();
    expect(filter.feed(`${LANDLOCK}warning: x\n`)).toBe("warning: x\n");
    // A later line that looks like the wrapper's is the command's own output.
    expect(filter.feed(LANDLOCK)).toBe(LANDLOCK);
    expect(filter.feed("tail")).toBe("tail");
    expect(filter.end()).toBe("");
  });

  it("holds a short partial line (it could still become a wrapper line) until it ends or the stream does", () => {
    const filter = new WrapperPreambleFilter();
    expect(filter.feed(LANDLOCK)).toBe("");
    expect(filter.feed("Password: ")).toBe("");
    expect(filter.end()).toBe("Password: ");
  });

  it("does not hold a long partial line", () => {
    const filter = new WrapperPreambleFilter();
    const long = "e".repeat(250);
    expect(filter.feed(long)).toBe(long);
  });

  it("drops a wrapper line still held at the end", () => {
    const filter = new WrapperPreambleFilter();
    expect(filter.feed(PTRACER + LANDLOCK.trimEnd())).toBe("");
    expect(filter.end()).toBe("");
  });

  it("an empty first line ends the preamble (as in the buffered split)", () => {
    const filter = new WrapperPreambleFilter();
    expect(filter.feed(`\n${LANDLOCK}`)).toBe(`\n${LANDLOCK}`);
  });
});

describe("interpretStreamedCli (agentsh exec --stream --output shell)", () => {
  it("a sandboxed run: ok, output as given, the preamble removed from stderr", () => {
    const execution = interpretStreamedCli(
      cli({ stdout: "out\n", stderr: `${PREAMBLE}own\n`, stdoutBytes: 4 }),
      5_000,
      LIMIT,
    );
    expect(execution).toEqual({
      kind: "result",
      result: {
        outcome: "ok",
        exitCode: 0,
        stdout: { text: "out\n", truncated: false, totalBytes: 4 },
        stderr: { text: "own\n", truncated: false, totalBytes: 4 },
        durationMs: 40,
        decision: null,
        denials: [],
        problem: null,
        sandboxed: true,
      },
    });
  });

  it("a non-zero exit is failed (denials come from the event store later)", () => {
    const execution = interpretStreamedCli(
      cli({ exitCode: 2, stderr: `${PREAMBLE}no\n` }),
      5_000,
      LIMIT,
    );
    expect(execution).toMatchObject({
      kind: "result",
      result: { outcome: "failed", exitCode: 2, sandboxed: true },
    });
  });

  it("without the wrapper's Landlock line, the run is reported unsandboxed (fails closed later)", () => {
    const execution = interpretStreamedCli(cli({ stdout: "hi\n", stderr: "" }), 5_000, LIMIT);
    expect(execution).toMatchObject({
      kind: "result",
      result: { outcome: "ok", sandboxed: false },
    });
    const onlyPtracer = interpretStreamedCli(cli({ stderr: PTRACER }), 5_000, LIMIT);
    expect(onlyPtracer).toMatchObject({
      kind: "result",
      result: { sandboxed: false, stderr: { text: "" } },
    });
  });

  it("exit 124 at or after the limit is timed_out; before it, the command's own exit 124", () => {
    for (const durationMs of [1_000, 1_250]) {
      expect(interpretStreamedCli(cli({ exitCode: 124, durationMs }), 1_000, LIMIT)).toMatchObject({
        kind: "result",
        result: {
          outcome: "timed_out",
          exitCode: 124,
          problem: "the command exceeded its time limit and was killed",
        },
      });
    }
    expect(
      interpretStreamedCli(cli({ exitCode: 124, durationMs: 999 }), 1_000, LIMIT),
    ).toMatchObject({
      kind: "result",
      result: { outcome: "failed", exitCode: 124, problem: null },
    });
  });

  it("a CLI failure (no preamble, exit 1, no stdout, a message) is 'nothing ran: unavailable'", () => {
    const unreachable = interpretStreamedCli(
      cli({
        exitCode: 1,
        stderr:
          'Post "http://127.0.0.1:18080/api/v1/sessions/x/exec": dial tcp 127.0.0.1:18080: connect: connection refused\n',
      }),
      5_000,
      LIMIT,
    );
    expect(unreachable).toMatchObject({
      kind: "not_run",
      reason: "unavailable",
      detail: expect.stringMatching(/not reachable.*connection refused/),
    });
    const refused = interpretStreamedCli(
      cli({ exitCode: 1, stderr: "session s-local-x not found\n" }),
      5_000,
      LIMIT,
    );
    expect(refused).toMatchObject({
      kind: "not_run",
      reason: "unavailable",
      detail: expect.stringContaining("agentsh exited 1 without a result"),
    });
  });

  it("exit 1 with the preamble is the command's own failure, not a CLI failure", () => {
    expect(
      interpretStreamedCli(
        cli({ exitCode: 1, stderr: `${PREAMBLE}grep: x: No such file\n` }),
        5_000,
        LIMIT,
      ),
    ).toMatchObject({ kind: "result", result: { outcome: "failed", sandboxed: true } });
  });

  it("the caller going away is 'nothing ran: canceled'; our own backstop is timed_out without output", () => {
    expect(interpretStreamedCli(cli({ canceled: true }), 5_000, LIMIT)).toMatchObject({
      kind: "not_run",
      reason: "canceled",
    });
    expect(
      interpretStreamedCli(
        cli({ timedOut: true, exitCode: null, stdout: "partial" }),
        5_000,
        LIMIT,
      ),
    ).toMatchObject({
      kind: "result",
      result: { outcome: "timed_out", exitCode: null, stdout: { text: "" }, sandboxed: null },
    });
  });

  it("bounds the kept output and reports the full sizes (the preamble not counted in stderr)", () => {
    const stdout = "x".repeat(2_000);
    const stderr = `${PREAMBLE}${"e".repeat(100)}`;
    const execution = interpretStreamedCli(
      cli({
        stdout,
        stderr,
        stdoutBytes: 1_000_000,
        stderrBytes: Buffer.byteLength(stderr) + 500,
      }),
      5_000,
      1_024,
    );
    expect(execution).toMatchObject({
      kind: "result",
      result: {
        stdout: { text: "x".repeat(1_024), truncated: true, totalBytes: 1_000_000 },
        stderr: { text: "e".repeat(100), truncated: true, totalBytes: 600 },
      },
    });
  });
});
