import { randomBytes } from "node:crypto";
import type { ServiceMetrics } from "../metrics/service-metrics.js";
import type { AuditEntry, AuditStore } from "./audit-log.js";

/** What the runner knows of an answered command; the trail adds id, time and instance. */
export type AnsweredCommand = Omit<AuditEntry, "id" | "time" | "instance">;

/**
 * Where every answered command goes, once: the audit store (durable before the answer) and the
 * metrics (counted once the entry is stored, so a scrape never counts what the trail lacks).
 */
export interface CommandTrail {
  /** Resolves when the entry is durable; rejects (AuditWriteError) when it could not be. */
  record(command: AnsweredCommand, startedAt: number): Promise<void>;
}

export function createCommandTrail(options: {
  store: Pick<AuditStore, "append">;
  metrics?: Pick<ServiceMetrics, "commandAnswered" | "auditWrite">;
  instance: string;
  now?: () => number;
}): CommandTrail {
  const now = options.now ?? Date.now;
  const nextId = createIdSource();
  return {
    async record(command, startedAt) {
      const at = now();
      const entry: AuditEntry = {
        id: nextId(at),
        time: new Date(at).toISOString(),
        instance: options.instance,
        ...command,
      };
      const writing = performance.now();
      await options.store.append(entry);
      options.metrics?.auditWrite((performance.now() - writing) / 1000);
      options.metrics?.commandAnswered(entry, Math.max(0, at - startedAt) / 1000);
    },
  };
}

/**
 * UUIDv7 ids (RFC 9562): the time in the first 48 bits, then a counter (method 1) so that ids of
 * one instance sort in the order they were made, also within one millisecond. Pages are ordered
 * by (time, id): entries of the same millisecond come newest first too.
 */
export function createIdSource(): (atMs: number) => string {
  let lastMs = -1;
  let counter = 0;
  return (atMs) => {
    let ms = Math.max(atMs, lastMs);
    counter = ms === lastMs ? counter + 1 : randomBytes(2).readUInt16BE() & 0x3ff;
    if (counter > 0xfff) {
      // Thousands in one millisecond: borrow the next one (the id's time runs a little ahead).
      ms += 1;
      counter = 0;
    }
    lastMs = ms;
    const hex =
      ms.toString(16).padStart(12, "0") +
      (0x7000 | counter).toString(16) +
      ((randomBytes(2).readUInt16BE() & 0x3fff) | 0x8000).toString(16) +
      randomBytes(6).toString("hex");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  };
}
