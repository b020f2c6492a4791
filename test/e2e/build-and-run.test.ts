import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CommandResult } from "../../src/command-result.js";
import type { SessionInfo } from "../../src/sessions/contract.js";
import { BASE_URL, expectAllowed, expectBlocked, http, waitFor } from "./harness.js";

/**
 * An agent writing software builds and runs its own code in its own places (a session's
 * directory, the workspace, its scratch HOME/TMPDIR), under every kernel layer: each row of the
 * table in issue "Agents can build and run their own code" failed or misled on the previous main.
 */

let session: SessionInfo;

async function inSession(command: string, timeoutMs?: number): Promise<CommandResult> {
  const res = await http("/execute", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ command, sessionId: session.id, ...(timeoutMs ? { timeoutMs } : {}) }),
  });
  const body = (await res.json()) as { result: CommandResult };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.result;
}

beforeAll(async () => {
  const res = await http("/sessions", { method: "POST" });
  expect(res.status).toBe(201);
  session = ((await res.json()) as { session: SessionInfo }).session;
});

afterAll(async () => {
  await http(`/sessions/${session.id}`, { method: "DELETE" });
});

describe("programs the agent writes or installs run", () => {
  it.each([
    [
      "a script it wrote (./run.sh)",
      "printf '#!/bin/sh\\necho ran\\n' > run.sh && chmod +x run.sh && ./run.sh",
    ],
    [
      "compiled output (cc a.c -o a.out && ./a.out)",
      "printf '#include <stdio.h>\\nint main(void){puts(\"ran\");return 0;}\\n' > a.c && cc a.c -o a.out && ./a.out",
    ],
    [
      "a venv's interpreter and tools",
      "python3 -m venv v >/dev/null && ./v/bin/python -c 'print(\"ran\")' && v/bin/pip --version >/dev/null",
    ],
    [
      "a node_modules/.bin tool",
      "mkdir -p node_modules/.bin && printf '#!/usr/bin/env node\\nconsole.log(\"ran\")\\n' > node_modules/.bin/tool && chmod +x node_modules/.bin/tool && ./node_modules/.bin/tool",
    ],
    [
      "a build's target/debug binary",
      "mkdir -p target/debug && cp a.out target/debug/app && ./target/debug/app",
    ],
    ["a binary in its TMPDIR (go run builds there)", 'cp a.out "$TMPDIR/built" && "$TMPDIR/built"'],
  ])("%s", async (_what, command) => {
    expectAllowed(await inSession(command, 60_000), "ran\n");
  });

  it("command-name rules stay policy for ordinary tools: ./sudo from /usr/bin is still blocked", async () => {
    expectBlocked(
      await inSession("cd /usr/bin && ./sudo id"),
      "deny-privilege-escalation",
      "command",
    );
  });
});

describe("dev servers on any unprivileged port, reached by the agent's later commands", () => {
  it.each([6006, 1313, 4321, 8765, 61234])("port %i", async (port) => {
    const abort = new AbortController();
    const server = http("/execute", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        command: `cd "$TMPDIR" && echo dev-${port} > index.txt && timeout 20 python3 -m http.server ${port} --bind 127.0.0.1`,
        timeoutMs: 30_000,
      }),
      signal: abort.signal,
    }).catch(() => undefined);
    try {
      let body = "";
      await waitFor(`the dev server on ${port}`, 15_000, async () => {
        const result = await inSession(`curl -s --max-time 2 http://127.0.0.1:${port}/index.txt`);
        body = result.stdout;
        return body !== "";
      });
      expect(body).toBe(`dev-${port}\n`);
    } finally {
      abort.abort();
      await server;
    }
  });

  it("the service's own ports stay out of reach on every address: bind refused, and blocked through the proxy", async () => {
    const health = (await (await http("/health")).json()) as {
      isolation: {
        servicePorts: Record<string, { ipv4: string; ipv6: string }>;
        privilegedPortsBelow: number | null;
      };
    };
    const { servicePorts, privilegedPortsBelow } = health.isolation;
    const appPort = Number(new URL(BASE_URL).port);
    const agentshPort = 18080;
    expect(Object.keys(servicePorts).map(Number)).toEqual(
      expect.arrayContaining([appPort, agentshPort, 9090, 6060, 6379]),
    );
    // A native bind on each address of each port, as a dev server (or an attacker) would try.
    const targets = Object.keys(servicePorts).flatMap((port) =>
      ["127.0.0.1", "0.0.0.0", "::1", "::"].map((host) => `${host}@${port}`),
    );
    const probe = [
      "import socket,sys",
      "for t in sys.argv[1:]:",
      " h,p=t.split('@');s=socket.socket(socket.AF_INET6 if ':' in h else socket.AF_INET)",
      " try:s.bind((h,int(p)));print(t,'bound')",
      " except OSError as e:print(t,e.errno)",
    ].join("\n");
    const result = await inSession(`python3 -c "${probe}" ${targets.join(" ")}`);
    const outcomes = Object.fromEntries(
      result.stdout
        .trim()
        .split("\n")
        .map((line) => line.split(" ") as [string, string]),
    );
    expect(Object.keys(outcomes).sort()).toEqual([...targets].sort());
    for (const target of targets) {
      // EADDRINUSE (held), EACCES (a Landlock bind list), EADDRNOTAVAIL/EAFNOSUPPORT (no IPv6).
      expect([target, ["98", "13", "99", "97"]]).toEqual([
        target,
        expect.arrayContaining([outcomes[target]]),
      ]);
    }
    // Where the kernel reserves ports below 1024, commands (no CAP_NET_BIND_SERVICE) cannot.
    if (privilegedPortsBelow !== null && privilegedPortsBelow > 80) {
      const low = await inSession(
        `python3 -c "import socket\ntry:socket.socket().bind(('127.0.0.1',80));print('bound')\nexcept OSError as e:print(e.errno)"`,
      );
      expect(low.stdout).toBe("13\n");
    }
    expectBlocked(
      await inSession("curl -s --max-time 3 http://127.0.0.1:18080/health"),
      "deny-agentsh-api",
      "network",
    );
  });
});
