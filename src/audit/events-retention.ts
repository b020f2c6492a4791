import { existsSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";

/**
 * Retention for agentsh's event database. agentsh v0.16.9 never deletes from it: its SQLite
 * store (internal/store/sqlite) only inserts, the policy's `audit.retention_days` and
 * `audit.rotation.max_age_days` are parsed but never read, and `audit.rotation` applies only to
 * the JSONL output. So the service trims it, by age and by size.
 *
 * agentsh writes through one connection opened without a busy timeout (modernc sqlite, no
 * `_pragma`): a batch that meets our write lock fails and its events are lost. So every delete
 * is a short transaction of `CHUNK_ROWS` rows, and the job runs only while no command is in
 * flight (the caller's `idle`), when agentsh has nothing to write.
 *
 * `node:sqlite` (built into Node >= 22.13, SQLite 3.5x): no native addon to build in the image,
 * and WAL-aware like agentsh's own driver. The file is not VACUUMed (that would lock agentsh out
 * for the whole rewrite); freed pages are reused, so the file stops growing at about `maxBytes`.
 */

export interface EventsRetentionSettings {
  /** Events older than this go. */
  maxAgeMs: number;
  /** Bytes the database's live pages may take; beyond it the oldest events go. */
  maxBytes: number;
}

export interface PruneReport {
  deletedEvents: number;
  deletedOutputs: number;
  /** Live (non-free) bytes before and after. */
  bytesBefore: number;
  bytesAfter: number;
}

const CHUNK_ROWS = 500;
/** How long one statement may wait for agentsh's write lock (this blocks the event loop). */
const BUSY_TIMEOUT_MS = 50;
/** Trim to this fraction of `maxBytes` so the next run does not start over at once. */
const SIZE_TARGET = 0.9;

/** Deletes what is beyond the settings; null when the database or agentsh's tables don't exist. */
export function pruneAgentshEvents(
  dbPath: string,
  settings: EventsRetentionSettings,
  now: number = Date.now(),
): PruneReport | null {
  if (!existsSync(dbPath)) return null;
  const db = new DatabaseSync(dbPath);
  try {
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    const tables = new Set(
      db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .all()
        .map((row) => String(row.name)),
    );
    if (!tables.has("events")) return null;
    const hasOutputs = tables.has("command_outputs");
    const bytesBefore = liveBytes(db);

    const cutoffNs = BigInt(now - settings.maxAgeMs) * 1_000_000n;
    let deletedEvents = deleteInChunks(
      db,
      "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE ts_unix_ns < ? LIMIT ?)",
      cutoffNs,
    );
    let deletedOutputs = hasOutputs
      ? deleteInChunks(
          db,
          "DELETE FROM command_outputs WHERE rowid IN (SELECT rowid FROM command_outputs WHERE created_ts_unix_ns < ? LIMIT ?)",
          cutoffNs,
        )
      : 0;

    let bytes = liveBytes(db);
    if (bytes > settings.maxBytes) {
      // Rows are inserted in time order, so the lowest rowids are the oldest events. Estimate
      // how many must go from the average row size, delete them, and repeat until it fits.
      for (let round = 0; round < 20 && bytes > settings.maxBytes; round++) {
        const rows = Number(db.prepare("SELECT count(*) AS n FROM events").get()?.n ?? 0);
        if (rows === 0) break;
        const excess = bytes - settings.maxBytes * SIZE_TARGET;
        const toDelete = Math.min(rows, Math.max(CHUNK_ROWS, Math.ceil((rows * excess) / bytes)));
        const oldestKept = deleteOldest(db, toDelete);
        deletedEvents += toDelete;
        if (hasOutputs && oldestKept !== null) {
          deletedOutputs += deleteInChunks(
            db,
            "DELETE FROM command_outputs WHERE rowid IN (SELECT rowid FROM command_outputs WHERE created_ts_unix_ns < ? LIMIT ?)",
            oldestKept,
          );
        }
        bytes = liveBytes(db);
      }
    }
    // Hand the deleted pages back through the WAL without waiting on agentsh.
    db.exec("PRAGMA wal_checkpoint(PASSIVE)");
    return { deletedEvents, deletedOutputs, bytesBefore, bytesAfter: liveBytes(db) };
  } finally {
    db.close();
  }
}

/** Runs `sql` (a chunked DELETE taking the bound and a limit) until it deletes fewer rows. */
function deleteInChunks(db: DatabaseSync, sql: string, bound: bigint): number {
  const statement = db.prepare(sql);
  let total = 0;
  for (;;) {
    const { changes } = statement.run(bound, CHUNK_ROWS);
    total += Number(changes);
    if (Number(changes) < CHUNK_ROWS) return total;
  }
}

/** Deletes the `count` oldest events; returns the timestamp of the oldest one left. */
function deleteOldest(db: DatabaseSync, count: number): bigint | null {
  const statement = db.prepare(
    "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events ORDER BY rowid LIMIT ?)",
  );
  for (let left = count; left > 0; left -= CHUNK_ROWS) {
    statement.run(Math.min(left, CHUNK_ROWS));
  }
  const select = db.prepare("SELECT ts_unix_ns AS ts FROM events ORDER BY rowid LIMIT 1");
  // Nanoseconds since 1970 exceed Number.MAX_SAFE_INTEGER.
  select.setReadBigInts(true);
  const oldest = select.get() as { ts?: number | bigint } | undefined;
  return oldest?.ts === undefined ? null : BigInt(oldest.ts);
}

function liveBytes(db: DatabaseSync): number {
  const pragma = (name: string) => {
    const row = db.prepare(`PRAGMA ${name}`).get() as Record<string, unknown> | undefined;
    return Number(row ? Object.values(row)[0] : 0);
  };
  return (pragma("page_count") - pragma("freelist_count")) * pragma("page_size");
}

export interface RetentionJobOptions {
  /** agentsh's event database; null when unknown (only the audit log is trimmed then). */
  dbPath: string | null;
  settings: EventsRetentionSettings;
  intervalMs: number;
  /** Whether no command is in flight: agentsh's writer must not meet our lock. */
  idle: () => boolean;
  /** Trims the service's own audit trail by age and count; resolves to how many entries went. */
  pruneAuditLog: () => Promise<number>;
  onReport: (report: PruneReport & { auditDeleted: number }) => void;
  onError: (error: Error) => void;
}

/** Runs the retention every `intervalMs` (first run at once), postponed while commands run. */
export function startRetentionJob(options: RetentionJobOptions): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const IDLE_RETRY_MS = 2_000;
  let waitedMs = 0;

  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => void tick(), ms);
    timer.unref();
  };
  const tick = async () => {
    // Waits for a quiet moment, but not forever: a busy service still gets trimmed.
    if (!options.idle() && waitedMs < options.intervalMs) {
      waitedMs += IDLE_RETRY_MS;
      schedule(IDLE_RETRY_MS);
      return;
    }
    waitedMs = 0;
    try {
      const auditDeleted = await options.pruneAuditLog();
      const report = options.dbPath ? pruneAgentshEvents(options.dbPath, options.settings) : null;
      options.onReport({
        deletedEvents: 0,
        deletedOutputs: 0,
        bytesBefore: 0,
        bytesAfter: 0,
        ...report,
        auditDeleted,
      });
    } catch (error) {
      // SQLITE_BUSY included: the next run tries again.
      options.onError(error instanceof Error ? error : new Error(String(error)));
    }
    schedule(options.intervalMs);
  };
  schedule(0);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
