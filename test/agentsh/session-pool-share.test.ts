import { describe, expect, it } from "vitest";
import { type SessionLease, SessionPool } from "../../src/agentsh/session-pool.js";

/** Tenants' slot shares (`cap`): one tenant's flood cannot hold every slot. */
describe("SessionPool: a tenant's share of the slots", () => {
  it("keeps a flooding owner to its cap and lets another owner in at once", async () => {
    const pool = new SessionPool("s", 4, 200);
    const flood = Array.from({ length: 100 }, () => pool.acquire(undefined, "tenant-a", 2));
    await Promise.resolve();
    expect(pool.stats).toEqual({ slots: 4, inFlight: 2, queued: 98 });
    // tenant-b is not behind tenant-a's 98 waiters: a slot is free and b is within its cap.
    const b = await pool.acquire(undefined, "tenant-b", 2);
    expect(pool.stats.inFlight).toBe(3);
    b.release();
    // Everything drains, never more than 2 of a's at once.
    let running = 0;
    let most = 0;
    await Promise.all(
      flood.map(async (waiting) => {
        const lease: SessionLease = await waiting;
        running += 1;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 1));
        running -= 1;
        lease.release();
      }),
    );
    expect(most).toBe(2);
    expect(pool.stats).toEqual({ slots: 4, inFlight: 0, queued: 0 });
  });

  it("passes over a waiter held back by its cap and serves the next owner's", async () => {
    const pool = new SessionPool("s", 2, 10);
    const a1 = await pool.acquire(undefined, "tenant-a", 1);
    const c1 = await pool.acquire(undefined, "tenant-c");
    const a2 = pool.acquire(undefined, "tenant-a", 1); // over a's cap: waits
    const b1 = pool.acquire(undefined, "tenant-b", 1); // waits for a slot
    c1.release();
    // The free slot goes to b (a is at its cap), not to a's earlier request.
    const lease = await b1;
    expect(pool.stats).toEqual({ slots: 2, inFlight: 2, queued: 1 });
    a1.release();
    (await a2).release();
    lease.release();
    expect(pool.stats.inFlight).toBe(0);
  });

  it("without caps stays first come, first served", async () => {
    const pool = new SessionPool("s", 1, 10);
    const first = await pool.acquire(undefined, "x");
    const order: string[] = [];
    const waiting = ["y", "x", "z"].map((owner) =>
      pool.acquire(undefined, owner).then((lease) => {
        order.push(owner);
        lease.release();
      }),
    );
    first.release();
    await Promise.all(waiting);
    expect(order).toEqual(["y", "x", "z"]);
  });
});
