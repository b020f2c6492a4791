import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import {
  type BindPorts,
  bindPortCount,
  type IsolationSettings,
  withoutPorts,
} from "../bundle/isolation-schema.js";
import type { Decision } from "../executor.js";
import type { Logger } from "../logger.js";
import { type RulesetServer, startRulesetServer } from "./ruleset-server.js";

/**
 * agentsh-launch (agentsh/launcher/): the top-level program of every governed command. agentsh
 * starts it inside its sandbox; it applies the kernel layers the service relies on (Landlock
 * file and TCP rules, a socket filter, an identity without capabilities, the process-control
 * guard where commands share uid 0), then execs `/bin/bash -c <command>`. This module turns
 * the bundle into its options and recognises its refusals.
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
  /** `--fs` rules every command gets (see launcherFsRules), resolved once at boot. */
  fsRules: readonly string[];
  /** Hold Landlock to this ABI (a test profile: Render's kernel has ABI 5). */
  maxAbi?: number;
  /**
   * Where commands keep uid 0: processes the launcher's guard protects besides its own
   * ancestors (agentsh, the boot script, init): the service itself.
   */
  protectPids?: readonly number[];
  /**
   * The ruleset server (agentsh-launch --serve): it holds the static file rules and the bind
   * ports, so the launcher's argv carries only the command's own places.
   */
  rulesetServer?: { socket: string; uid: number };
}

/** Where one command may write: its workspace, and its private HOME/TMPDIR. */
export interface CommandPlace {
  /** The shared workspace (plain commands) or the session's own directory. */
  workspace: string;
  /** HOME and TMPDIR, `<scratch_root>/<name>` (see scratchName). */
  scratch: string;
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

/**
 * The scratch dir's name under scratch_root: a session's own (removed with it), or, for other
 * commands, the API key's (one per key and uid, so neither another key nor another uid reads
 * what a command left in its HOME or TMPDIR).
 */
export function scratchName(
  command: { sessionId?: string; owner?: string },
  uid: number,
  uidDrop: boolean,
): string {
  if (command.sessionId) return command.sessionId;
  const owner = command.owner ?? "anonymous";
  return uidDrop ? `${owner}.${uid}` : owner;
}

/** Launcher argv up to and including `--`; the program and its arguments follow. */
export function launcherArgv(
  settings: LauncherSettings,
  identity: number,
  tag: string,
  place: CommandPlace,
  /** This command's resource limits (`--cgroup=…`, `--rlimit=…`: limits.ts). */
  limitArgs: readonly string[] = [],
): string[] {
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
  const server = settings.rulesetServer;
  return [
    settings.path,
    ...credentials,
    `--umask=${identities.umask}`,
    `--scratch=${place.scratch}`,
    ...(server
      ? [`--ruleset-server=${server.socket}`, `--ruleset-server-uid=${server.uid}`]
      : [...settings.fsRules, ...bindPortArgs(network.bind_tcp_ports)]),
    // Where it may write it may also run what it built (scripts, compiled output, venv and
    // node_modules tools); nowhere else but the system trees.
    `--fs=rwx:${place.workspace}`,
    `--fs=rwx:${place.scratch}`,
    ...(network.udp ? ["--udp"] : []),
    ...(network.netlink_route ? ["--netlink-route"] : []),
    ...(settings.bestEffort ? ["--best-effort"] : []),
    ...(settings.maxAbi !== undefined ? [`--max-abi=${settings.maxAbi}`] : []),
    ...(settings.uidDrop ? [] : (settings.protectPids ?? []).map((pid) => `--protect-pid=${pid}`)),
    ...limitArgs,
    `--tag=${tag}`,
    "--",
  ];
}

/** "any": no bind layer at all (`--bind-any`); a list: Landlock rules, none left: no bind. */
function bindPortArgs(ranges: BindPorts): string[] {
  if (ranges === "any") return ["--bind-any"];
  return ranges.map((r) => `--bind-ports=${r.lo}-${r.hi}`);
}

/** config.yaml's `landlock:` block (paths already expanded). */
export interface LandlockLists {
  allow_execute?: readonly string[] | undefined;
  allow_read?: readonly string[] | undefined;
  allow_write?: readonly string[] | undefined;
  deny_paths?: readonly string[] | undefined;
}

/**
 * The `--fs` rules every command gets: config.yaml's landlock lists, so agentsh's layer and the
 * launcher's agree (allow_execute: read + execute; allow_read: read; allow_write: read + write,
 * plus device ioctls under /dev), minus what is at or under deny_paths, minus the entries
 * isolation.yaml withholds and the places granted per command instead (the workspace, the
 * sessions and scratch roots), and only paths that exist (each rule costs an open at every
 * command start).
 */
export function launcherFsRules(
  lists: LandlockLists,
  isolation: IsolationSettings,
  perCommandRoots: readonly string[],
  exists: (path: string) => boolean = existsSync,
): string[] {
  const under = (p: string, roots: readonly string[]) =>
    roots.some((root) => p === root || p.startsWith(`${root}/`));
  const denied = lists.deny_paths ?? [];
  const { withhold } = isolation.filesystem;
  const skipped = [
    ...perCommandRoots,
    isolation.filesystem.sessions_root,
    isolation.identities.scratch_root,
  ];
  const rules = new Map<string, string>();
  const add = (mode: string, paths: readonly string[] | undefined, held: readonly string[]) => {
    for (const p of paths ?? []) {
      if (!path.isAbsolute(p) || under(p, denied) || skipped.includes(p) || held.includes(p)) {
        continue;
      }
      if (!exists(p)) continue;
      const device = mode.includes("w") && p.startsWith("/dev/") ? "i" : "";
      // One rule per path: the widest mode wins (rx beats r, rw beats r).
      const known = rules.get(p) ?? "";
      rules.set(p, [...new Set([...known, ...mode, ...device])].sort(byMode).join(""));
    }
  };
  add("rx", lists.allow_execute, withhold.write);
  add("r", lists.allow_read, withhold.read);
  add("rw", lists.allow_write, withhold.write);
  return [...rules].map(([p, mode]) => `--fs=${mode}:${p}`);
}

const MODE_ORDER = "rwxi";
const byMode = (a: string, b: string) => MODE_ORDER.indexOf(a) - MODE_ORDER.indexOf(b);

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
  /** The Landlock ABI the launcher uses: the kernel's, or less under --max-abi. */
  landlockAbi: number;
  /** The kernel's own. */
  kernelLandlockAbi: number;
  landlockFs: boolean;
  landlockNet: boolean;
  ioctlDev: boolean;
  signalScope: boolean;
}

/** Asks the launcher what the kernel supports (run directly, outside agentsh). */
export async function probeLauncher(launcherPath: string, maxAbi?: number): Promise<LauncherProbe> {
  const args = ["--probe", ...(maxAbi !== undefined ? [`--max-abi=${maxAbi}`] : [])];
  const { stdout } = await promisify(execFile)(launcherPath, args, { timeout: 5_000, env: {} });
  const probe = JSON.parse(stdout) as Partial<LauncherProbe>;
  if (typeof probe.landlockAbi !== "number") throw new Error(`unexpected probe output: ${stdout}`);
  return {
    landlockAbi: probe.landlockAbi,
    kernelLandlockAbi: probe.kernelLandlockAbi ?? probe.landlockAbi,
    landlockFs: probe.landlockFs === true,
    landlockNet: probe.landlockNet === true,
    ioctlDev: probe.ioctlDev === true,
    signalScope: probe.signalScope === true,
  };
}

/** The /health names of the launcher's layers (the e2e suite finds them by these prefixes). */
export const LAYER = {
  fs: "landlock-fs (file rules: exec, read and write lists; a command's own workspace and scratch only)",
  net: "landlock-net (TCP connect only to the agentsh proxy; bind: see bindTcpPorts)",
  socket: "seccomp-socket (no raw, packet, non-route netlink sockets; UDP per isolation.yaml)",
  capabilities: "capabilities (none: bounding, permitted, effective, inheritable, ambient)",
  processes:
    "process-isolation (signals, prlimit, scheduling only within the command's own process tree)",
  uidDrop: "uid-drop (one unprivileged uid per slot and session)",
} as const;

/**
 * Whether the kernel leaves concurrent commands able to signal each other: every command is
 * uid 0 (no uid drop) and Landlock has no signal scope (ABI < 6, Render). The service then runs
 * the commands of one API key at a time.
 */
export function processesSharedBetweenKeys(probe: LauncherProbe | null, uidDrop: UidDrop): boolean {
  return probe !== null && !uidDrop.enabled && !probe.signalScope;
}

/** Each isolation layer and whether this kernel and host give it, for /health. */
export function isolationLayers(
  probe: LauncherProbe | null,
  uidDrop: UidDrop,
): Record<string, string> {
  if (!probe) return { launcher: "missing: agentsh-launch not installed" };
  const abi =
    probe.landlockAbi === probe.kernelLandlockAbi
      ? `Landlock ABI ${probe.landlockAbi}`
      : `Landlock held to ABI ${probe.landlockAbi} (kernel: ${probe.kernelLandlockAbi})`;
  const processMechanisms = [
    uidDrop.enabled ? "separate uids" : "the launcher's guard",
    ...(probe.signalScope ? ["Landlock signal scope"] : []),
  ];
  const processes = processesSharedBetweenKeys(probe, uidDrop)
    ? "enforced for agentsh, the service, init and other API keys (the launcher's guard; commands of different keys never run at once, as Landlock below ABI 6 has no signal scope); not between the sessions of one key, nor for threads agentsh starts while a command runs"
    : `enforced (${processMechanisms.join(" + ")})`;
  return {
    [LAYER.fs]: probe.landlockFs
      ? `enforced (${abi}${probe.ioctlDev ? ", device ioctls too" : ", no IOCTL_DEV below ABI 5"})`
      : `missing: the kernel has no Landlock`,
    [LAYER.net]: probe.landlockNet ? "enforced" : `missing: ${abi} < 4`,
    [LAYER.socket]: "enforced",
    [LAYER.capabilities]: "enforced",
    [LAYER.processes]: processes,
    [LAYER.uidDrop]: uidDrop.enabled
      ? "enforced"
      : `unavailable: ${uidDrop.reason}; sessions and keys are kept apart by Landlock paths, processes by the guard`,
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
  /** config.yaml's landlock lists (the launcher's file rules start from them). */
  landlock: LandlockLists;
  /** The shared workspace of plain commands (granted per command, not as a list entry). */
  workspace: string;
  slots: number;
  /** Ports of the service itself (the app, agentsh's API): never bindable by commands. */
  servicePorts: number[];
  agentshBin: string;
  bestEffort: boolean;
  /** Hold Landlock to this ABI (LAUNCHER_MAX_LANDLOCK_ABI, a test profile). */
  maxAbi?: number | undefined;
  /** The service's own pid (the guard protects it where commands keep uid 0). */
  servicePid: number;
  /** Whether the agentsh server has CAP_SYS_PTRACE (see resolveUidDrop). */
  capSysPtrace: boolean;
  /** Where the ruleset server's socket goes (a directory of the state dir); none: no server. */
  rulesetDir?: string | undefined;
  logger: Logger;
}): Promise<{
  launcher: LauncherSettings | undefined;
  probe: LauncherProbe | null;
  uidDrop: UidDrop;
  /** Stops the ruleset server (shutdown). */
  stop: () => void;
}> {
  const { identities, network } = options.isolation;
  if (identities.count < options.slots) {
    throw new Error(
      `isolation.yaml: identities.count is ${identities.count}, fewer than MAX_CONCURRENT_COMMANDS=${options.slots} (one uid per slot)`,
    );
  }
  // Never bindable, whatever the ranges say: a command listening on one of the service's ports
  // while it restarts could answer in its place.
  const isolation = {
    ...options.isolation,
    network: {
      ...network,
      bind_tcp_ports: withoutPorts(network.bind_tcp_ports, options.servicePorts),
    },
  };
  const uidDrop = resolveUidDrop(identities.uid_drop, options.capSysPtrace);
  const launcherPath = path.join(path.dirname(options.agentshBin), "agentsh-launch");
  let probe: LauncherProbe;
  try {
    probe = await probeLauncher(launcherPath, options.maxAbi);
  } catch (error) {
    options.logger.error("agentsh-launch is missing or does not run", {
      path: launcherPath,
      error: String(error),
    });
    return { launcher: undefined, probe: null, uidDrop, stop: () => {} };
  }
  const fsRules = launcherFsRules(options.landlock, options.isolation, [options.workspace]);
  const maxAbiArgs = options.maxAbi !== undefined ? [`--max-abi=${options.maxAbi}`] : [];
  let server: RulesetServer | undefined;
  if (options.rulesetDir) {
    try {
      server = await startRulesetServer({
        launcherPath,
        dir: options.rulesetDir,
        uid: identities.client_uid,
        args: [
          ...fsRules,
          ...bindPortArgs(isolation.network.bind_tcp_ports),
          ...maxAbiArgs,
          ...(options.bestEffort ? ["--best-effort"] : []),
          ...[
            options.workspace,
            options.isolation.filesystem.sessions_root,
            identities.scratch_root,
          ].map((root) => `--place-root=${root}`),
        ],
        logger: options.logger,
      });
    } catch (error) {
      // Slower, not weaker: each launcher then opens the file rules' paths itself.
      options.logger.error("launcher ruleset server did not start; launchers build their own", {
        error: String(error),
      });
    }
  }
  options.logger.info("kernel isolation", {
    launcher: launcherPath,
    landlockAbi: probe.landlockAbi,
    ...(probe.landlockAbi !== probe.kernelLandlockAbi
      ? { kernelLandlockAbi: probe.kernelLandlockAbi }
      : {}),
    fileRules: fsRules.length + 2,
    bindPorts:
      isolation.network.bind_tcp_ports === "any"
        ? "any (the kernel's rules; the service's ports are held)"
        : bindPortCount(isolation.network.bind_tcp_ports),
    uidDrop: uidDrop.enabled ? "enabled" : uidDrop.reason,
    processIsolation: uidDrop.enabled ? "separate uids" : "guard (shared uid 0, no capabilities)",
    rulesets: server ? `built by the ruleset server (${server.socket})` : "built by each launcher",
  });
  return {
    launcher: {
      path: launcherPath,
      isolation,
      bestEffort: options.bestEffort,
      uidDrop: uidDrop.enabled,
      fsRules,
      protectPids: [options.servicePid],
      ...(options.maxAbi !== undefined ? { maxAbi: options.maxAbi } : {}),
      ...(server ? { rulesetServer: { socket: server.socket, uid: server.uid } } : {}),
    },
    probe,
    uidDrop,
    stop: () => server?.stop(),
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
