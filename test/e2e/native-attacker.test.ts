import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CommandResult } from "../../src/command-result.js";
import type { SessionInfo } from "../../src/sessions/contract.js";
import { isRunning } from "../support/processes.js";
import { skipWhen } from "../support/skip-when.js";
import { canaryConnections, http, OTHER_API_KEY, PROFILE } from "./harness.js";

/**
 * The kernel holds against native code: a C program (native-attacker.c) that a governed command
 * compiles and runs in its own session tries what the command-name rules cannot see (raw
 * sockets, direct TCP, signals, ptrace, mounts, namespaces, files), then fills memory. Every
 * effect must be absent: the program saw each attempt refused, the canary got no connection,
 * the targets are alive, the files are unchanged. On the host and in the Render profile.
 */

const SOURCE = readFileSync(new URL("./native-attacker.c", import.meta.url), "utf8");
const ownNetns = readlinkSync("/proc/self/ns/net");

let session: SessionInfo;
let victim: SessionInfo;

async function run(command: string, sessionId: string, key?: string): Promise<CommandResult> {
  const res = await http("/execute", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(key ? { "X-API-Key": key } : {}) },
    body: JSON.stringify({ command, sessionId, timeoutMs: 120_000 }),
  });
  const body = (await res.json()) as { result: CommandResult };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.result;
}

/** Processes of this test network namespace, with their pid as commands see it. */
function processOf(matches: (argv: string[]) => boolean): { pid: number; seen: number } {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/ns/net`) !== ownNetns) continue;
      if (!matches(readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0"))) continue;
      const nspid = /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${name}/status`, "utf8"))?.[1];
      return { pid: Number(name), seen: Number(nspid?.trim().split(/\s+/).at(-1) ?? name) };
    } catch {}
  }
  throw new Error("process not found");
}

describe("a native attacker in the workspace", skipWhen("remote"), () => {
  beforeAll(async () => {
    session = (
      (await (await http("/sessions", { method: "POST" })).json()) as { session: SessionInfo }
    ).session;
    victim = (
      (await (
        await http("/sessions", { method: "POST", headers: { "X-API-Key": OTHER_API_KEY ?? "" } })
      ).json()) as { session: SessionInfo }
    ).session;
    const planted = await run(
      "echo victim-secret > secret.txt && chmod 600 secret.txt",
      victim.id,
      OTHER_API_KEY,
    );
    expect(planted.outcome).toBe("ok");
    // Commands are at most 1024 characters: the source goes in base64 pieces.
    const encoded = Buffer.from(SOURCE).toString("base64");
    for (let at = 0; at < encoded.length; at += 900) {
      const piece = await run(
        `printf '%s' '${encoded.slice(at, at + 900)}' >> attacker.b64`,
        session.id,
      );
      expect(piece.outcome).toBe("ok");
    }
    const built = await run(
      "base64 -d attacker.b64 > attacker.c && cc -O1 -o attacker attacker.c && echo built",
      session.id,
    );
    expect(built.stdout, JSON.stringify(built)).toBe("built\n");
  });

  afterAll(async () => {
    await http(`/sessions/${session.id}`, { method: "DELETE" });
    await http(`/sessions/${victim.id}`, {
      method: "DELETE",
      headers: { "X-API-Key": OTHER_API_KEY ?? "" },
    });
  });

  it("every attempt is refused by the kernel, no canary connection, every target alive", async () => {
    const app = processOf((argv) => argv.includes("dist/server.js"));
    const agentsh = processOf(
      (argv) => argv[0]?.endsWith("/agentsh") === true && argv.includes("server"),
    );
    const since = Date.now();
    // Init: SIGTERM in the container (tini would stop the stack); on the host, signal 0.
    const initSignal = PROFILE === "host" ? 0 : 15;
    const result = await run(
      `./attacker ${app.seen} ${agentsh.seen} ${initSignal} 10000 ${victim.workspace}/secret.txt`,
      session.id,
    );
    const lines = result.stdout.trim().split("\n");
    expect(lines.length, result.stdout + result.stderr).toBe(20);
    // With separate uids kill(-1) succeeds and reaches only the caller's own uid (its own
    // processes, here its shell); that the service, agentsh and init live is checked below.
    const ownUidOnly = PROFILE === "host" ? ["kill -1: DONE"] : [];
    expect(lines.filter((line) => !/: refused \(E[A-Z]+\)$/.test(line))).toEqual(ownUidOnly);
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const address of ["169.254.169.254", "10.0.0.1", "127.0.0.1"]) {
      expect(canaryConnections(address, since), address).toEqual([]);
    }
    expect(isRunning(app.pid) && isRunning(agentsh.pid)).toBe(true);
    expect((await http("/health")).status).toBe(200);
    if (PROFILE === "host") {
      expect(existsSync("/usr/bin/planted-by-attacker")).toBe(false);
      expect(existsSync("/etc/planted-by-attacker")).toBe(false);
    }
  });

  it("filling memory ends the attacker, not the service", async () => {
    const app = processOf((argv) => argv.includes("dist/server.js"));
    const result = await run("./attacker --fill-memory; echo rc=$?", session.id);
    expect(result.stdout).not.toContain("DONE");
    expect(result.stdout).toMatch(/rc=137\n$|refused \(ENOMEM\)/);
    expect(isRunning(app.pid)).toBe(true);
    expect((await http("/health")).status).toBe(200);
  });
});
