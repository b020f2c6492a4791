import { describe, expect, it } from "vitest";
import { createRedactor } from "../src/bundle/redactor.js";
import { toCommandResult } from "../src/command-result.js";
import type { Decision, GovernedResult } from "../src/executor.js";

const text = (t: string) => ({ text: t, truncated: false, totalBytes: t.length });
const denial = (rule: string, target: string): Decision => ({
  rule,
  kind: "command",
  operation: "execve",
  target,
  message: null,
});
const base: GovernedResult = {
  outcome: "ok",
  exitCode: 0,
  stdout: text(""),
  stderr: text(""),
  durationMs: 5,
  decision: null,
  denials: [],
  problem: null,
  sandboxed: true,
};
const answer = (r: Partial<GovernedResult>) =>
  toCommandResult({ ...base, ...r }, createRedactor([]));

describe("what the answer says happened", () => {
  it("a step denied while the command went on: blocked (v0), completed, every denial with its rule", () => {
    const denials = [denial("default-deny-execve", "/usr/bin/lsb_release")];
    const result = answer({ outcome: "blocked", decision: denials[0] ?? null, denials });
    expect(result).toMatchObject({
      blocked: true,
      success: false,
      completed: true,
      exitCode: 0,
      denials,
    });
    expect(result.message).toBe(
      "Blocked by policy rule 'default-deny-execve' (execve /usr/bin/lsb_release); the command went on and completed (exit 0)",
    );
  });

  it("a command stopped by its denial (sudo): completed with the shell's 126, no 'went on'", () => {
    const denials = [denial("deny-privilege-escalation", "/usr/bin/sudo")];
    const result = answer({
      outcome: "blocked",
      exitCode: 126,
      decision: denials[0] ?? null,
      denials,
    });
    expect(result).toMatchObject({ completed: true, exitCode: 126 });
    expect(result.message).toBe(
      "Blocked by policy rule 'deny-privilege-escalation' (execve /usr/bin/sudo)",
    );
  });

  it("refused before it started, or killed at its limit: not completed", () => {
    const d = denial("deny-privilege-escalation", "sudo");
    expect(
      answer({ outcome: "blocked", exitCode: 126, sandboxed: null, decision: d, denials: [d] })
        .completed,
    ).toBe(false);
    const launcher = { ...d, rule: "launcher-refused", layer: "launcher" as const };
    expect(
      answer({ outcome: "blocked", exitCode: 122, decision: launcher, denials: [launcher] })
        .completed,
    ).toBe(false);
    expect(answer({ outcome: "timed_out", exitCode: null }).completed).toBe(false);
    expect(answer({}).completed).toBe(true);
    expect(answer({}).denials).toBeUndefined();
  });
});
