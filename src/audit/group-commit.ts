/**
 * Group commit: every `add` resolves once the batch that carried its item is written. A batch
 * starts on the next turn of the event loop (so everything added in this turn shares it), and
 * items added while a batch is being written wait for the next one: under load one commit
 * (one fsync) serves many commands, and an idle service still writes at once.
 */
export interface GroupCommit<T> {
  add(item: T): Promise<void>;
  /** Items not yet written (queued or in the batch being written). */
  pending(): number;
  /** Resolves when everything added so far is written (or failed). */
  drain(): Promise<void>;
}

export function createGroupCommit<T>(
  write: (batch: T[]) => Promise<void> | void,
  maxBatch: number,
): GroupCommit<T> {
  let queue: Array<{ item: T; resolve: () => void; reject: (error: unknown) => void }> = [];
  let inBatch = 0;
  let running: Promise<void> | null = null;

  const run = async () => {
    // Yield once: the items added in the current turn of the event loop join this batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (queue.length > 0) {
      const batch = queue.slice(0, maxBatch);
      queue = queue.slice(batch.length);
      inBatch = batch.length;
      try {
        await write(batch.map((b) => b.item));
        for (const b of batch) b.resolve();
      } catch (error) {
        for (const b of batch) b.reject(error);
      } finally {
        inBatch = 0;
      }
    }
    running = null;
  };

  return {
    add(item) {
      const done = new Promise<void>((resolve, reject) => queue.push({ item, resolve, reject }));
      running ??= run();
      return done;
    },
    pending: () => queue.length + inBatch,
    drain: async () => {
      while (running) await running;
    },
  };
}
