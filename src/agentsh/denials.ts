import type { Decision, DecisionKind, GovernedResult } from "../executor.js";
import type { AgentshEvent, ExecResponse } from "./wire.js";

/**
 * Denials: what agentsh decided against a command, from its ExecResponse (pre-check, proxy)
 * or from its event store (nested execve, file and socket denials only land there).
 */

/**
 * Adds denials agentsh recorded only in its event store (nested execve, file and unix-socket
 * checks never reach the ExecResponse). Any denial makes the command `blocked`.
 */
export function withRecordedDenials(result: GovernedResult, recorded: Decision[]): GovernedResult {
  if (recorded.length === 0) return result;
  const denials = dedupe([...result.denials, ...recorded]);
  return {
    ...result,
    outcome: "blocked",
    decision: result.decision ?? denials[0] ?? null,
    denials,
    problem: null,
  };
}

/**
 * A command counts as blocked only on agentsh's structured word: a pre-check denial, a denied
 * operation in its event summary, or guidance that says so. Output text is never consulted.
 */
export function collectDenials(response: ExecResponse): Decision[] {
  const denials: Decision[] = [];
  const { result, guidance } = response;

  if (result.error?.code === "E_POLICY_DENIED" || result.error?.policy_rule) {
    denials.push({
      rule: result.error.policy_rule ?? guidance?.policy_rule ?? null,
      kind: "command",
      operation: guidance?.blocked_operation ?? "exec",
      target: guidance?.blocked_target ?? null,
      message: result.error.message || null,
    });
  }

  for (const event of response.events?.blocked_operations ?? []) {
    const decision = event.policy?.effective_decision || event.policy?.decision || "deny";
    if (!isDenyDecision(decision)) continue;
    denials.push(decisionFromEvent(event));
  }

  if (denials.length === 0 && (guidance?.blocked || guidance?.status === "blocked")) {
    denials.push({
      rule: guidance.policy_rule ?? null,
      kind: kindOfOperation(guidance.blocked_operation ?? ""),
      operation: guidance.blocked_operation ?? null,
      target: guidance.blocked_target ?? null,
      message: guidance.reason ?? null,
    });
  }
  return dedupe(denials);
}

export function decisionFromEvent(event: AgentshEvent): Decision {
  const operation = event.operation || event.type || null;
  return {
    rule: event.policy?.rule ?? null,
    kind: kindOfOperation(`${event.type} ${event.operation ?? ""}`),
    operation,
    target:
      event.path ||
      event.domain ||
      event.remote ||
      event.filename ||
      (event.argv && event.argv.length > 0 ? event.argv.join(" ") : null) ||
      null,
    message: event.policy?.message ?? null,
  };
}

function isDenyDecision(decision: string): boolean {
  return !["allow", "audit", "approve"].includes(decision.toLowerCase());
}

function kindOfOperation(operation: string): DecisionKind {
  const op = operation.toLowerCase();
  if (/(^|[\s_])(file|open|read|write|unlink|rename|mkdir|rmdir|chmod|link|symlink)/.test(op)) {
    return "file";
  }
  if (/(net|connect|dns|http|proxy|socket|bind)/.test(op)) return "network";
  if (/(exec|command|process|spawn)/.test(op)) return "command";
  return "other";
}

function dedupe(decisions: Decision[]): Decision[] {
  const seen = new Set<string>();
  return decisions.filter((d) => {
    const key = `${d.rule}|${d.operation}|${d.target}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
