import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { IsolationSettings } from "../bundle/isolation-schema.js";
import type { Decision } from "./governed-result.js";

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
}

/** The uid of slot `slot` (0-based). */
export function slotUid(isolation: IsolationSettings, slot: number): number {
  return isolation.identities.first_uid + slot;
}

/** Launcher argv up to and including `--`; the program and its arguments follow. */
export function launcherArgv(settings: LauncherSettings, slot: number, tag: string): string[] {
  const { identities, network } = settings.isolation;
  if (slot < 0 || slot >= identities.count) {
    throw new Error(`slot ${slot} has no identity: isolation.yaml declares ${identities.count}`);
  }
  const uid = slotUid(settings.isolation, slot);
  const identity = identities.uid_drop
    ? [`--uid=${uid}`, `--gid=${identities.gid}`]
    : ["--keep-identity"];
  return [
    settings.path,
    ...identity,
    `--umask=${identities.umask}`,
    ...(identities.uid_drop ? [`--scratch=${identities.scratch_root}/${uid}`] : []),
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
  uidDrop: boolean,
): Record<string, string> {
  if (!probe) return { launcher: "missing: agentsh-launch not installed" };
  const signalFallback = uidDrop
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
    "uid-drop (one unprivileged uid per slot, no capabilities)": uidDrop
      ? "enforced"
      : "off: isolation.yaml identities.uid_drop is false",
  };
}
