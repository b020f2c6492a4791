import { randomBytes } from "node:crypto";
import type { Outcome } from "../executor.js";
import type { Refusal } from "../run-command.js";

/**
 * The service's own record of every command it was asked to run: which request sent it, what
 * became of it and which rule decided. agentsh's event store has the rule-level events but
 * neither our request ids nor our outcomes (refusals never reach agentsh at all), so the runner
 * writes one entry per command here. Bounded twice: a ring buffer of `maxEntries` and `maxAgeMs`.
 * In memory only: the same entry goes to the JSON log (`audit` lines) for long-term retention.
 */

export type AuditOutcome = Outcome | Refusal["outcome"];

export const AUDIT_OUTCOMES = [
  "ok",
  "failed",
  "blocked",
  "timed_out",
  "degraded",
  "busy",
  "canceled",
  "unavailable",
  "unenforced",
] as const satisfies readonly AuditOutcome[];

export interface AuditEntry {
  /** When the outcome was known (ISO 8601). */
  time: string;
  requestId: string | null;
  /** The command as sent, after the bundle's DLP redaction. */
  command: string;
  outcome: AuditOutcome;
  /** The rule that blocked the command; null when none did. */
  rule: string | null;
  /** Who decided: agentsh itself or the launcher (agentsh-launch); null when nothing was denied. */
  layer: "agentsh" | "launcher" | "limit" | null;
  /** command, file, network or other; null when nothing was denied. */
  kind: string | null;
  operation: string | null;
  target: string | null;
  exitCode: number | null;
  durationMs: number | null;
  /** The agentsh session it ran in (agentsh's `events query --session`); null when not run. */
  sessionId: string | null;
  /** agentsh's command id (`command_id` in its events); null when not known. */
  commandId: string | null;
}

export interface AuditFilter {
  outcome?: AuditOutcome;
  rule?: string;
  requestId?: string;
  /** Inclusive lower bound on `time`. */
  since?: Date;
  /** Exclusive upper bound on `time`. */
  until?: Date;
  /** From a previous page's `nextCursor`. */
  cursor?: string;
  limit: number;
}

export interface AuditPage {
  entries: AuditEntry[];
  /** Pass as `cursor` for the next (older) page; null when there is none. */
  nextCursor: string | null;
}

/** A cursor that this log did not issue (garbled, or from before a restart). */
export class InvalidCursorError extends Error {
  constructor() {
    super("The cursor is not valid (it may predate a restart of the service).");
    this.name = "InvalidCursorError";
  }
}

export interface AuditLog {
  record(entry: AuditEntry): void;
  /** Newest first. Throws InvalidCursorError for a cursor it did not issue. */
  query(filter: AuditFilter): AuditPage;
  /** Drops entries older than the age limit; returns how many went. */
  prune(now?: number): number;
  size(): number;
}

export interface AuditLogOptions {
  maxEntries: number;
  maxAgeMs: number;
  now?: () => number;
}

export function createAuditLog(options: AuditLogOptions): AuditLog {
  const now = options.now ?? Date.now;
  const capacity = options.maxEntries;
  const slots: Array<{ seq: number; at: number; entry: AuditEntry } | undefined> = new Array(
    capacity,
  );
  // Sequence numbers are 1-based; valid entries are seq in [oldest, next).
  let next = 1;
  let oldest = 1;
  // Cursors name the instance that issued them: a restart restarts the sequence.
  const epoch = randomBytes(4).toString("hex");

  const slot = (seq: number) => slots[seq % capacity];

  const prune = (at = now()) => {
    const cutoff = at - options.maxAgeMs;
    const before = oldest;
    oldest = Math.max(oldest, next - capacity);
    for (;;) {
      const held = oldest < next ? slot(oldest) : undefined;
      if (!held || held.at >= cutoff) break;
      slots[oldest % capacity] = undefined;
      oldest += 1;
    }
    return Math.max(0, oldest - before);
  };

  return {
    record(entry) {
      const seq = next++;
      slots[seq % capacity] = { seq, at: Date.parse(entry.time), entry };
      if (next - oldest > capacity) oldest = next - capacity;
    },

    query(filter) {
      prune();
      let start = next - 1;
      if (filter.cursor !== undefined) start = decodeCursor(filter.cursor, epoch) - 1;
      const since = filter.since?.getTime();
      const until = filter.until?.getTime();
      const entries: AuditEntry[] = [];
      let lastSeq = 0;
      for (let seq = Math.min(start, next - 1); seq >= oldest; seq--) {
        const held = slot(seq);
        if (!held || held.seq !== seq) continue;
        if (since !== undefined && held.at < since) break;
        if (until !== undefined && held.at >= until) continue;
        const e = held.entry;
        if (filter.outcome !== undefined && e.outcome !== filter.outcome) continue;
        if (filter.rule !== undefined && e.rule !== filter.rule) continue;
        if (filter.requestId !== undefined && e.requestId !== filter.requestId) continue;
        if (entries.length === filter.limit) {
          // One more match exists: the next page starts below the last entry returned.
          return { entries, nextCursor: encodeCursor(epoch, lastSeq) };
        }
        entries.push(e);
        lastSeq = seq;
      }
      return { entries, nextCursor: null };
    },

    prune,
    size: () => next - oldest,
  };
}

function encodeCursor(epoch: string, beforeSeq: number): string {
  return Buffer.from(`${epoch}:${beforeSeq}`, "utf8").toString("base64url");
}

/** The sequence number the page starts below. */
function decodeCursor(cursor: string, epoch: string): number {
  const match = /^([0-9a-f]{8}):([1-9]\d{0,15})$/.exec(
    Buffer.from(cursor, "base64url").toString("utf8"),
  );
  if (!match || match[1] !== epoch) throw new InvalidCursorError();
  return Number(match[2]);
}
