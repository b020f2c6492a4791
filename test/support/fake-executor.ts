import type {
  Decision,
  Execution,
  Executor,
  GovernedCommand,
  GovernedResult,
  NotRunReason,
} from "../../src/executor.js";

type Answer = GovernedResult | Execution | undefined;
/** May answer later (a promise), e.g. to hold a command "running" or stream output first. */
type Responder = (request: GovernedCommand) => Answer | Promise<Answer>;

/** Stands in for agentsh at the process boundary and records every command it was asked to run. */
export class FakeExecutor implements Executor {
  readonly commands: GovernedCommand[] = [];
  /** agentsh sessions opened (and not closed) for callers' sessions: id → workspace. */
  readonly sessions = new Map<string, string>();
  /** The policy each opened session was created with (absent: the server's default). */
  readonly sessionPolicies = new Map<string, string | undefined>();
  private readonly responders: Responder[] = [];

  /** The first responder that answers wins; default: `ok` echoing the command. */
  respond(responder: Responder): this {
    this.responders.push(responder);
    return this;
  }

  async openSession(agentshSessionId: string, workspace: string, policy?: string): Promise<void> {
    this.sessions.set(agentshSessionId, workspace);
    this.sessionPolicies.set(agentshSessionId, policy);
  }

  async closeSession(agentshSessionId: string): Promise<void> {
    this.sessions.delete(agentshSessionId);
  }

  async run(request: GovernedCommand): Promise<Execution> {
    this.commands.push(request);
    request.onPhase?.("agentsh", 3);
    for (const responder of this.responders) {
      const answer = await responder(request);
      if (answer) return "kind" in answer ? answer : { kind: "result", result: answer };
    }
    return { kind: "result", result: okResult(`ran: ${request.command}\n`) };
  }
}

export function notRun(reason: NotRunReason, detail = `stand-in: ${reason}`): Execution {
  return { kind: "not_run", reason, detail };
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

/**
 * A promise a test opens by hand (e.g. a responder holding a command "running" until then).
 * It rejects after `deadlineMs`, so nothing waits on it forever.
 */
export function gate(deadlineMs = 5_000, what = "gate") {
  let resolve: () => void = () => {};
  let timer: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<void>((done, fail) => {
    resolve = done;
    timer = setTimeout(
      () => fail(new Error(`${what} not opened within ${deadlineMs} ms`)),
      deadlineMs,
    );
  });
  // A gate nobody awaits any more must not surface as an unhandled rejection.
  promise.catch(() => {});
  return {
    promise,
    open() {
      clearTimeout(timer);
      resolve();
    },
  };
}
