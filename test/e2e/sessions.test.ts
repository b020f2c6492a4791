import { afterEach, describe, expect, it } from "vitest";
import type { CommandResult } from "../../src/command-result.js";
import type { ExecuteBody, SessionInfo } from "../../src/sessions/contract.js";
import {
  expectAllowed,
  expectBlocked,
  http,
  layerEnforced,
  OTHER_API_KEY,
  REMOTE,
} from "./harness.js";

/**
 * Sessions against the real agentsh: state carried between commands by the wrapper, one command
 * at a time, ownership per API key, and the state file read back as untrusted input.
 */

/** The sessions a test created, with the key that owns each (to end them afterwards). */
const created: Array<{ id: string; apiKey: string | undefined }> = [];

/** The stack's second key (API_KEYS), which ownership tests need. */
function otherApiKey(): string {
  if (!OTHER_API_KEY)
    throw new Error("E2E_API_KEY_2 must name a second key of the stack (API_KEYS)");
  return OTHER_API_KEY;
}

async function createSession(apiKey?: string): Promise<SessionInfo> {
  const res = await http("/sessions", {
    method: "POST",
    ...(apiKey ? { headers: { "X-API-Key": apiKey } } : {}),
  });
  const body = (await res.json()) as { session: SessionInfo };
  expect(res.status, JSON.stringify(body)).toBe(201);
  created.push({ id: body.session.id, apiKey });
  return body.session;
}

async function run(
  sessionId: string | undefined,
  command: string,
): Promise<{ status: number; body: ExecuteBody & { error?: { code: string } } }> {
  const res = await http("/execute", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(sessionId ? { command, sessionId } : { command }),
  });
  return {
    status: res.status,
    body: (await res.json()) as ExecuteBody & { error?: { code: string } },
  };
}

async function runOk(sessionId: string, command: string): Promise<ExecuteBody> {
  const { status, body } = await run(sessionId, command);
  expect(status, JSON.stringify(body)).toBe(200);
  return body;
}

/** Each test ends its sessions (a key holds at most four). */
afterEach(async () => {
  await Promise.all(
    created.splice(0).map(async ({ id, apiKey }) => {
      const owner = apiKey ? { headers: { "X-API-Key": apiKey } } : {};
      await http(`/sessions/${id}`, { method: "DELETE", ...owner });
    }),
  );
});

describe("sessions on the real stack", () => {
  it("carries the working directory and exported variables between commands, not into others", async () => {
    const session = await createSession();
    expect(session.id).toMatch(/^s-[a-z0-9]+-[0-9a-f]{24}$/);
    expect(session.cwd).toBe(session.workspace);

    const first = await runOk(
      session.id,
      "mkdir -p build/out && cd build && export GREETING=hello PLAIN=1 && export MY_TOKEN=abc && NOT_EXPORTED=1",
    );
    expectAllowed(first.result);
    expect(first.session?.cwd).toBe(`${session.workspace}/build`);
    expect(first.session?.env).toEqual(["GREETING", "PLAIN"]);
    // The policy's env_policy denies *_TOKEN: said, not silently dropped.
    expect(first.session?.envNotCarried).toEqual(["MY_TOKEN"]);

    const second = await runOk(
      session.id,
      `pwd; echo "$GREETING"; echo "\${MY_TOKEN:-no token}"; echo "\${NOT_EXPORTED:-not exported}"; unset PLAIN; cd out`,
    );
    expectAllowed(second.result, `${session.workspace}/build\nhello\nno token\nnot exported\n`);
    expect(second.session?.cwd).toBe(`${session.workspace}/build/out`);
    expect(second.session?.env).toEqual(["GREETING"]);

    const third = await runOk(session.id, `pwd; echo "\${PLAIN:-unset}"`);
    expectAllowed(third.result, `${session.workspace}/build/out\nunset\n`);

    // A command without the session knows nothing of it.
    const outside = await run(undefined, `echo "\${GREETING:-none}"; pwd`);
    expect(outside.body.result.stdout).toMatch(/^none\n/);
    expect(outside.body.result.stdout).not.toContain(session.workspace);
    expect(outside.body.session).toBeUndefined();

    const info = (await (await http(`/sessions/${session.id}`)).json()) as { session: SessionInfo };
    expect(info.session).toMatchObject({ commands: 3, busy: false, env: ["GREETING"] });
  });

  it("governs commands in a session like any other: sudo is blocked by its rule", async () => {
    const session = await createSession();
    const body = await runOk(session.id, "sudo id");
    expectBlocked(body.result as CommandResult, "deny-privilege-escalation");
    expect(body.session?.cwd).toBe(session.workspace);
  });

  it("keeps sessions apart in every profile (Landlock paths; separate uids where commands drop to them)", async () => {
    const a = await createSession();
    const b = await createSession();
    expect([a.isolated, b.isolated]).toEqual([true, true]);
    const uidA = (await runOk(a.id, "echo secret-of-a > note.txt; id -u")).result.stdout;
    const uidB = (await runOk(b.id, "id -u")).result.stdout;
    const fromB = (await run(b.id, `cat ${a.workspace}/note.txt; touch ${a.workspace}/planted`))
      .body;
    const fromPlain = (await run(undefined, `cat ${a.workspace}/note.txt`)).body;
    for (const attempt of [fromB, fromPlain]) {
      expect(attempt.result.stdout).not.toContain("secret-of-a");
      expect(attempt.result.stderr).toContain("Permission denied");
    }
    expect((await runOk(a.id, "ls")).result.stdout).toBe("note.txt\n");
    // Separate principals too, where commands drop to unprivileged uids.
    if (await layerEnforced("uid-drop")) expect(uidA).not.toBe(uidB);
    else expect([uidA, uidB]).toEqual(["0\n", "0\n"]);
    // Nor can a command list the sessions' ids.
    const parent = a.workspace.slice(0, a.workspace.lastIndexOf("/"));
    const listed = (await run(undefined, `ls ${parent}`)).body.result;
    expect(listed.stdout).toBe("");
    expect(listed.stderr).toContain("Permission denied");
  });

  it("runs one command at a time: a second one is refused with 409 session_busy", async () => {
    const session = await createSession();
    const slow = run(session.id, "sleep 3; echo done");
    await new Promise((resolve) => setTimeout(resolve, 800));
    const second = await run(session.id, "echo second");
    expect([second.status, second.body.error?.code]).toEqual([409, "session_busy"]);
    const first = await slow;
    expect(first.status).toBe(200);
    expectAllowed(first.body.result, "done\n");
  });

  it("ignores a state record the command replaced by a link (read back as untrusted input)", async () => {
    const session = await createSession();
    // The wrapper's state file is named in a shell variable the command can see. Pointing it at
    // the service's own /proc/self/cmdline (which starts with "/") would set the cwd to the
    // service's binary if the service followed the link.
    const body = await runOk(
      session.id,
      'cd /tmp; trap - EXIT; ln -sf /proc/self/cmdline "$__governed_state"; ln -sf /proc/self/cmdline "$__governed_state.initial"; echo linked',
    );
    expectAllowed(body.result, "linked\n");
    expect(body.session?.cwd).toBe(session.workspace);
  });

  it("keeps sessions per API key: another key's session is a 404", async () => {
    const other = otherApiKey();
    const mine = await createSession();
    const theirs = await createSession(other);
    const asOther = { headers: { "X-API-Key": other } };
    expect((await http(`/sessions/${mine.id}`, asOther)).status).toBe(404);
    expect((await http(`/sessions/${theirs.id}`)).status).toBe(404);
    const list = (await (await http("/sessions", asOther)).json()) as { sessions: SessionInfo[] };
    expect(list.sessions.map((s) => s.id)).toEqual([theirs.id]);
    const res = await http("/execute", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ command: "echo hi", sessionId: theirs.id }),
    });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "session_not_found",
    );
  });

  it("DELETE of another key's session is a 404 and the session lives on, with its state", async () => {
    const other = otherApiKey();
    const asOther = { headers: { "X-API-Key": other } };
    const mine = await createSession();
    await runOk(mine.id, "mkdir -p kept && cd kept && export KEPT=yes");
    const theirs = await createSession(other);

    const refused = await http(`/sessions/${mine.id}`, { method: "DELETE", ...asOther });
    expect(refused.status).toBe(404);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
      "session_not_found",
    );
    expect((await http(`/sessions/${theirs.id}`, { method: "DELETE" })).status).toBe(404);

    // Nothing was ended: both answer their owners, and mine still has its directory and variable.
    expect((await http(`/sessions/${mine.id}`)).status).toBe(200);
    expect((await http(`/sessions/${theirs.id}`, asOther)).status).toBe(200);
    const after = await runOk(mine.id, 'echo "$KEPT"; pwd');
    expectAllowed(after.result, `yes\n${mine.workspace}/kept\n`);
  });

  it("DELETE ends the session: its running command is killed and its workspace removed", async () => {
    const session = await createSession();
    await runOk(session.id, "touch kept-file");
    const started = Date.now();
    const running = run(session.id, "sleep 30; echo finished");
    await new Promise((resolve) => setTimeout(resolve, 800));
    const del = await http(`/sessions/${session.id}`, { method: "DELETE" });
    expect(del.status).toBe(200);
    const killed = await running;
    expect(Date.now() - started).toBeLessThan(15_000);
    expect([killed.status, killed.body.error?.code]).toEqual([404, "session_not_found"]);
    expect((await http(`/sessions/${session.id}`)).status).toBe(404);
    if (!REMOTE) {
      const gone = await run(undefined, `test -e ${session.workspace} && echo exists || echo gone`);
      expect(gone.body.result.stdout).toBe("gone\n");
    }
  });

  it("limits sessions per key (MAX_SESSIONS_PER_KEY, default 4) with 429 session_limit", async () => {
    const list = (await (await http("/sessions")).json()) as { sessions: SessionInfo[] };
    for (let held = list.sessions.length; held < 4; held++) await createSession();
    const res = await http("/sessions", { method: "POST" });
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("session_limit");
  });
});
