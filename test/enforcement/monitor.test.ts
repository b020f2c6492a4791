import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createEnforcementMonitor, type Proof } from "../../src/enforcement/monitor.js";
import type { Logger } from "../../src/logger.js";

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const PASSED: Proof = { checks: { "canary: sudo denied": true }, problems: [] };
const FAILED: Proof = {
  checks: { "canary: sudo denied": false },
  problems: ["canary: sudo denied: `sudo id` gave ok"],
};

/** A monitor whose agentsh reachability and canary verdict the test controls. */
function monitorWith(options: {
  reachable?: boolean;
  proof?: Proof;
  allowDegraded?: boolean;
  reverifyMs?: number;
}) {
  const world = { reachable: options.reachable ?? true, proof: options.proof ?? PASSED, proofs: 0 };
  const monitor = createEnforcementMonitor({
    probe: async () => (world.reachable ? null : "agentsh server is not reachable"),
    prove: async () => {
      world.proofs++;
      return world.proof;
    },
    staticChecks: { "landlock enabled in bundle": true },
    allowDegraded: options.allowDegraded ?? false,
    logger: silent,
    pollMs: 1_000,
    ...(options.reverifyMs ? { reverifyMs: options.reverifyMs } : {}),
  });
  return { monitor, world };
}

describe("enforcement monitor", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("is unverified and closed until the first proof", () => {
    const { monitor } = monitorWith({});
    expect(monitor.state().mode).toBe("unverified");
    expect(monitor.gate()).toMatch(/enforcement is unverified/);
  });

  it("boot: opens when the canaries pass, with static and canary checks together", async () => {
    const { monitor } = monitorWith({});
    const stop = await monitor.start();
    expect(monitor.state()).toEqual({
      mode: "enforced",
      checks: { "landlock enabled in bundle": true, "canary: sudo denied": true },
      problems: [],
    });
    expect(monitor.gate()).toBeNull();
    stop();
  });

  it("boot: refuses to start when a canary fails, naming it", async () => {
    const { monitor } = monitorWith({ proof: FAILED });
    await expect(monitor.start()).rejects.toThrow(
      /Refusing to start.*\n.*failed: canary: sudo denied/,
    );
  });

  it("boot: ALLOW_DEGRADED serves a degraded state, and says so in the state", async () => {
    const { monitor } = monitorWith({ proof: FAILED, allowDegraded: true });
    const stop = await monitor.start();
    expect(monitor.state().mode).toBe("degraded");
    expect(monitor.gate()).toBeNull();
    stop();
  });

  it("agentsh unreachable at boot: starts closed, and proves enforcement once agentsh answers", async () => {
    const { monitor, world } = monitorWith({ reachable: false });
    const stop = await monitor.start();
    expect(world.proofs).toBe(0);
    expect(monitor.gate()).not.toBeNull();
    world.reachable = true;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(world.proofs).toBe(1);
    expect(monitor.state().mode).toBe("enforced");
    stop();
  });

  it("reachable → lost → unverified (closed) → back: re-verified before it opens again", async () => {
    const { monitor, world } = monitorWith({});
    const stop = await monitor.start();
    expect(monitor.state().mode).toBe("enforced");

    world.reachable = false;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(monitor.state()).toMatchObject({ mode: "unverified", checks: {} });
    expect(monitor.gate()).toMatch(/re-verifying/);

    world.reachable = true;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(world.proofs).toBe(2);
    expect(monitor.state().mode).toBe("enforced");
    stop();
  });

  it("a failed re-verification keeps it closed (degraded), not open", async () => {
    const { monitor, world } = monitorWith({});
    const stop = await monitor.start();
    world.reachable = false;
    await vi.advanceTimersByTimeAsync(1_000);
    world.proof = FAILED;
    world.reachable = true;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(monitor.state().mode).toBe("degraded");
    expect(monitor.gate()).toMatch(/failed: canary: sudo denied/);
    stop();
  });

  it("markLost closes the gate until restart: later passing proofs do not reopen it", async () => {
    const { monitor, world } = monitorWith({});
    const stop = await monitor.start();
    monitor.markLost("a command ran without the agentsh sandbox");
    expect(monitor.state()).toMatchObject({
      mode: "degraded",
      checks: { "sandbox applied to every command": false },
    });
    world.reachable = false;
    await vi.advanceTimersByTimeAsync(1_000);
    world.reachable = true;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(world.proofs).toBe(2);
    expect(monitor.gate()).toMatch(/without the agentsh sandbox/);
    stop();
  });

  it("stop() ends the watch: no more probes or proofs", async () => {
    const { monitor, world } = monitorWith({});
    const stop = await monitor.start();
    stop();
    world.reachable = false;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(monitor.state().mode).toBe("enforced");
  });

  it("scheduled self-test: a canary that stops passing degrades it; a passing round recovers", async () => {
    const { monitor, world } = monitorWith({ reverifyMs: 60_000 });
    const stop = await monitor.start();
    const bootProof = monitor.lastProof();
    expect(bootProof?.checks).toEqual(PASSED.checks);
    expect(monitor.gate()).toBeNull();

    // Enforcement breaks between rounds: nothing changes until the next round runs.
    world.proof = FAILED;
    await vi.advanceTimersByTimeAsync(59_000);
    expect(monitor.state().mode).toBe("enforced");
    await vi.advanceTimersByTimeAsync(1_000);
    expect(monitor.state().mode).toBe("degraded");
    expect(monitor.gate()).toMatch(/failed: canary: sudo denied/);
    expect(Date.parse(monitor.lastProof()?.at ?? "")).toBeGreaterThan(
      Date.parse(bootProof?.at ?? ""),
    );

    world.proof = PASSED;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(monitor.state().mode).toBe("enforced");
    expect(monitor.gate()).toBeNull();
    stop();
    const proofs = world.proofs;
    await vi.advanceTimersByTimeAsync(300_000);
    expect(world.proofs).toBe(proofs);
  });

  it("scheduled self-test skips rounds while agentsh is away (the watcher handles that)", async () => {
    const { monitor, world } = monitorWith({ reverifyMs: 60_000 });
    const stop = await monitor.start();
    world.reachable = false;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(monitor.state().mode).toBe("unverified");
    expect(world.proofs).toBe(1);
    stop();
  });

  it("concurrent verify() calls share one round of canaries", async () => {
    const { monitor, world } = monitorWith({});
    await Promise.all([monitor.verify(), monitor.verify(), monitor.verify()]);
    expect(world.proofs).toBe(1);
  });
});
