import type { Executor, GovernedResult } from "../executor.js";

/**
 * Canary commands run through the real executor at boot (and after agentsh restarts). Each one
 * fails if the protection it names is not in force, so "enforced" in /health is a measurement,
 * not a reading of the config.
 */
export interface Canary {
  name: string;
  /** The protection category it proves (what /demo/status groups by). */
  category: string;
  /** The static checks (bundle, installation) that claim this protection. */
  claimedBy: string[];
  command: string;
  passes: (result: GovernedResult) => boolean;
}

export const CANARIES: readonly Canary[] = [
  {
    name: "sandbox wrapper applied (agentsh-unixwrap: seccomp + Landlock)",
    category: "sandbox wrapper",
    claimedBy: ["seccomp helper agentsh-unixwrap installed", "seccomp helper enabled in bundle"],
    command: "true",
    passes: (r) => r.outcome === "ok" && r.sandboxed === true,
  },
  {
    // mount is on every Debian-based system (util-linux), so the exec really is attempted.
    name: "nested command denied by rule (seccomp execve interception)",
    category: "command rules",
    claimedBy: ["nested execve interception enabled"],
    command: "mount --version",
    passes: (r) =>
      r.outcome === "blocked" && r.decision?.kind === "command" && r.decision.rule !== null,
  },
  {
    name: "file read denied by rule (seccomp file monitor)",
    category: "file rules",
    claimedBy: ["seccomp file monitor enabled"],
    command: "cat /etc/shadow",
    passes: (r) =>
      r.outcome === "blocked" && r.decision?.kind === "file" && !r.stdout.text.includes(":"),
  },
];

/** A canary is a one-line command; if agentsh takes longer than this, something is wrong. */
const CANARY_TIMEOUT_MS = 15_000;
/** What the launcher canaries aim at; none of it is secret (a port and a pid). */
export interface LauncherCanaryTargets {
  /** A TCP port on 127.0.0.1 that is listening and is not the agentsh proxy (the app's own). */
  loopbackPort: number;
  /** A root-owned process outside the sandbox (the app itself). */
  servicePid: number;
  /** Slot uids: first .. first + count - 1. */
  firstUid: number;
  uidCount: number;
  /** isolation.yaml's `udp`: when false, a UDP socket must be refused. */
  udpAllowed: boolean;
  /** isolation.yaml's `uid_drop`, as resolved on this host. */
  uidDrop: boolean;
  /** isolation.yaml's `limits`: the memory and process canaries go past them. */
  limits: { memory_mb: number; processes: number };
}

/**
 * Python's own exception types say what the kernel answered: exit 3 = refused with EACCES/EPERM,
 * 0 = it worked (the layer is missing), 4 = some other error (inconclusive, fails the canary).
 */
const refusedProbe = (body: string) =>
  `python3 -c 'import socket, os, sys\ntry:\n    ${body}\nexcept PermissionError:\n    sys.exit(3)\nexcept OSError as e:\n    print(e)\n    sys.exit(4)\nsys.exit(0)'`;

/** The launcher's layers, proven on every boot (agentsh-launch; see isolation.yaml). */
export function launcherCanaries(t: LauncherCanaryTargets): Canary[] {
  const canaries: Canary[] = [
    {
      name: "raw TCP connect outside the agentsh proxy refused (launcher: Landlock TCP rules)",
      category: "network egress",
      claimedBy: ["launcher agentsh-launch installed", "Landlock TCP rules available (ABI >= 4)"],
      command: refusedProbe(
        `socket.create_connection(("127.0.0.1", ${t.loopbackPort}), 3).close()`,
      ),
      passes: (r) => r.exitCode === 3 && r.sandboxed === true,
    },
    {
      // agentsh's own layer lets /proc be read (the launcher's guard needs it); only the
      // launcher's file rules keep commands out, so this proves they are in force.
      name: "a path outside the command's file rules refused (launcher: Landlock file rules)",
      category: "file rules",
      claimedBy: ["launcher agentsh-launch installed"],
      command: refusedProbe('open("/proc/self/stat").read()'),
      // No agentsh rule refused it: the kernel did.
      passes: (r) => r.exitCode === 3 && r.sandboxed === true && r.decision === null,
    },
    {
      // Separate uids (uid drop) or the guard (shared uid 0): either way, refused.
      name: "signal to the service refused (launcher: uid drop, or its process guard)",
      category: "signals",
      claimedBy: ["launcher agentsh-launch installed"],
      command: refusedProbe(`os.kill(${t.servicePid}, 0)`),
      passes: (r) => r.exitCode === 3 && r.sandboxed === true,
    },
    {
      name: "commands hold no capability (launcher: chown to another uid refused)",
      category: "identity",
      claimedBy: ["launcher agentsh-launch installed"],
      command: refusedProbe(
        'p = os.path.join(os.environ["TMPDIR"], ".cap-canary"); open(p, "w").close(); os.chown(p, 1, 1)',
      ),
      passes: (r) => r.exitCode === 3 && r.sandboxed === true && r.decision === null,
    },
  ];
  canaries.push(
    {
      // Past the limit: the cgroup's OOM killer ends it (137, rule limit-memory), or without a
      // cgroup the allocation fails (MemoryError under RLIMIT_DATA, at least 1 GiB).
      name: `memory past the limit refused (${t.limits.memory_mb} MiB per command)`,
      category: "resource limits",
      claimedBy: ["launcher agentsh-launch installed"],
      command: `python3 -c 'b = bytearray(${Math.max(t.limits.memory_mb, 1024) + 64} * 1024 * 1024); print("allocated")'`,
      passes: (r) =>
        r.sandboxed === true && !r.stdout.text.includes("allocated") && r.exitCode !== 0,
    },
    {
      // Children that wait, so they all count at once; the last fork fails at the limit.
      name: `processes past the limit refused (${t.limits.processes} per command)`,
      category: "resource limits",
      claimedBy: ["launcher agentsh-launch installed"],
      command: `python3 -c 'import os, time\nn = 0\ntry:\n    for _ in range(${t.limits.processes + 32}):\n        if os.fork() == 0:\n            time.sleep(2)\n            os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint(n)'`,
      passes: (r) => {
        const forked = Number(r.stdout.text.trim());
        return r.sandboxed === true && Number.isInteger(forked) && forked < t.limits.processes;
      },
    },
  );
  if (t.uidDrop) {
    canaries.push({
      name: "command runs as an unprivileged slot uid (launcher: uid drop)",
      category: "identity",
      claimedBy: ["launcher agentsh-launch installed"],
      command: "id -u",
      passes: (r) => {
        const uid = Number(r.stdout.text.trim());
        return (
          r.outcome === "ok" &&
          Number.isInteger(uid) &&
          uid >= t.firstUid &&
          uid < t.firstUid + t.uidCount
        );
      },
    });
  }
  if (!t.udpAllowed) {
    canaries.push({
      name: "UDP socket refused (launcher: seccomp socket filter)",
      category: "network egress",
      claimedBy: ["launcher agentsh-launch installed"],
      command: refusedProbe("socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()"),
      passes: (r) => r.exitCode === 3 && r.sandboxed === true,
    });
  }
  return canaries;
}

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
        `${canary.name}: \`${canary.command}\` gave ${result.outcome} (exit ${result.exitCode}, rule ${result.decision?.rule ?? "none"}${result.decision?.layer ? ` [${result.decision.operation}: ${result.decision.message}]` : ""}, sandboxed ${result.sandboxed})`,
      );
    }
  }
  return { checks, problems };
}
