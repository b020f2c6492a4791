import type {
  Decision,
  Executor,
  GovernedCommand,
  GovernedResult,
} from "../../src/agentsh/governed-result.js";

/** Stands in for agentsh at the process boundary and records every command it was asked to run. */
export class FakeExecutor implements Executor {
  readonly commands: GovernedCommand[] = [];
  private readonly responders: Array<(request: GovernedCommand) => GovernedResult | undefined> = [];

  /** The first responder that returns a result wins; default: `ok` echoing the command. */
  respond(responder: (request: GovernedCommand) => GovernedResult | undefined): this {
    this.responders.push(responder);
    return this;
  }

  async run(request: GovernedCommand): Promise<GovernedResult> {
    this.commands.push(request);
    for (const responder of this.responders) {
      const result = responder(request);
      if (result) return result;
    }
    return okResult(`ran: ${request.command}\n`);
  }
}

export function okResult(stdout = "", overrides: Partial<GovernedResult> = {}): GovernedResult {
  return {
    outcome: "ok",
    exitCode: 0,
    stdout: { text: stdout, truncated: false, totalBytes: Buffer.byteLength(stdout) },
    stderr: { text: "", truncated: false, totalBytes: 0 },
    durationMs: 3,
    decision: null,
    denials: [],
    problem: null,
    commandId: "cmd-test",
    sandboxed: true,
    ...overrides,
  };
}

export function blockedResult(decision: Partial<Decision> = {}): GovernedResult {
  const full: Decision = {
    rule: "deny-privilege-escalation",
    kind: "command",
    operation: "execve",
    target: "/usr/bin/sudo",
    message: null,
    ...decision,
  };
  return okResult("", {
    outcome: "blocked",
    exitCode: 126,
    decision: full,
    denials: [full],
    stderr: { text: "bash: /usr/bin/sudo: Permission denied\n", truncated: false, totalBytes: 39 },
  });
}
