import type { Redactor } from "./bundle/redactor.js";
import { type CommandResult, toCommandResult } from "./command-result.js";
import type { EnforcementMonitor } from "./enforcement/monitor.js";
import type { Executor } from "./executor.js";

/**
 * Runs one governed command and says how it ended. The fail-closed rules live here:
 * nothing runs while enforcement is not proven, and a command that agentsh ran without its
 * sandbox voids the proof and has its output withheld. HTTP is decided in `src/http/`.
 */

/** Why a command has no result for the caller. */
export type Refusal =
  /** Enforcement is not proven (agentsh lost, canaries failing): nothing was run. */
  | { outcome: "degraded"; detail: string }
  /** No command slot within the queue's bounds: nothing was run. */
  | { outcome: "busy"; detail: string }
  /** The caller went away; the command (if started) was killed. */
  | { outcome: "canceled"; detail: string }
  /** agentsh could not run it (unreachable, bad reply). */
  | { outcome: "unavailable"; detail: string }
  /** agentsh ran it without its seccomp/Landlock sandbox: output withheld, service degraded. */
  | { outcome: "unenforced"; detail: string };

export type RunOutcome = { outcome: "result"; result: CommandResult } | Refusal;

export type RunCommand = (
  command: string,
  timeoutMs: number,
  signal?: AbortSignal,
) => Promise<RunOutcome>;

export function createRunCommand(
  executor: Executor,
  redact: Redactor,
  enforcement: Pick<EnforcementMonitor, "gate" | "markLost">,
): RunCommand {
  return async (command, timeoutMs, signal) => {
    const closed = enforcement.gate();
    if (closed) return { outcome: "degraded", detail: closed };
    const execution = await executor.run({ command, timeoutMs, ...(signal ? { signal } : {}) });
    if (execution.kind === "not_run") {
      return { outcome: execution.reason, detail: execution.detail };
    }
    if (execution.result.sandboxed === false) {
      // agentsh runs a command without seccomp/Landlock when its wrapper fails (fail-open);
      // we fail closed: the output is withheld and the service stops accepting commands.
      enforcement.markLost("a command ran without the agentsh sandbox (no Landlock line)");
      if (enforcement.gate() !== null) {
        return {
          outcome: "unenforced",
          detail: "agentsh ran the command without its seccomp/Landlock sandbox",
        };
      }
    }
    return { outcome: "result", result: toCommandResult(execution.result, redact) };
  };
}
