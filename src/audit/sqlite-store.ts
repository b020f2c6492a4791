import { mkdirSync } from "node:fs";
import path from "node:path";
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import {
  AUDIT_COLUMNS,
  type AuditStore,
  AuditUnavailableError,
  AuditWriteError,
  auditQuerySql,
  pageOf,
  rowOf,
} from "./audit-log.js";
import { createGroupCommit } from "./group-commit.js";

/**
 * The embedded audit store: SQLite (Node's built-in `node:sqlite`, no native addon) in the
 * state directory, which survives restarts and needs nothing set up. WAL with
 * `synchronous=FULL`: a commit is fsynced before `append` resolves, so an answered command's
 * entry survives a kill -9 and a power cut. One process owns the file (scripts/boot locks the
 * state dir); more instances share PostgreSQL instead.
 *
 * node:sqlite is synchronous: a batch's commit (one fsync, about 0.25 ms here) holds the event
 * loop, which is why appends are grouped and retention deletes in small chunks.
 */

/** Schema versions, applied in order at open (PRAGMA user_version says how many are done). */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE audit_entries (
     id TEXT PRIMARY KEY,
     at_ms INTEGER NOT NULL,
     instance TEXT NOT NULL,
     caller TEXT,
     session TEXT,
     request_id TEXT,
     command TEXT NOT NULL,
     outcome TEXT NOT NULL,
     error_code TEXT,
     rule TEXT,
     layer TEXT,
     kind TEXT,
     operation TEXT,
     target TEXT,
     exit_code INTEGER,
     duration_ms REAL,
     agentsh_session TEXT,
     command_id TEXT
   ) WITHOUT ROWID;
   CREATE INDEX audit_entries_time ON audit_entries (at_ms, id);
   CREATE INDEX audit_entries_request ON audit_entries (request_id);
   CREATE INDEX audit_entries_outcome ON audit_entries (outcome, at_ms);
   CREATE TRIGGER audit_entries_append_only BEFORE UPDATE ON audit_entries
   BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;`,
];

const MAX_BATCH = 500;
const CHUNK_ROWS = 1000;

export function openSqliteAuditStore(file: string): AuditStore {
  if (file !== ":memory:") mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const db = new DatabaseSync(file);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = FULL");
  db.exec("PRAGMA busy_timeout = 2000");
  // Appends touch a few pages and queries read one page of entries: a small page cache (512 KiB,
  // SQLite's default is 2 MiB) keeps the service's memory flat (the e2e load test bounds it).
  db.exec("PRAGMA cache_size = -512");
  migrate(db);

  const insert = db.prepare(
    `INSERT INTO audit_entries (${AUDIT_COLUMNS.join(", ")}) VALUES (${AUDIT_COLUMNS.map(() => "?").join(", ")}) ON CONFLICT (id) DO NOTHING`,
  );
  const writes = createGroupCommit<SQLInputValue[]>((batch) => {
    try {
      db.exec("BEGIN IMMEDIATE");
      try {
        for (const row of batch) insert.run(...row);
        db.exec("COMMIT");
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
    } catch (error) {
      throw new AuditWriteError(error);
    }
  }, MAX_BATCH);

  let closed = false;
  return {
    backend: "sqlite",
    append: (entry) => {
      if (closed) return Promise.reject(new AuditWriteError("the audit store is closed"));
      return writes.add(rowOf(entry));
    },
    async query(filter) {
      const { sql, params } = auditQuerySql(filter, () => "?");
      try {
        return pageOf(db.prepare(sql).all(...params), filter.limit);
      } catch (error) {
        throw new AuditUnavailableError("The audit trail could not be read", error);
      }
    },
    async prune(retention, now = Date.now()) {
      let deleted = deleteChunks(
        db.prepare(
          "DELETE FROM audit_entries WHERE id IN (SELECT id FROM audit_entries WHERE at_ms < ? LIMIT ?)",
        ),
        [now - retention.maxAgeMs],
      );
      // The newest `maxEntries` stay: find the first one beyond them, delete it and older.
      const edge = db
        .prepare(
          "SELECT at_ms, id FROM audit_entries ORDER BY at_ms DESC, id DESC LIMIT 1 OFFSET ?",
        )
        .get(retention.maxEntries);
      if (edge) {
        deleted += deleteChunks(
          db.prepare(
            "DELETE FROM audit_entries WHERE id IN (SELECT id FROM audit_entries WHERE (at_ms, id) <= (?, ?) LIMIT ?)",
          ),
          [Number(edge.at_ms), String(edge.id)],
        );
      }
      if (deleted > 0) db.exec("PRAGMA wal_checkpoint(PASSIVE)");
      return deleted;
    },
    pending: () => writes.pending(),
    async close() {
      if (closed) return;
      closed = true;
      await writes.drain();
      db.close();
    },
  };
}

function migrate(db: DatabaseSync): void {
  const version = Number(db.prepare("PRAGMA user_version").get()?.user_version ?? 0);
  if (version > MIGRATIONS.length) {
    throw new Error(
      `the audit database has schema version ${version}, newer than this service knows (${MIGRATIONS.length})`,
    );
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(MIGRATIONS[v] ?? "");
      db.exec(`PRAGMA user_version = ${v + 1}`);
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
  }
}

/** Runs a chunked DELETE (its last parameter is the chunk size) until a chunk comes up short. */
function deleteChunks(statement: ReturnType<DatabaseSync["prepare"]>, params: SQLInputValue[]) {
  let total = 0;
  for (;;) {
    const changes = Number(statement.run(...params, CHUNK_ROWS).changes);
    total += changes;
    if (changes < CHUNK_ROWS) return total;
  }
}
