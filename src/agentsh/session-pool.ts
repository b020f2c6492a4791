/**
 * A fixed set of pre-created agentsh sessions, one per concurrent command. agentsh serializes
 * the commands of one session, so callers must not share one; a caller holds a session for the
 * duration of a command. Callers beyond the slots wait in a FIFO queue, bounded in length and in
 * time: beyond the bound they are refused at once, and a waiter whose time runs out (or whose
 * caller goes away) leaves the queue.
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
  resolve: (lease: SessionLease) => void;
  reject: (error: Error) => void;
}

export class SessionPool {
  readonly sessionIds: readonly string[];
  private readonly free: string[];
  private readonly waiters: Waiter[] = [];

  constructor(
    prefix: string,
    size: number,
    private readonly maxQueued: number,
    /** How long a caller may wait for a slot before it is refused. */
    private readonly maxWaitMs = 30_000,
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

  acquire(signal?: AbortSignal): Promise<SessionLease> {
    if (signal?.aborted) return Promise.reject(new WaitCanceledError());
    const sessionId = this.free.pop();
    if (sessionId !== undefined) return Promise.resolve(this.lease(sessionId));
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

  private lease(sessionId: string): SessionLease {
    let released = false;
    return {
      sessionId,
      slot: this.sessionIds.indexOf(sessionId),
      release: () => {
        if (released) return;
        released = true;
        const next = this.waiters.shift();
        if (next) next.resolve(this.lease(sessionId));
        else this.free.push(sessionId);
      },
    };
  }
}
