/**
 * A fixed set of pre-created agentsh sessions, one per concurrent command. agentsh serializes
 * the commands of one session, so callers must not share one; a caller holds a session for the
 * duration of a command. Callers beyond the slots wait in a FIFO queue, bounded in length and in
 * time: beyond the bound they are refused at once, and a waiter whose time runs out (or whose
 * caller goes away) leaves the queue.
 *
 * With `oneOwnerAtATime`, commands of different owners (API keys, tenants) never run at the same
 * time: where the kernel cannot keep concurrent commands from signalling each other (every
 * command uid 0, no Landlock signal scope below ABI 6), no other owner's process is alive to
 * reach. Owners take turns: while another owner waits, the running owner starts nothing new,
 * and once its running commands end the turn passes to the owner waiting longest (not the one
 * whose turn just ended). So a flood of one owner delays another by at most the commands already
 * running, never by the flood's queue.
 */

export interface SessionLease {
  sessionId: string;
  /** 0-based index of the session's slot (each slot runs as its own uid). */
  slot: number;
  release(): void;
}

/** No slot within the queue's bounds: the queue was full, or the wait ran out. */
export class PoolSaturatedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PoolSaturatedError";
  }
}

export class WaitCanceledError extends Error {
  constructor() {
    super("the request was canceled while waiting for a command slot");
    this.name = "WaitCanceledError";
  }
}

interface Waiter {
  owner: string;
  /** The most slots this owner may hold at once (a tenant's share); undefined: no cap. */
  cap: number | undefined;
  resolve: (lease: SessionLease) => void;
  reject: (error: Error) => void;
}

/** Commands the service runs itself (boot canaries) count as one owner of their own. */
const SERVICE_OWNER = "(service)";

export class SessionPool {
  readonly sessionIds: readonly string[];
  private readonly free: string[];
  private readonly waiters: Waiter[] = [];
  /** The owner of the commands running now (with oneOwnerAtATime): whose turn it is. */
  private runningOwner: string | null = null;
  /** Slots each owner holds now. */
  private readonly held = new Map<string, number>();

  constructor(
    prefix: string,
    size: number,
    private readonly maxQueued: number,
    /** How long a caller may wait for a slot before it is refused. */
    private readonly maxWaitMs = 30_000,
    private readonly oneOwnerAtATime = false,
  ) {
    this.sessionIds = Array.from({ length: size }, (_, i) => `${prefix}-${i + 1}`);
    this.free = [...this.sessionIds];
  }

  get stats() {
    return {
      slots: this.sessionIds.length,
      inFlight: this.sessionIds.length - this.free.length,
      queued: this.waiters.length,
    };
  }

  /**
   * A slot for `owner`. With a `cap` (a tenant's share of the slots) the owner never holds more
   * than that many at once, and a free slot goes to the next waiter that is within its cap, so
   * one owner's flood leaves the other slots to the others; without caps, first come, first
   * served.
   */
  acquire(signal?: AbortSignal, owner = SERVICE_OWNER, cap?: number): Promise<SessionLease> {
    if (signal?.aborted) return Promise.reject(new WaitCanceledError());
    // With a cap, only this owner's own earlier requests are ahead of it: the others waiting
    // are held back by their own caps (a free slot is never left while someone may take it).
    const nobodyAhead =
      cap !== undefined && !this.oneOwnerAtATime
        ? !this.waiters.some((w) => w.owner === owner)
        : this.waiters.length === 0;
    if (nobodyAhead && this.admits(owner, cap)) {
      const sessionId = this.free.pop();
      if (sessionId !== undefined) return Promise.resolve(this.lease(sessionId, owner));
    }
    if (this.waiters.length >= this.maxQueued) {
      return Promise.reject(
        new PoolSaturatedError(
          `all ${this.sessionIds.length} command slots are busy and the queue is full (${this.waiters.length} waiting)`,
        ),
      );
    }
    return new Promise<SessionLease>((resolve, reject) => {
      const leave = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const index = this.waiters.indexOf(waiter);
        if (index !== -1) this.waiters.splice(index, 1);
      };
      const waiter: Waiter = {
        owner,
        cap,
        resolve: (lease) => {
          leave();
          resolve(lease);
        },
        reject,
      };
      const onAbort = () => {
        leave();
        reject(new WaitCanceledError());
      };
      const timer = setTimeout(() => {
        leave();
        reject(
          new PoolSaturatedError(
            `no command slot became free within ${this.maxWaitMs} ms (${this.sessionIds.length} slots busy)`,
          ),
        );
      }, this.maxWaitMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Whether a command of `owner` may start now (a slot aside). */
  private admits(owner: string, cap: number | undefined): boolean {
    if (cap !== undefined && (this.held.get(owner) ?? 0) >= cap) return false;
    if (!this.oneOwnerAtATime || this.runningOwner === null) return true;
    // Within its turn, as long as no other owner is waiting for the next one.
    return this.runningOwner === owner && !this.waiters.some((w) => w.owner !== owner);
  }

  /** oneOwnerAtATime, all slots free: the next turn, to the owner waiting longest but `previous`. */
  private startTurn(previous: string): void {
    const turn = (this.waiters.find((w) => w.owner !== previous) ?? this.waiters[0])?.owner;
    if (turn === undefined) return;
    for (const waiter of this.waiters.filter((w) => w.owner === turn)) {
      const slot = this.free.pop();
      if (slot === undefined) break;
      if (waiter.cap !== undefined && (this.held.get(turn) ?? 0) >= waiter.cap) {
        this.free.push(slot);
        break;
      }
      waiter.resolve(this.lease(slot, turn));
    }
  }

  private lease(sessionId: string, owner: string): SessionLease {
    let released = false;
    this.runningOwner = owner;
    this.held.set(owner, (this.held.get(owner) ?? 0) + 1);
    return {
      sessionId,
      slot: this.sessionIds.indexOf(sessionId),
      release: () => {
        if (released) return;
        released = true;
        this.free.push(sessionId);
        const holds = (this.held.get(owner) ?? 1) - 1;
        if (holds === 0) this.held.delete(owner);
        else this.held.set(owner, holds);
        if (this.oneOwnerAtATime && this.free.length === this.sessionIds.length) {
          this.runningOwner = null;
          this.startTurn(owner);
          return;
        }
        // First come, first served: admit from the head while it may start; a waiter held
        // back only by its owner's cap is passed over (the next owner's request goes first).
        for (let i = 0; i < this.waiters.length && this.free.length > 0; ) {
          const next = this.waiters[i];
          if (!next) break;
          if (this.admits(next.owner, next.cap)) {
            const slot = this.free.pop();
            if (slot === undefined) break;
            next.resolve(this.lease(slot, next.owner));
            continue; // resolve() removed it from the queue
          }
          const overCap = next.cap !== undefined && (this.held.get(next.owner) ?? 0) >= next.cap;
          if (!overCap || this.oneOwnerAtATime) break;
          i += 1;
        }
      },
    };
  }
}
