import { describe, expect, it } from "vitest";
import {
  PoolSaturatedError,
  type SessionLease,
  SessionPool,
  WaitCanceledError,
} from "../../src/agentsh/session-pool.js";

describe("SessionPool", () => {
  it("hands each concurrent caller its own session", async () => {
    const pool = new SessionPool("s", 3, 0);
    const leases = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
    expect(new Set(leases.map((l) => l.sessionId)).size).toBe(3);
    expect(pool.stats).toEqual({ slots: 3, inFlight: 3, queued: 0 });
  });

  it("queues up to the bound, then refuses at once", async () => {
    const pool = new SessionPool("s", 1, 1);
    const first = await pool.acquire();
    const waiting = pool.acquire();
    await expect(pool.acquire()).rejects.toBeInstanceOf(PoolSaturatedError);
    first.release();
    const second = await waiting;
    expect(second.sessionId).toBe(first.sessionId);
    second.release();
    expect(pool.stats).toEqual({ slots: 1, inFlight: 0, queued: 0 });
  });

  it("drops a waiter whose caller went away", async () => {
    const pool = new SessionPool("s", 1, 5);
    const held = await pool.acquire();
    const controller = new AbortController();
    const waiting = pool.acquire(controller.signal);
    controller.abort();
    await expect(waiting).rejects.toBeInstanceOf(WaitCanceledError);
    expect(pool.stats.queued).toBe(0);
    held.release();
    expect(pool.stats.inFlight).toBe(0);
  });

  it("ignores a double release", async () => {
    const pool = new SessionPool("s", 2, 0);
    const lease = await pool.acquire();
    lease.release();
    lease.release();
    expect(pool.stats).toEqual({ slots: 2, inFlight: 0, queued: 0 });
  });

  it("serves waiters first come, first served", async () => {
    const pool = new SessionPool("s", 1, 3);
    const held = await pool.acquire();
    const order: string[] = [];
    const waiting = ["a", "b", "c"].map((name) =>
      pool.acquire().then((lease) => {
        order.push(name);
        lease.release();
      }),
    );
    held.release();
    await Promise.all(waiting);
    expect(order).toEqual(["a", "b", "c"]);
  });

  it("refuses a waiter whose wait runs out, and takes it out of the queue", async () => {
    const pool = new SessionPool("s", 1, 5, 50);
    const held = await pool.acquire();
    const started = Date.now();
    await expect(pool.acquire()).rejects.toThrow(/no command slot became free within 50 ms/);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(pool.stats.queued).toBe(0);
    held.release();
    expect(pool.stats.inFlight).toBe(0);
  });

  describe("one API key at a time (where the kernel cannot keep concurrent commands apart)", () => {
    it("runs one key's commands side by side, and another key's only when they are done", async () => {
      const pool = new SessionPool("s", 3, 10, 30_000, true);
      const a1 = await pool.acquire(undefined, "key-a");
      const a2 = await pool.acquire(undefined, "key-a");
      let bStarted = false;
      const b = pool.acquire(undefined, "key-b").then((lease) => {
        bStarted = true;
        return lease;
      });
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(bStarted).toBe(false); // a slot is free, but key a is running
      a1.release();
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(bStarted).toBe(false);
      a2.release();
      const bLease = await b;
      expect(pool.stats).toEqual({ slots: 3, inFlight: 1, queued: 0 });
      bLease.release();
    });

    it("serves first come first served: a key behind another waits, even when its own key runs", async () => {
      const pool = new SessionPool("s", 2, 10, 30_000, true);
      const a1 = await pool.acquire(undefined, "key-a");
      const order: string[] = [];
      const noted = (name: string) => (lease: SessionLease) => {
        order.push(name);
        return lease;
      };
      const b = pool.acquire(undefined, "key-b").then(noted("b"));
      const a2 = pool.acquire(undefined, "key-a").then(noted("a2"));
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(order).toEqual([]); // a2 queues behind b although key a is running
      a1.release();
      (await b).release();
      (await a2).release();
      expect(order).toEqual(["b", "a2"]);
    });

    it("takes turns: a flood of one key delays another by the commands running, not by its queue", async () => {
      const pool = new SessionPool("s", 4, 200, 30_000, true);
      const order: string[] = [];
      const flood = Array.from({ length: 50 }, (_, i) =>
        pool.acquire(undefined, "key-a", 2).then((lease) => {
          order.push(`a${i}`);
          return lease;
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(order).toEqual(["a0", "a1"]); // key a's share: 2 of 4 slots
      const b = pool.acquire(undefined, "key-b").then((lease) => {
        order.push("b");
        return lease;
      });
      const running = await Promise.all(flood.slice(0, 2));
      running[0]?.release();
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(order).toEqual(["a0", "a1"]); // key b waits: nothing new of key a starts meanwhile
      running[1]?.release();
      (await b).release();
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(order.slice(0, 5)).toEqual(["a0", "a1", "b", "a2", "a3"]);
      for (const lease of await Promise.all(flood.slice(2, 4))) lease.release();
      // With nobody else waiting, key a's turn goes on (two at a time, its share).
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(order.slice(5)).toEqual(["a4", "a5"]);
      for (const lease of flood.slice(4)) (await lease).release();
      expect(pool.stats).toEqual({ slots: 4, inFlight: 0, queued: 0 });
    });

    it("without it, keys share the slots", async () => {
      const pool = new SessionPool("s", 2, 0);
      const leases = await Promise.all([
        pool.acquire(undefined, "key-a"),
        pool.acquire(undefined, "key-b"),
      ]);
      expect(pool.stats.inFlight).toBe(2);
      for (const lease of leases) lease.release();
    });
  });
});
