import { afterEach, describe, expect, it } from "vitest";
import type { SessionState } from "../../src/executor.js";
import { ApiError } from "../../src/http/errors.js";
import type { Logger } from "../../src/logger.js";
import {
  carriedEnv,
  createSessionRegistry,
  envPolicyDenies,
  type SessionRegistryControl,
  type SessionRegistryOptions,
} from "../../src/sessions/session-registry.js";

const ROOT = "/workspace/sessions";
const IDLE_MS = 60_000;
const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** The executor and the workspace directories as the registry sees them, recorded. */
function standIns() {
  const opened = new Map<string, string>();
  const closed: string[] = [];
  const created: string[] = [];
  const removed: string[] = [];
  const owners = new Map<string, { uid: number; gid: number } | undefined>();
  return {
    opened,
    closed,
    created,
    removed,
    executor: {
      openSession: async (id: string, workspace: string) => {
        opened.set(id, workspace);
      },
      closeSession: async (id: string) => {
        closed.push(id);
      },
    },
    owners,
    workspaces: {
      create: async (dir: string, owner?: { uid: number; gid: number }) => {
        created.push(dir);
        owners.set(dir, owner);
      },
      remove: async (dir: string) => {
        removed.push(dir);
      },
    },
  };
}

const registries: SessionRegistryControl[] = [];
afterEach(async () => {
  await Promise.all(registries.splice(0).map((registry) => registry.close()));
});

function registryWith(overrides: Partial<SessionRegistryOptions> = {}) {
  const stand = standIns();
  let clock = Date.parse("2026-01-01T00:00:00.000Z");
  const registry = createSessionRegistry({
    executor: stand.executor,
    workspaces: stand.workspaces,
    root: ROOT,
    instanceTag: "local",
    maxPerKey: 2,
    max: 3,
    idleMs: IDLE_MS,
    envDenied: envPolicyDenies(["*_TOKEN"]),
    logger: silent,
    now: () => clock,
    ...overrides,
  });
  registries.push(registry);
  return {
    registry,
    ...stand,
    advance(ms: number) {
      clock += ms;
    },
  };
}

/** The ApiError code `action` throws (fails the test when it throws nothing or something else). */
async function codeOf(action: () => unknown): Promise<string> {
  try {
    await action();
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    return (error as ApiError).body.code;
  }
  throw new Error("expected an ApiError");
}

const state = (
  cwd: string,
  exported: Record<string, string>,
  initial: Record<string, string> = {},
): SessionState => ({ cwd, exported, initial });

/** finish() of a command that ran and left `state`. */
const ranWith = (state: SessionState) => ({ ran: true, state });

describe("session registry", () => {
  it("creates a session: s-<tag>-<24 hex> id, its own workspace under the root, an agentsh session", async () => {
    const { registry, opened, created } = registryWith();
    const info = await registry.create("key-a");
    expect(info.id).toMatch(/^s-local-[0-9a-f]{24}$/);
    expect(info.workspace).toBe(`${ROOT}/${info.id}`);
    expect(info).toMatchObject({
      cwd: info.workspace,
      env: [],
      commands: 0,
      busy: false,
      createdAt: "2026-01-01T00:00:00.000Z",
      lastUsedAt: "2026-01-01T00:00:00.000Z",
      expiresAt: "2026-01-01T00:01:00.000Z",
    });
    expect(created).toEqual([info.workspace]);
    expect(opened.get(info.id)).toBe(info.workspace);
    expect(registry.size).toBe(1);
    const other = await registry.create("key-a");
    expect(other.id).not.toBe(info.id);
  });

  it("removes the workspace again and answers agentsh_unavailable when agentsh refuses the session", async () => {
    const stand = standIns();
    const { registry } = registryWith({
      executor: {
        openSession: async () => {
          throw new Error("server down");
        },
        closeSession: async () => {},
      },
      workspaces: stand.workspaces,
    });
    expect(await codeOf(() => registry.create("key-a"))).toBe("agentsh_unavailable");
    expect(stand.removed).toEqual(stand.created);
    expect(registry.size).toBe(0);
  });

  it("lists and gets sessions per owner; another owner's session is session_not_found", async () => {
    const { registry } = registryWith();
    const a1 = await registry.create("key-a");
    const a2 = await registry.create("key-a");
    const b1 = await registry.create("key-b");
    expect(
      registry
        .list("key-a")
        .map((s) => s.id)
        .sort(),
    ).toEqual([a1.id, a2.id].sort());
    expect(registry.list("key-b").map((s) => s.id)).toEqual([b1.id]);
    expect(registry.list("key-c")).toEqual([]);
    expect(registry.get("key-a", a1.id)).toEqual(a1);
    expect(await codeOf(() => registry.get("key-b", a1.id))).toBe("session_not_found");
    expect(await codeOf(() => registry.lease("key-b", a1.id))).toBe("session_not_found");
    expect(await codeOf(() => registry.delete("key-b", a1.id))).toBe("session_not_found");
    // Still there for its owner.
    expect(registry.get("key-a", a1.id).id).toBe(a1.id);
  });

  it("answers session_not_found for unknown and malformed ids", async () => {
    const { registry } = registryWith();
    expect(await codeOf(() => registry.get("key-a", `s-local-${"0".repeat(24)}`))).toBe(
      "session_not_found",
    );
    expect(await codeOf(() => registry.get("key-a", "../../etc"))).toBe("session_not_found");
    expect(await codeOf(() => registry.get("key-a", "x".repeat(10_000)))).toBe("session_not_found");
  });

  it("answers session_on_other_instance for an id minted by another instance tag", async () => {
    const { registry } = registryWith();
    const id = `s-other1-${"a".repeat(24)}`;
    expect(await codeOf(() => registry.get("key-a", id))).toBe("session_on_other_instance");
    expect(await codeOf(() => registry.lease("key-a", id))).toBe("session_on_other_instance");
    expect(await codeOf(() => registry.delete("key-a", id))).toBe("session_on_other_instance");
  });

  it("refuses a session beyond maxPerKey for that key only, and beyond max for anyone", async () => {
    const { registry } = registryWith({ maxPerKey: 2, max: 3 });
    await registry.create("key-a");
    await registry.create("key-a");
    expect(await codeOf(() => registry.create("key-a"))).toBe("session_limit");
    await registry.create("key-b");
    // The instance holds 3 = max: even a key holding none is refused.
    expect(await codeOf(() => registry.create("key-c"))).toBe("session_limit");
    expect(registry.size).toBe(3);
  });

  it("keeps the limits when several sessions are created at once", async () => {
    const { registry, opened } = registryWith({ maxPerKey: 1, max: 2 });
    const attempts = await Promise.allSettled([
      registry.create("key-a"),
      registry.create("key-a"),
      registry.create("key-a"),
    ]);
    expect(attempts.filter((a) => a.status === "fulfilled")).toHaveLength(1);
    expect(registry.list("key-a")).toHaveLength(1);
    const others = await Promise.allSettled([
      registry.create("key-b"),
      registry.create("key-c"),
      registry.create("key-d"),
    ]);
    expect(others.filter((a) => a.status === "fulfilled")).toHaveLength(1);
    expect(registry.size).toBe(2);
    expect(opened.size).toBe(2);
  });

  it("a freed place can be taken again after a DELETE", async () => {
    const { registry } = registryWith({ maxPerKey: 1 });
    const first = await registry.create("key-a");
    await registry.delete("key-a", first.id);
    expect((await registry.create("key-a")).id).not.toBe(first.id);
  });

  it("leases a session to one command at a time (a second lease is session_busy)", async () => {
    const { registry } = registryWith();
    const info = await registry.create("key-a");
    const lease = registry.lease("key-a", info.id);
    expect(lease.context).toEqual({
      agentshSessionId: info.id,
      workspace: info.workspace,
      cwd: info.workspace,
      env: {},
    });
    expect(lease.signal.aborted).toBe(false);
    expect(registry.get("key-a", info.id).busy).toBe(true);
    expect(await codeOf(() => registry.lease("key-a", info.id))).toBe("session_busy");
    lease.finish({ ran: true, state: null });
    expect(registry.get("key-a", info.id).busy).toBe(false);
    registry.lease("key-a", info.id).finish({ ran: true, state: null });
  });

  it("finish(state) moves the cwd and carries the exported variables into the next lease", async () => {
    const { registry, advance } = registryWith();
    const info = await registry.create("key-a");
    advance(5_000);
    const carried = registry
      .lease("key-a", info.id)
      .finish(
        ranWith(
          state(
            "/workspace/sessions/x/src",
            { FOO: "1", HOME: "/root", PATH: "/bin" },
            { PATH: "/bin" },
          ),
        ),
      );
    expect(carried).toEqual({ cwd: "/workspace/sessions/x/src", env: ["FOO"], envNotCarried: [] });
    const after = registry.get("key-a", info.id);
    expect(after).toMatchObject({
      cwd: "/workspace/sessions/x/src",
      env: ["FOO"],
      commands: 1,
      busy: false,
      lastUsedAt: "2026-01-01T00:00:05.000Z",
      expiresAt: "2026-01-01T00:01:05.000Z",
    });
    const next = registry.lease("key-a", info.id);
    expect(next.context).toMatchObject({ cwd: "/workspace/sessions/x/src", env: { FOO: "1" } });
    next.finish({ ran: true, state: null });
  });

  it("a command with no record keeps the previous state but counts; a refused one does not count", async () => {
    const { registry } = registryWith();
    const info = await registry.create("key-a");
    registry.lease("key-a", info.id).finish(ranWith(state("/w/a", { FOO: "1" })));
    const carried = registry.lease("key-a", info.id).finish({ ran: true, state: null });
    expect(carried).toEqual({ cwd: "/w/a", env: ["FOO"], envNotCarried: [] });
    expect(registry.get("key-a", info.id)).toMatchObject({ cwd: "/w/a", commands: 2 });
    registry.lease("key-a", info.id).finish({ ran: false });
    expect(registry.get("key-a", info.id)).toMatchObject({ commands: 2, busy: false });
  });

  it("treats a session past its idle time as gone before the sweep removes it", async () => {
    const { registry, advance } = registryWith();
    const info = await registry.create("key-a");
    advance(IDLE_MS + 1);
    expect(await codeOf(() => registry.get("key-a", info.id))).toBe("session_not_found");
    expect(registry.size).toBe(0);
  });

  it("reports names the env policy denies as not carried", async () => {
    const { registry } = registryWith();
    const info = await registry.create("key-a");
    const carried = registry
      .lease("key-a", info.id)
      .finish(ranWith(state("/w", { GITHUB_TOKEN: "t", OK: "1" })));
    expect(carried).toEqual({ cwd: "/w", env: ["OK"], envNotCarried: ["GITHUB_TOKEN"] });
  });

  it("a tenant's session carries only what its own policy's env_policy passes", async () => {
    const { registry } = registryWith({
      envDenied: (name, policy) =>
        policy === "strict" ? /^(PIP_|.*_TOKEN$)/.test(name) : name.endsWith("_TOKEN"),
    });
    const plain = await registry.create("key-a");
    const strict = await registry.create("tenant-b", { policy: "strict", quota: undefined });
    const left = state("/w", { PIP_INDEX_URL: "http://x", OK: "1" });
    expect(registry.lease("key-a", plain.id).finish(ranWith(left))).toMatchObject({
      env: ["OK", "PIP_INDEX_URL"],
      envNotCarried: [],
    });
    expect(registry.lease("tenant-b", strict.id).finish(ranWith(left))).toMatchObject({
      env: ["OK"],
      envNotCarried: ["PIP_INDEX_URL"],
    });
  });

  it("delete aborts a running command's lease, ends the agentsh session and removes the workspace", async () => {
    const { registry, closed, removed } = registryWith();
    const info = await registry.create("key-a");
    const lease = registry.lease("key-a", info.id);
    const deleted = await registry.delete("key-a", info.id);
    expect(deleted).toMatchObject({ id: info.id, busy: true });
    expect(lease.signal.aborted).toBe(true);
    expect(closed).toEqual([info.id]);
    expect(removed).toEqual([info.workspace]);
    expect(await codeOf(() => registry.get("key-a", info.id))).toBe("session_not_found");
    // The command's late finish does not bring it back.
    lease.finish(ranWith(state("/w", { FOO: "1" })));
    expect(registry.list("key-a")).toEqual([]);
    expect(registry.size).toBe(0);
  });

  it("still removes the workspace when agentsh fails to end its session", async () => {
    const stand = standIns();
    const warnings: string[] = [];
    const { registry } = registryWith({
      executor: {
        openSession: stand.executor.openSession,
        closeSession: async () => {
          throw new Error("gone");
        },
      },
      workspaces: stand.workspaces,
      logger: { ...silent, warn: (message) => warnings.push(message) },
    });
    const info = await registry.create("key-a");
    await registry.delete("key-a", info.id);
    expect(stand.removed).toEqual([info.workspace]);
    expect(warnings).toEqual(["agentsh session not ended"]);
  });

  it("sweep() ends sessions idle longer than idleMs, but never one with a running command", async () => {
    const { registry, advance, closed, removed } = registryWith();
    const idle = await registry.create("key-a");
    const busy = await registry.create("key-a");
    const lease = registry.lease("key-a", busy.id);
    advance(IDLE_MS);
    await registry.sweep();
    // Exactly idleMs: not yet.
    expect(registry.size).toBe(2);
    advance(1);
    await registry.sweep();
    expect(closed).toEqual([idle.id]);
    expect(removed).toEqual([idle.workspace]);
    expect(await codeOf(() => registry.get("key-a", idle.id))).toBe("session_not_found");
    expect(registry.get("key-a", busy.id).busy).toBe(true);
    // Used now: its idle time starts again when the command finishes.
    lease.finish({ ran: true, state: null });
    advance(IDLE_MS - 1);
    await registry.sweep();
    expect(registry.get("key-a", busy.id).busy).toBe(false);
    advance(2);
    await registry.sweep();
    expect(registry.size).toBe(0);
  });

  it("create() sweeps first, so expired sessions do not count against the limit", async () => {
    const { registry, advance } = registryWith({ maxPerKey: 1 });
    await registry.create("key-a");
    advance(IDLE_MS + 1);
    await expect(registry.create("key-a")).resolves.toMatchObject({ commands: 0 });
    expect(registry.size).toBe(1);
  });

  it("close() ends every session (running ones are aborted)", async () => {
    const { registry, closed, removed } = registryWith();
    const a = await registry.create("key-a");
    const b = await registry.create("key-b");
    const lease = registry.lease("key-b", b.id);
    await registry.close();
    expect(lease.signal.aborted).toBe(true);
    expect(closed.sort()).toEqual([a.id, b.id].sort());
    expect(removed.sort()).toEqual([a.workspace, b.workspace].sort());
    expect(registry.size).toBe(0);
  });
});

describe("session identities (one uid per session)", () => {
  const identities = {
    indices: [4, 5],
    uidOf: (index: number) => 47001 + index,
    gid: 47000,
    ended: [] as number[],
    async endProcesses(index: number) {
      this.ended.push(index);
    },
  };

  it("gives each session a uid of its own: its directory is that uid's, its commands run as it", async () => {
    const { registry, owners } = registryWith({
      identities,
      maxPerKey: 5,
      max: 5,
      isolated: true,
    });
    const a = await registry.create("key-a");
    const b = await registry.create("key-b");
    expect([a.isolated, b.isolated]).toEqual([true, true]);
    expect(owners.get(a.workspace)).toEqual({ uid: 47005, gid: 47000 });
    expect(owners.get(b.workspace)).toEqual({ uid: 47006, gid: 47000 });
    const lease = registry.lease("key-a", a.id);
    expect(lease.context.identity).toBe(4);
    lease.finish({ ran: true, state: null });
  });

  it("refuses a session when every identity is taken, and reuses one (its HOME removed) after a DELETE", async () => {
    const { registry, removed } = registryWith({
      identities,
      maxPerKey: 5,
      max: 5,
      scratchRoot: "/home/gexec",
    });
    const a = await registry.create("key-a");
    await registry.create("key-a");
    expect(await codeOf(() => registry.create("key-a"))).toBe("session_limit");
    await registry.delete("key-a", a.id);
    expect(removed).toContain(`/home/gexec/${a.id}`);
    expect(identities.ended).toContain(4);
    const c = await registry.create("key-a");
    expect(registry.lease("key-a", c.id).context.identity).toBe(4);
  });

  it("returns the identity when agentsh refuses the session", async () => {
    const stand = standIns();
    let fail = true;
    const { registry } = registryWith({
      identities,
      maxPerKey: 5,
      max: 5,
      executor: {
        openSession: async () => {
          if (fail) throw new Error("agentsh down");
        },
        closeSession: async () => {},
      },
      workspaces: stand.workspaces,
    });
    expect(await codeOf(() => registry.create("key-a"))).toBe("agentsh_unavailable");
    fail = false;
    const a = await registry.create("key-a");
    expect(registry.lease("key-a", a.id).context.identity).toBe(4);
  });

  it("without identities, sessions share the slots' uids; isolated says whether the launcher keeps them apart", async () => {
    const { registry, owners } = registryWith({ isolated: true });
    const a = await registry.create("key-a");
    expect(a.isolated).toBe(true);
    expect((await registryWith().registry.create("key-b")).isolated).toBe(false);
    expect(owners.get(a.workspace)).toBeUndefined();
    expect(registry.lease("key-a", a.id).context.identity).toBeUndefined();
  });
});

describe("carriedEnv", () => {
  const deny = envPolicyDenies(["*_TOKEN"]);
  const carry = (previous: Record<string, string>, next: SessionState) => {
    const notCarried = new Set<string>();
    const env = carriedEnv(previous, next, deny, notCarried);
    return { env, notCarried: [...notCarried].sort() };
  };

  it("does not carry variables the command found and left unchanged (agentsh's own baseline)", () => {
    const baseline = { PATH: "/usr/bin:/bin", LANG: "C.UTF-8", TERM: "dumb" };
    expect(carry({}, state("/w", baseline, baseline))).toEqual({ env: {}, notCarried: [] });
  });

  it("carries what the command exported or changed", () => {
    expect(
      carry(
        {},
        state(
          "/w",
          { PATH: "/opt/bin:/usr/bin", NEW: "x", LANG: "C" },
          { PATH: "/usr/bin", LANG: "C" },
        ),
      ),
    ).toEqual({ env: { PATH: "/opt/bin:/usr/bin", NEW: "x" }, notCarried: [] });
  });

  it("keeps carrying what earlier commands exported while it stays exported, with the new value", () => {
    const previous = { FOO: "1", BAR: "2" };
    // Both came in through the request's env, so they are in the initial environment too.
    expect(carry(previous, state("/w", { FOO: "1", BAR: "3" }, previous))).toEqual({
      env: { FOO: "1", BAR: "3" },
      notCarried: [],
    });
  });

  it("drops a variable the command unset", () => {
    const previous = { FOO: "1", BAR: "2" };
    expect(carry(previous, state("/w", { BAR: "2" }, previous))).toEqual({
      env: { BAR: "2" },
      notCarried: [],
    });
  });

  it.each([
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "HOME",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "_",
    "AGENTSH_X",
    "AGENTSH_SESSION_ID",
    "GEXEC_RUN",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "BASH_ENV",
    "ENV",
    "BASH_FUNC_x%%",
  ])("never carries %s, even when the command changed it", (name) => {
    const { env, notCarried } = carry({}, state("/w", { [name]: "changed", KEEP: "1" }, {}));
    expect(env).toEqual({ KEEP: "1" });
    expect(notCarried).toEqual([]);
  });

  it("reports names the env policy denies in notCarried (and drops one carried before)", () => {
    const previous = { GITHUB_TOKEN: "old" };
    const { env, notCarried } = carry(
      previous,
      state("/w", { GITHUB_TOKEN: "new", NPM_TOKEN: "n", OK: "1" }, previous),
    );
    expect(env).toEqual({ OK: "1" });
    expect(notCarried).toEqual(["GITHUB_TOKEN", "NPM_TOKEN"]);
  });

  it("carries at most 128 variables and names the rest as not carried", () => {
    const exported = Object.fromEntries(
      Array.from({ length: 130 }, (_, i) => [`V${String(i).padStart(3, "0")}`, "x"]),
    );
    const { env, notCarried } = carry({}, state("/w", exported, {}));
    expect(Object.keys(env)).toHaveLength(128);
    expect(notCarried).toHaveLength(2);
  });
});

describe("envPolicyDenies", () => {
  it("tests a variable name against the policy's env_policy.deny globs", () => {
    const denied = envPolicyDenies(["*_TOKEN", "AWS_*", "SECRET"]);
    expect(["GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "SECRET"].every(denied)).toBe(true);
    expect(["TOKEN_LIST", "MY_SECRET", "PATH"].some(denied)).toBe(false);
  });
});
