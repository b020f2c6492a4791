// with-stack.ts from start to teardown: its exit code, a stack that fails to boot, a signal
// mid-run, a stack outside the namespace, bad settings. Each run is bounded; they run at once.

import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  allDead,
  FAKE_STACK,
  heldEnvironment,
  holdCommand,
  namespaceGone,
  namespacePids,
  startRun,
  stopAllRuns,
} from "./harness-run.js";

const tmp = mkdtempSync("/tmp/with-stack-test.");

afterAll(async () => {
  await stopAllRuns();
  rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describe.concurrent("with-stack.ts", () => {
  it("exits with the command's code; KEEP_STACK_LOGS=1 keeps the logs", async () => {
    const harness = startRun(["sh", "-c", "exit 7"], { KEEP_STACK_LOGS: "1" });
    expect(await harness.exit(30_000), harness.output()).toBe(7);
    expect(harness.output()).toContain("command exited with code 7");
    const kept = /logs kept in (\/tmp\/with-stack\.\S+) /.exec(harness.output())?.[1] ?? "";
    try {
      expect(statSync(join(kept, "stack.log")).size).toBeGreaterThan(0);
      expect(existsSync(join(kept, "canary.jsonl"))).toBe(true);
    } finally {
      if (kept !== "") rmSync(kept, { recursive: true, force: true });
    }
    expect(await namespaceGone(harness.namespace())).toBe(true);
  });

  it("fails at once when the stack dies during boot, with the stack's log tail", async () => {
    const started = Date.now();
    const harness = startRun(["true"], {
      STACK_CMD: 'echo "stack-boom: cannot start" >&2; exit 3',
      STACK_BOOT_TIMEOUT: "60",
    });
    expect(await harness.exit(30_000)).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(30_000); // not at the boot deadline
    expect(harness.output()).toContain("the stack exited (code 3) before /health answered 200");
    expect(harness.output()).toContain("  | stack-boom: cannot start");
    expect(await namespaceGone(harness.namespace())).toBe(true);
  });

  it("fails at STACK_BOOT_TIMEOUT when the stack never gets healthy, and KILLs it if it ignores TERM", async () => {
    const pidFile = join(tmp, "stuck.pid");
    const started = Date.now();
    const harness = startRun(["true"], {
      // The ignored TERM survives the exec.
      STACK_CMD: `trap '' TERM; echo $$ > '${pidFile}'; exec sleep 300`,
      STACK_BOOT_TIMEOUT: "2",
      STACK_STOP_TIMEOUT: "1",
    });
    expect(await harness.exit(30_000)).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(harness.output()).toContain("did not answer GET /health with 200 within 2s");
    const stuck = Number(readFileSync(pidFile, "utf8"));
    expect(harness.output()).toContain(
      `the stack did not stop within 1s after TERM; sent KILL to ${stuck}`,
    );
    expect(allDead([stuck])).toBe(true);
    expect(await namespaceGone(harness.namespace())).toBe(true);
  });

  it("tears everything down on TERM, a daemon that left the stack's session included", async () => {
    const stateFile = join(tmp, "term.env");
    const harness = startRun(holdCommand(stateFile), {
      STACK_CMD: `setsid sleep 300 </dev/null >/dev/null 2>&1 & ${FAKE_STACK}`,
    });
    const env = await heldEnvironment(harness, stateFile, 45_000);
    const ns = env.TEST_NETNS ?? "";
    const pids = await namespacePids(ns);
    // canary, dnsmasq, the fake stack, its daemon, the command
    expect(pids.length).toBeGreaterThanOrEqual(5);
    const started = Date.now();
    harness.child.kill("SIGTERM");
    expect(await harness.exit(30_000)).toBe(143);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(harness.output()).toContain("caught SIGTERM, tearing down");
    expect(harness.output()).toMatch(/stopping processes left in \S+: \d+/);
    expect(allDead(pids)).toBe(true);
    expect(await namespaceGone(ns)).toBe(true);
  });

  it("STACK_IN_NETNS=0 starts the stack in the host's namespaces, with TEST_NETNS to join", async () => {
    const stackLog = join(tmp, "host-stack.log");
    const harness = startRun(["sh", "-c", 'curl -s --max-time 5 "$BASE_URL/health"'], {
      STACK_IN_NETNS: "0",
      STACK_LOG: stackLog,
      STACK_CMD: `readlink /proc/self/ns/net; exec ip netns exec "$TEST_NETNS" ${FAKE_STACK}`,
    });
    expect(await harness.exit(30_000), harness.output()).toBe(0);
    expect(harness.output()).toContain('"fake":true');
    expect(readFileSync(stackLog, "utf8").split("\n")[0]).toBe(readlinkSync("/proc/self/ns/net"));
    expect(await namespaceGone(harness.namespace())).toBe(true);
  });

  it("refuses bad settings before it creates anything, naming each", async () => {
    const harness = startRun(["true"], { PORT: "ten", STACK_IN_NETNS: "yes" });
    expect(await harness.exit(30_000)).toBe(1);
    expect(harness.output()).toContain("PORT must be a whole number, got 'ten'");
    expect(harness.output()).toContain("STACK_IN_NETNS must be 0 or 1, got 'yes'");
    expect(harness.namespace()).toBe("");
  });

  it("prints its usage and exits 2 without a command", async () => {
    const harness = startRun([]);
    expect(await harness.exit(30_000)).toBe(2);
    expect(harness.output()).toContain("Usage (from the repository root):");
  });
});
