import type { Executor, GovernedResult } from "../executor.js";

/**
 * Canary commands run through the real executor at boot (and after agentsh restarts). Each one
 * fails if the protection it names is not in force, so "enforced" in /health is a measurement,
 * not a reading of the config.
 */
export interface Canary {
  name: string;
  command: string;
  passes: (result: GovernedResult) => boolean;
}

export const CANARIES: readonly Canary[] = [
  {
    name: "sandbox wrapper applied (agentsh-unixwrap: seccomp + Landlock)",
    command: "true",
    passes: (r) => r.outcome === "ok" && r.sandboxed === true,
  },
  {
    // mount is on every Debian-based system (util-linux), so the exec really is attempted.
    name: "nested command denied by rule (seccomp execve interception)",
    command: "mount --version",
    passes: (r) =>
      r.outcome === "blocked" && r.decision?.kind === "command" && r.decision.rule !== null,
  },
  {
    name: "file read denied by rule (seccomp file monitor)",
    command: "cat /etc/shadow",
    passes: (r) =>
      r.outcome === "blocked" && r.decision?.kind === "file" && !r.stdout.text.includes(":"),
  },
  {
    // The basename is allowed by the command rules, so only Landlock (no exec right in /tmp)
    // can stop it; agentsh records no rule for kernel denials.
    name: "binary outside the exec allow-list cannot run (Landlock)",
    command:
      'd=$(mktemp -d) && cp /usr/bin/true "$d/true" && "$d/true"; rc=$?; rm -rf "$d"; exit $rc',
    passes: (r) => r.exitCode === 126 && r.sandboxed === true,
  },
];

/** A canary is a one-line command; if agentsh takes longer than this, something is wrong. */
const CANARY_TIMEOUT_MS = 15_000;

export interface SelfTestReport {
  checks: Record<string, boolean>;
  problems: string[];
}

export async function runSelfTest(
  executor: Executor,
  canaries: readonly Canary[] = CANARIES,
): Promise<SelfTestReport> {
  const checks: Record<string, boolean> = {};
  const problems: string[] = [];
  for (const canary of canaries) {
    let result: GovernedResult;
    try {
      const execution = await executor.run({
        command: canary.command,
        timeoutMs: CANARY_TIMEOUT_MS,
      });
      if (execution.kind === "not_run") {
        checks[canary.name] = false;
        problems.push(`${canary.name}: not run (${execution.reason}: ${execution.detail})`);
        continue;
      }
      result = execution.result;
    } catch (error) {
      checks[canary.name] = false;
      problems.push(`${canary.name}: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    }
    const passed = canary.passes(result);
    checks[canary.name] = passed;
    if (!passed) {
      problems.push(
        `${canary.name}: \`${canary.command}\` gave ${result.outcome} (exit ${result.exitCode}, rule ${result.decision?.rule ?? "none"}, sandboxed ${result.sandboxed})`,
      );
    }
  }
  return { checks, problems };
}
