/**
 * A fixed set of pre-created agentsh sessions, one per concurrent command. agentsh serializes
 * the commands of one session, so callers must not share one; a caller holds a session for the
 * duration of a command. Waiters beyond the queue bound are refused at once.
 */

export interface SessionLease {
  sessionId: string;
  /** 0-based index of the session's slot (each slot runs as its own uid). */
  slot: number;
  release(): void;
}

export class PoolSaturatedError extends Error {
  constructor(
    readonly inFlight: number,
    readonly queued: number,
  ) {
    super(`all ${inFlight} command slots are busy and ${queued} requests are already waiting`);
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
      return Promise.reject(new PoolSaturatedError(this.sessionIds.length, this.waiters.length));
    }
    return new Promise<SessionLease>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (lease) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(lease);
        },
        reject,
      };
      const onAbort = () => {
        const index = this.waiters.indexOf(waiter);
        if (index !== -1) this.waiters.splice(index, 1);
        reject(new WaitCanceledError());
      };
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
