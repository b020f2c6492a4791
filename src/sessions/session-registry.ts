import { randomBytes } from "node:crypto";
import { chmod, chown, mkdir, rm } from "node:fs/promises";
import path from "node:path";
import type { Executor, SessionContext, SessionState } from "../executor.js";
import { compileGlob } from "../explain/glob.js";
import { ApiError } from "../http/errors.js";
import type { Logger } from "../logger.js";
import type { SessionInfo, SessionRegistry } from "./contract.js";

/**
 * The sessions this instance holds, in memory. Each has its own workspace directory and its
 * own agentsh session; between commands it carries the working directory and the variables
 * its commands exported. One command at a time per session (a second is refused, 409), idle
 * sessions expire, and an API key holds at most `maxPerKey`.
 */

export interface SessionRegistryOptions {
  executor: Pick<Executor, "openSession" | "closeSession">;
  /** Directory under which each session gets `<root>/<id>` (outside the shared workspace). */
  root: string;
  /** Where each session's scratch HOME/TMPDIR `<scratchRoot>/<id>` is, removed with it. */
  scratchRoot?: string;
  /** This instance's tag: every id it mints carries it (`s-<tag>-<hex>`). */
  instanceTag: string;
  maxPerKey: number;
  max: number;
  idleMs: number;
  /**
   * Names the session's policy's env_policy refuses to pass into a command (not carried).
   * `policy`: the session's (its tenant's), undefined for the default policy.
   */
  envDenied: (name: string, policy: string | undefined) => boolean;
  logger: Logger;
  now?: () => number;
  /** Creates and removes directories (default: on disk; request tests pass fakes). */
  workspaces?: Workspaces;
  /**
   * Unprivileged identities reserved for sessions, one each (where commands drop to per-slot
   * uids): a session's commands then run as its own uid and its directory is that uid's alone.
   * Without them sessions share the slots' identities.
   */
  identities?: SessionIdentities;
  /**
   * Whether the launcher keeps sessions apart (its Landlock file rules grant each command only
   * its own session's directory and scratch): reported as `isolated`.
   */
  isolated?: boolean;
}

export interface SessionIdentities {
  /** isolation.yaml indices free for sessions (those after the command slots). */
  indices: readonly number[];
  uidOf(index: number): number;
  gid: number;
  /** Ends whatever still runs as the identity's uid (before the uid goes to another session). */
  endProcesses(index: number): Promise<void>;
}

export interface Workspaces {
  /** Creates `dir`; with an owner it is that uid's alone (mode 0700). */
  create(dir: string, owner?: { uid: number; gid: number }): Promise<void>;
  remove(dir: string): Promise<void>;
}

/**
 * Directories on disk. Without an owner a session directory is group-writable and setgid like
 * the shared workspace (every command slot runs as its own uid in the workspace group).
 */
const diskWorkspaces: Workspaces = {
  async create(dir, owner) {
    // The parent only lets commands pass through to a directory they know the name of: they
    // cannot list the other sessions' ids or add entries of their own.
    await mkdir(path.dirname(dir), { recursive: true });
    await chmod(path.dirname(dir), 0o711);
    await mkdir(dir);
    if (owner) {
      await chown(dir, owner.uid, owner.gid);
      await chmod(dir, 0o700);
    } else {
      await chmod(dir, 0o2770);
    }
  },
  remove: (dir) => rm(dir, { recursive: true, force: true }),
};

/** The policy's `env_policy.deny` globs as a test on a variable name. */
export function envPolicyDenies(patterns: readonly string[]): (name: string) => boolean {
  const compiled = patterns.map((pattern) => compileGlob(pattern));
  return (name) => compiled.some((regex) => regex.test(name));
}

/** A running command's hold on its session. */
export interface SessionLease {
  context: SessionContext;
  /** Fires when the session is deleted or expires while the command runs. */
  signal: AbortSignal;
  /**
   * Frees the session. `ran`: the command ran (it counts), with where it left the session
   * (`state`; null: it left no record, and the session keeps its previous state).
   */
  finish(outcome: { ran: boolean; state?: SessionState | null | undefined }): CarriedState;
}

/** What the session carries into its next command, and what it could not. */
export interface CarriedState {
  cwd: string;
  env: string[];
  envNotCarried: string[];
}

export interface SessionRegistryControl extends SessionRegistry {
  /** Takes the session for one command; throws 404/409/421 ApiErrors. */
  lease(owner: string, id: string): SessionLease;
  /** Ends expired sessions (also run on a timer). */
  sweep(): Promise<void>;
  /** Stops the timer and ends every session (shutdown). */
  close(): Promise<void>;
  readonly size: number;
}

/**
 * Set by agentsh or the launcher for every command, or bash's own bookkeeping: never taken
 * from a command into the next (a changed proxy variable must not steer the next command).
 */
const NEVER_CARRIED =
  /^(?:PWD|OLDPWD|SHLVL|_|HOME|TMPDIR|USER|LOGNAME|PATH_AGENTSH|GEXEC_RUN|AGENTSH_.*|(?:HTTPS?|ALL|NO|FTP)_PROXY|(?:https?|all|no|ftp)_proxy|BASH_ENV|ENV|LD_.*|BASH_FUNC_.*)$/;
/** `s-<instance tag>-<24 hex>`; the one pattern of a session id (the tag is group 1). */
export const SESSION_ID_PATTERN = /^s-([a-z0-9]{1,16})-[0-9a-f]{24}$/;
/** At most this many variables, and bytes, are carried (agentsh's env_policy allows 256 keys
 * and 128 KiB per command, and the service's own variables need room too). */
const MAX_CARRIED = 128;
const MAX_CARRIED_BYTES = 64 * 1024;

interface Session {
  id: string;
  owner: string;
  workspace: string;
  createdAt: number;
  lastUsedAt: number;
  cwd: string;
  env: Record<string, string>;
  commands: number;
  running: AbortController | null;
  /** The identity reserved for it (see SessionIdentities), if any. */
  identity: number | undefined;
  /** Its agentsh policy (its tenant's); undefined: the default. */
  policy: string | undefined;
}

export function createSessionRegistry(options: SessionRegistryOptions): SessionRegistryControl {
  const now = options.now ?? Date.now;
  const workspaces = options.workspaces ?? diskWorkspaces;
  const freeIdentities = [...(options.identities?.indices ?? [])];
  const sessions = new Map<string, Session>();
  /** Owners of sessions being created (between the limit check and the insert, which awaits
   * the workspace and agentsh): counted against the limits so concurrent creates cannot pass. */
  const creating: string[] = [];

  const info = (session: Session): SessionInfo => ({
    id: session.id,
    createdAt: new Date(session.createdAt).toISOString(),
    lastUsedAt: new Date(session.lastUsedAt).toISOString(),
    expiresAt: new Date(session.lastUsedAt + options.idleMs).toISOString(),
    workspace: session.workspace,
    cwd: session.cwd,
    env: Object.keys(session.env).sort(),
    commands: session.commands,
    busy: session.running !== null,
    isolated: options.isolated === true,
  });

  const find = (owner: string, id: string): Session => {
    const match = SESSION_ID_PATTERN.exec(id);
    if (match && match[1] !== options.instanceTag) {
      throw new ApiError({
        code: "session_on_other_instance",
        message: `Session ${id} was created on another instance (${match[1]}); this is ${options.instanceTag}.`,
        hint: "Sessions live in the instance that created them and this host did not route the request there: run one instance for sessions, or route by session id (docs/deploy.md: Sessions on more than one instance). If that instance was replaced, create a new session.",
      });
    }
    const session = match ? sessions.get(id) : undefined;
    // Past its idle time it is gone, even if the sweep has not removed it yet.
    const expired =
      session !== undefined &&
      session.running === null &&
      session.lastUsedAt < now() - options.idleMs;
    if (expired) void end(session, "expired");
    // Another key's session is indistinguishable from one that does not exist.
    if (!session || session.owner !== owner || expired) {
      throw new ApiError({
        code: "session_not_found",
        message: `There is no session ${id.slice(0, 64)} for this API key.`,
        hint: `Sessions expire after ${Math.round(options.idleMs / 1000)} s unused. Create one with POST /sessions.`,
      });
    }
    return session;
  };

  const end = async (session: Session, why: string) => {
    sessions.delete(session.id);
    session.running?.abort(new Error(`session ${why}`));
    await options.executor.closeSession(session.id).catch((error: unknown) => {
      options.logger.warn("agentsh session not ended", { session: session.id, error: `${error}` });
    });
    await workspaces.remove(session.workspace);
    if (options.scratchRoot) await workspaces.remove(path.join(options.scratchRoot, session.id));
    if (session.identity !== undefined && options.identities) {
      // The next session with this uid starts with no process of the last one.
      await options.identities.endProcesses(session.identity);
      freeIdentities.push(session.identity);
    }
    options.logger.info("session ended", { session: session.id, owner: session.owner, why });
  };

  const sweep = async () => {
    const cutoff = now() - options.idleMs;
    const idle = [...sessions.values()].filter((s) => s.running === null && s.lastUsedAt < cutoff);
    await Promise.all(idle.map((session) => end(session, "expired")));
  };
  const timer = setInterval(
    () => void sweep(),
    Math.max(1_000, Math.min(30_000, options.idleMs / 4)),
  );
  timer.unref();

  return {
    get size() {
      return sessions.size;
    },

    async create(owner, tenant) {
      await sweep();
      const held =
        [...sessions.values()].filter((s) => s.owner === owner).length +
        creating.filter((o) => o === owner).length;
      const total = sessions.size + creating.length;
      const maxHeld = tenant?.quota ?? options.maxPerKey;
      if (held >= maxHeld || total >= options.max) {
        throw new ApiError({
          code: "session_limit",
          message:
            held >= maxHeld
              ? `This ${tenant ? "tenant" : "API key"} holds ${held} sessions, the most allowed (${maxHeld}).`
              : `This instance holds ${total} sessions, the most allowed (${options.max}).`,
          hint: "DELETE /sessions/<id> a session you no longer need, or wait for idle ones to expire.",
        });
      }
      // Taken before the first await, so parallel creations never share an identity.
      const identity = options.identities ? freeIdentities.shift() : undefined;
      if (options.identities && identity === undefined) {
        throw new ApiError({
          code: "session_limit",
          message: `All ${options.identities.indices.length} session identities of this instance are in use (one uid per session).`,
          hint: "DELETE /sessions/<id> a session you no longer need, or raise identities.count in agentsh/isolation.yaml.",
        });
      }
      const owned =
        identity !== undefined && options.identities
          ? { uid: options.identities.uidOf(identity), gid: options.identities.gid }
          : undefined;
      const id = `s-${options.instanceTag}-${randomBytes(12).toString("hex")}`;
      const workspace = path.join(options.root, id);
      creating.push(owner);
      try {
        await workspaces.create(workspace, owned);
        try {
          await options.executor.openSession(id, workspace, tenant?.policy);
        } catch (error) {
          await workspaces.remove(workspace);
          throw new ApiError({
            code: "agentsh_unavailable",
            message: `The session could not be created in agentsh: ${(error as Error).message}`,
            hint: "GET /health shows agentsh's state; retry shortly.",
          });
        }
      } catch (error) {
        if (identity !== undefined) freeIdentities.unshift(identity);
        throw error;
      } finally {
        creating.splice(creating.indexOf(owner), 1);
      }
      const at = now();
      const session: Session = {
        id,
        owner,
        workspace,
        createdAt: at,
        lastUsedAt: at,
        cwd: workspace,
        env: {},
        commands: 0,
        running: null,
        identity,
        policy: tenant?.policy,
      };
      sessions.set(id, session);
      options.logger.info("session created", { session: id, owner });
      return info(session);
    },

    get: (owner, id) => info(find(owner, id)),

    list: (owner) =>
      [...sessions.values()].filter((s) => s.owner === owner).map((session) => info(session)),

    async delete(owner, id) {
      const session = find(owner, id);
      const last = info(session);
      await end(session, "deleted");
      return last;
    },

    lease(owner, id) {
      const session = find(owner, id);
      if (session.running) {
        throw new ApiError({
          code: "session_busy",
          message: `A command is already running in session ${id}.`,
          hint: "Commands in one session run one at a time: wait for it to finish, or use another session.",
        });
      }
      const running = new AbortController();
      session.running = running;
      session.lastUsedAt = now();
      return {
        context: {
          agentshSessionId: session.id,
          workspace: session.workspace,
          cwd: session.cwd,
          env: { ...session.env },
          ...(session.identity !== undefined ? { identity: session.identity } : {}),
        },
        signal: running.signal,
        finish({ ran, state }) {
          session.running = null;
          session.lastUsedAt = now();
          if (ran) session.commands += 1;
          const notCarried = new Set<string>();
          if (state) {
            session.cwd = state.cwd;
            session.env = carriedEnv(
              session.env,
              state,
              (name) => options.envDenied(name, session.policy),
              notCarried,
            );
          }
          return {
            cwd: session.cwd,
            env: Object.keys(session.env).sort(),
            envNotCarried: [...notCarried].sort(),
          };
        },
      };
    },

    sweep,

    async close() {
      clearInterval(timer);
      await Promise.all([...sessions.values()].map((session) => end(session, "shut down")));
    },
  };
}

/**
 * The variables a session carries after a command: what it had, minus what the command
 * unset, plus what it exported or changed. Names agentsh sets itself are never carried;
 * names the policy refuses are reported in `notCarried`.
 */
export function carriedEnv(
  previous: Record<string, string>,
  state: SessionState,
  envDenied: (name: string) => boolean,
  notCarried: Set<string>,
): Record<string, string> {
  const next: Record<string, string> = {};
  for (const [name, value] of Object.entries(previous)) {
    if (name in state.exported) next[name] = value;
  }
  for (const [name, value] of Object.entries(state.exported)) {
    if (state.initial[name] === value && !(name in previous)) continue;
    if (NEVER_CARRIED.test(name)) continue;
    if (envDenied(name)) {
      notCarried.add(name);
      delete next[name];
      continue;
    }
    next[name] = value;
  }
  let bytes = 0;
  for (const [index, [name, value]] of Object.entries(next).entries()) {
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value) + 2;
    if (index >= MAX_CARRIED || bytes > MAX_CARRIED_BYTES) {
      notCarried.add(name);
      delete next[name];
    }
  }
  return next;
}
