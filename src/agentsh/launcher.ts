import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import {
  bindPortCount,
  conflictingBindPorts,
  type IsolationSettings,
} from "../bundle/isolation-schema.js";
import type { Decision } from "../executor.js";
import type { Logger } from "../logger.js";

/**
 * agentsh-launch (agentsh/launcher/): the top-level program of every governed command. agentsh
 * starts it inside its sandbox; it adds kernel egress rules, a socket filter, signal scoping and
 * an unprivileged identity, then execs `/bin/bash -c <command>`. This module turns the bundle's
 * isolation.yaml into its options and recognises its refusals.
 */

/** The launcher's own exit code when it refused to run the command (nothing was executed). */
export const LAUNCHER_EXIT_REFUSED = 122;
export const LAUNCHER_REFUSED_RULE = "launcher-refused";

export interface LauncherSettings {
  /** Absolute path of agentsh-launch. */
  path: string;
  isolation: IsolationSettings;
  /** Skip Landlock layers the kernel lacks (only with ALLOW_DEGRADED). */
  bestEffort: boolean;
  /** Drop to the slot's uid (isolation.yaml's uid_drop, resolved for this host). */
  uidDrop: boolean;
}

/** Whether the uid drop is in force here, and if not, why. */
export interface UidDrop {
  enabled: boolean;
  /** Why it is off (the setting, or what this host lacks); null when enabled. */
  reason: string | null;
}

/**
 * The uid of identity `index` (0-based): command slot N uses identity N; the identities after
 * the slots are reserved one per session (see createSessionRegistry).
 */
export function slotUid(isolation: IsolationSettings, index: number): number {
  return isolation.identities.first_uid + index;
}

/** Launcher argv up to and including `--`; the program and its arguments follow. */
export function launcherArgv(settings: LauncherSettings, identity: number, tag: string): string[] {
  const { identities, network } = settings.isolation;
  if (identity < 0 || identity >= identities.count) {
    throw new Error(
      `slot ${identity} has no identity: isolation.yaml declares ${identities.count}`,
    );
  }
  const uid = slotUid(settings.isolation, identity);
  const credentials = settings.uidDrop
    ? [`--uid=${uid}`, `--gid=${identities.gid}`]
    : ["--keep-identity"];
  return [
    settings.path,
    ...credentials,
    `--umask=${identities.umask}`,
    // HOME and TMPDIR of the slot, also when the identity is kept (tools need a writable HOME).
    `--scratch=${identities.scratch_root}/${uid}`,
    ...network.bind_tcp_ports.map((r) => `--bind-ports=${r.lo}-${r.hi}`),
    ...(network.udp ? ["--udp"] : []),
    ...(network.netlink_route ? ["--netlink-route"] : []),
    ...(settings.bestEffort ? ["--best-effort"] : []),
    `--tag=${tag}`,
    "--",
  ];
}

/**
 * The launcher's refusal, recognised only as the launcher writes it: exit 122, no stdout, and
 * stderr exactly one line that ends with this run's tag. The tag travels only in the launcher's
 * argv (which exec replaces), so a command cannot forge a refusal of its own run.
 */
export function launcherRefusal(
  exitCode: number | null,
  stdout: string,
  stderr: string,
  tag: string,
): Decision | null {
  if (exitCode !== LAUNCHER_EXIT_REFUSED || stdout !== "") return null;
  const match = /^agentsh-launch: refused: ([a-z-]+): (.*) \(run ([^)\s]+)\)\n?$/.exec(stderr);
  if (!match || match[3] !== tag) return null;
  return {
    rule: LAUNCHER_REFUSED_RULE,
    kind: "other",
    layer: "launcher",
    operation: match[1] ?? null,
    target: null,
    message: match[2] ?? null,
  };
}

export interface LauncherProbe {
  landlockAbi: number;
  landlockNet: boolean;
  signalScope: boolean;
}

/** Asks the launcher what the kernel supports (run directly, outside agentsh). */
export async function probeLauncher(launcherPath: string): Promise<LauncherProbe> {
  const { stdout } = await promisify(execFile)(launcherPath, ["--probe"], {
    timeout: 5_000,
    env: {},
  });
  const probe = JSON.parse(stdout) as Partial<LauncherProbe>;
  if (typeof probe.landlockAbi !== "number") throw new Error(`unexpected probe output: ${stdout}`);
  return {
    landlockAbi: probe.landlockAbi,
    landlockNet: probe.landlockNet === true,
    signalScope: probe.signalScope === true,
  };
}

/** Each isolation layer and whether this kernel gives it, for /health. */
export function isolationLayers(
  probe: LauncherProbe | null,
  uidDrop: UidDrop,
): Record<string, string> {
  if (!probe) return { launcher: "missing: agentsh-launch not installed" };
  const signalFallback = uidDrop.enabled
    ? "the uid drop still isolates signals"
    : "and the uid drop is off: commands can signal the service";
  return {
    "landlock-net (TCP connect only to the agentsh proxy, bind only to allowed ports)":
      probe.landlockNet ? "enforced" : `missing: Landlock ABI ${probe.landlockAbi} < 4`,
    "signal-scope (Landlock signals and abstract sockets)": probe.signalScope
      ? "enforced"
      : `unavailable: Landlock ABI ${probe.landlockAbi} < 6; ${signalFallback}`,
    "seccomp-socket (no raw, packet, non-route netlink sockets; UDP per isolation.yaml)":
      "enforced",
    "uid-drop (one unprivileged uid per slot, no capabilities)": uidDrop.enabled
      ? "enforced"
      : `unavailable: ${uidDrop.reason}`,
  };
}

/**
 * Finds agentsh-launch next to the agentsh CLI (scripts/install-agentsh installs them together),
 * asks it what the kernel supports, and checks isolation.yaml against this configuration (one
 * uid per slot; no bind range over the service's own ports). Without Landlock TCP rules the
 * canaries fail and boot stops, unless ALLOW_DEGRADED is set: the launcher then runs
 * best-effort and /health names the missing layer.
 */
export async function prepareLauncher(options: {
  isolation: IsolationSettings;
  slots: number;
  /** Ports of the service itself (the app, agentsh's API): never bindable by commands. */
  servicePorts: number[];
  agentshBin: string;
  bestEffort: boolean;
  /** Whether the agentsh server has CAP_SYS_PTRACE (see resolveUidDrop). */
  capSysPtrace: boolean;
  logger: Logger;
}): Promise<{
  launcher: LauncherSettings | undefined;
  probe: LauncherProbe | null;
  uidDrop: UidDrop;
}> {
  const { identities, network } = options.isolation;
  if (identities.count < options.slots) {
    throw new Error(
      `isolation.yaml: identities.count is ${identities.count}, fewer than MAX_CONCURRENT_COMMANDS=${options.slots} (one uid per slot)`,
    );
  }
  const conflicts = conflictingBindPorts(network.bind_tcp_ports, options.servicePorts);
  if (conflicts.length > 0) {
    throw new Error(
      `isolation.yaml: network.bind_tcp_ports includes the service's own port(s) ${conflicts.join(", ")}`,
    );
  }
  const uidDrop = resolveUidDrop(identities.uid_drop, options.capSysPtrace);
  const launcherPath = path.join(path.dirname(options.agentshBin), "agentsh-launch");
  let probe: LauncherProbe;
  try {
    probe = await probeLauncher(launcherPath);
  } catch (error) {
    options.logger.error("agentsh-launch is missing or does not run", {
      path: launcherPath,
      error: String(error),
    });
    return { launcher: undefined, probe: null, uidDrop };
  }
  options.logger.info("kernel isolation", {
    launcher: launcherPath,
    landlockAbi: probe.landlockAbi,
    bindPorts: bindPortCount(network.bind_tcp_ports),
    uidDrop: uidDrop.enabled ? "enabled" : uidDrop.reason,
  });
  return {
    launcher: {
      path: launcherPath,
      isolation: options.isolation,
      bestEffort: options.bestEffort,
      uidDrop: uidDrop.enabled,
    },
    probe,
    uidDrop,
  };
}

/**
 * The uid drop needs CAP_SYS_PTRACE for the agentsh server (same container, same capabilities
 * as this process): its seccomp supervisor reads each command's memory, which the kernel allows
 * across uids only with it (measured: without it every exec is refused).
 */
export function resolveUidDrop(
  setting: IsolationSettings["identities"]["uid_drop"],
  capSysPtrace: boolean,
): UidDrop {
  if (setting === "off") {
    return { enabled: false, reason: "isolation.yaml identities.uid_drop is off" };
  }
  if (capSysPtrace) return { enabled: true, reason: null };
  const missing =
    "the agentsh server lacks CAP_SYS_PTRACE, which the uid drop needs (grant it, e.g. docker run --cap-add SYS_PTRACE)";
  if (setting === "required") {
    throw new Error(`isolation.yaml requires the uid drop, but ${missing}`);
  }
  return { enabled: false, reason: missing };
}

/** Whether this process's effective capabilities include CAP_SYS_PTRACE (bit 19). */
export async function hasCapSysPtrace(statusFile = "/proc/self/status"): Promise<boolean> {
  const status = await readFile(statusFile, "utf8");
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return hex !== undefined && (BigInt(`0x${hex}`) & (1n << 19n)) !== 0n;
}

/**
 * Measured: with the uid drop, agentsh's seccomp supervisor must read another uid's memory,
 * which needs CAP_SYS_PTRACE; without it every exec the launcher makes is refused.
 */
export function launcherBootHint(problems: string[]): string | undefined {
  return problems.some((p) => p.includes("[exec: "))
    ? "A launcher exec refusal usually means the agentsh server lacks CAP_SYS_PTRACE, which the uid drop needs: grant it, or set identities.uid_drop: when-permitted (or off) in agentsh/isolation.yaml."
    : undefined;
}
