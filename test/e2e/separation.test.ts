import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import type { CommandResult } from "../../src/command-result.js";
import type { SessionInfo } from "../../src/sessions/contract.js";
import { expectAllowed, http, OTHER_API_KEY } from "./harness.js";

/**
 * What keeps callers apart, tried as a hostile agent would, in every profile (the host with its
 * per-uid drop, and the Render profile: a container without CAP_SYS_PTRACE, Landlock held to
 * ABI 5, every command uid 0). The launcher's Landlock file rules grant a command only its own
 * workspace (a session's directory, or the shared one for commands without a session) and its
 * own scratch HOME/TMPDIR; /tmp is nobody's. Every probe below read or wrote the other
 * caller's file on the previous main in the container.
 */

const sessions: { id: string; key: string | undefined }[] = [];

async function createSession(key?: string): Promise<SessionInfo> {
  const res = await http("/sessions", {
    method: "POST",
    ...(key ? { headers: { "X-API-Key": key } } : {}),
  });
  const body = (await res.json()) as { session: SessionInfo };
  expect(res.status, JSON.stringify(body)).toBe(201);
  sessions.push({ id: body.session.id, key });
  return body.session;
}

async function run(
  command: string,
  options: { key?: string | undefined; sessionId?: string } = {},
): Promise<CommandResult> {
  const res = await http("/execute", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      ...(options.key ? { "X-API-Key": options.key } : {}),
    },
    body: JSON.stringify(
      options.sessionId ? { command, sessionId: options.sessionId } : { command },
    ),
  });
  const body = (await res.json()) as { result: CommandResult };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.result;
}

afterAll(async () => {
  await Promise.all(
    sessions.map(({ id, key }) =>
      http(`/sessions/${id}`, {
        method: "DELETE",
        ...(key ? { headers: { "X-API-Key": key } } : {}),
      }),
    ),
  );
});

describe("sessions and API keys are kept apart (the launcher's Landlock file rules)", () => {
  const marker = `m${Date.now()}`;
  let a: SessionInfo;
  let scratchA = "";
  let plainScratchA = "";

  it("session A (key 1) writes its files: its directory, its TMPDIR (0600), not /tmp", async () => {
    a = await createSession();
    const wrote = await run(
      `echo ${marker}-dir > a.txt && chmod 600 a.txt && echo ${marker}-tmpdir > "$TMPDIR/a.txt" && chmod 600 "$TMPDIR/a.txt" && echo "$TMPDIR"`,
      { sessionId: a.id },
    );
    expectAllowed(wrote);
    scratchA = wrote.stdout.trim();
    expect(scratchA).toMatch(new RegExp(`/${a.id}$`));
    // /tmp is shared by every caller, so nobody writes there (a named rule says why).
    const tmp = await run(`echo ${marker}-tmp > /tmp/${marker} && chmod 600 /tmp/${marker}`, {
      sessionId: a.id,
    });
    expect(tmp.outcome).toBe("blocked");
    expect(tmp.decision?.rule).toBe("deny-shared-tmp");
    expect(tmp.stderr).toContain("Permission denied");
    // Key 1's command without a session: its key's own scratch dir.
    const plain = await run(`echo ${marker}-plain > "$TMPDIR/p.txt" && echo "$TMPDIR"`);
    expectAllowed(plain);
    plainScratchA = plain.stdout.trim();
    expect(plainScratchA).not.toBe(scratchA);
  });

  const targets: [string, () => string][] = [
    ["session A's directory", () => `${a.workspace}/a.txt`],
    ["session A's TMPDIR", () => `${scratchA}/a.txt`],
    ["/tmp (where A tried to leave a 0600 file)", () => `/tmp/${marker}`],
    ["key 1's plain TMPDIR", () => `${plainScratchA}/p.txt`],
  ];
  const probes = (attacker: string) =>
    targets.map(([where, path]) => [`${attacker}: ${where}`, path] as const);

  /** Each attacker once (a key holds at most four sessions). */
  const once = <T>(make: () => Promise<T>) => {
    let made: Promise<T> | undefined;
    return () => {
      made ??= make();
      return made;
    };
  };
  const attackers: [string, () => Promise<{ key?: string | undefined; sessionId?: string }>][] = [
    [
      "session B of key 2",
      once(async () => ({
        key: OTHER_API_KEY,
        sessionId: (await createSession(OTHER_API_KEY)).id,
      })),
    ],
    ["key 2 without a session", async () => ({ key: OTHER_API_KEY })],
    ["session C of key 1 itself", once(async () => ({ sessionId: (await createSession()).id }))],
  ];

  for (const [attacker, as] of attackers) {
    it.each(probes(attacker))("%s cannot be read, listed or written", async (_name, path) => {
      const target = path();
      const result = await run(
        `cat ${target}; ls $(dirname ${target}); echo planted > ${target}; echo planted > $(dirname ${target})/planted`,
        await as(),
      );
      expect(result.stdout).not.toContain(marker);
      expect(result.stdout).toBe("");
      // Each of the four operations was refused (or found nothing, for /tmp).
      const refusals = result.stderr.match(/Permission denied|No such file or directory/g) ?? [];
      expect(refusals.length, result.stderr).toBeGreaterThanOrEqual(4);
    });
  }

  it("…and session A still has all of its files, none planted", async () => {
    const check = await run(`cat a.txt "$TMPDIR/a.txt"; ls -A`, { sessionId: a.id });
    expectAllowed(check, `${marker}-dir\n${marker}-tmpdir\na.txt\n`);
    const plain = await run(`cat "$TMPDIR/p.txt"; ls "$TMPDIR" | grep -c planted`);
    expect(plain.stdout).toBe(`${marker}-plain\n0\n`);
  });
});

describe("the launcher's file rules hold under concurrency (agentsh's own Landlock layer did not)", () => {
  it("every one of 800 concurrent commands (4 at a time × 200) is inside the launcher's file rules", async () => {
    // agentsh's own layer grants /proc (the launcher's guard reads it); only the launcher's
    // domain keeps /proc/self/stat from a command. agentsh's layer, applied on a thread that may
    // not be the one that execs, was missing in 34 of 800 such runs on the previous main.
    // Positive control: the same read outside the sandbox works.
    expect(readFileSync("/proc/self/stat", "utf8")).toMatch(/^\d+ /);
    const probe = "cat /proc/self/stat >/dev/null 2>&1; echo rc=$?";
    let read = 0;
    let refused = 0;
    const other: string[] = [];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let round = 0; round < 200; round++) {
          const result = await run(probe);
          if (result.stdout === "rc=0\n") read++;
          else if (result.stdout === "rc=1\n") refused++;
          else other.push(JSON.stringify(result).slice(0, 300));
        }
      }),
    );
    console.log(
      `[measured] outside the file rules, 4 parallel × 200: ${read} read, ${refused} refused`,
    );
    expect(other).toEqual([]);
    expect(read).toBe(0);
    expect(refused).toBe(800);
  }, 600_000);

  it("no command inherits another request's file descriptors (4 at a time × 25)", async () => {
    const listFds = `python3 -c 'import os
open_fds = []
for fd in range(3, 1024):
    try:
        os.fstat(fd)
        open_fds.append(fd)
    except OSError:
        pass
print(open_fds)'`;
    const seen: string[] = [];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let round = 0; round < 25; round++) seen.push((await run(listFds)).stdout);
      }),
    );
    expect(new Set(seen)).toEqual(new Set(["[]\n"]));
  }, 300_000);
});
