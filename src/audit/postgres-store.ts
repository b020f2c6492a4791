import pg from "pg";
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
 * The shared audit store: PostgreSQL (DATABASE_URL, e.g. the Render Postgres of render.yaml).
 * Every instance appends to one table, so `GET /audit` on any of them answers for all. The
 * schema is migrated at boot under an advisory lock (instances booting together wait for each
 * other). A batch is one multi-row INSERT, committed (synchronous_commit) before its appends
 * resolve; a failed batch is retried until `writeTimeoutMs`, and since every entry has its own id
 * (`ON CONFLICT DO NOTHING`) a retry after a commit whose reply was lost adds nothing twice.
 */

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE audit_entries (
     id text PRIMARY KEY,
     at_ms bigint NOT NULL,
     instance text NOT NULL,
     caller text,
     session text,
     request_id text,
     command text NOT NULL,
     outcome text NOT NULL,
     error_code text,
     rule text,
     layer text,
     kind text,
     operation text,
     target text,
     exit_code integer,
     duration_ms double precision,
     agentsh_session text,
     command_id text
   );
   CREATE INDEX audit_entries_time ON audit_entries (at_ms, id);
   CREATE INDEX audit_entries_request ON audit_entries (request_id);
   CREATE INDEX audit_entries_outcome ON audit_entries (outcome, at_ms);
   CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS
     $$ BEGIN RAISE EXCEPTION 'audit entries are append-only'; END $$;
   CREATE TRIGGER audit_entries_append_only BEFORE UPDATE ON audit_entries
     FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only();`,
];

/** Any constant; names the lock under which instances migrate one at a time. */
const MIGRATION_LOCK = 7_202_622;
const MAX_BATCH = 200;
const CHUNK_ROWS = 5000;

export interface PostgresAuditOptions {
  connectionString: string;
  /** How long a batch is retried before its appends fail (the caller gets audit_unavailable). */
  writeTimeoutMs?: number;
  /** Told about connection errors of idle clients (the pool replaces them). */
  onError?: (error: Error) => void;
}

export async function openPostgresAuditStore(options: PostgresAuditOptions): Promise<AuditStore> {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: 4,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // A statement stuck on a lock or a dead server fails instead of holding a command's answer.
    statement_timeout: 10_000,
    application_name: "governed-executor",
  });
  // Without a listener, an idle client's error (server restart) would crash the process.
  pool.on("error", (error) => options.onError?.(error));
  try {
    await migrate(pool);
  } catch (error) {
    await pool.end();
    // The service refuses to start without its trail: say which setting to look at.
    const detail = error instanceof Error ? error.message : String(error);
    throw new Error(`The audit database (DATABASE_URL) cannot be used: ${detail}`, {
      cause: error,
    });
  }

  const writeTimeoutMs = options.writeTimeoutMs ?? 10_000;
  const columns = AUDIT_COLUMNS.length;
  const writes = createGroupCommit<Array<string | number | null>>(async (batch) => {
    const values = batch
      .map((_, r) => `(${AUDIT_COLUMNS.map((_, c) => `$${r * columns + c + 1}`).join(", ")})`)
      .join(", ");
    const sql = `INSERT INTO audit_entries (${AUDIT_COLUMNS.join(", ")}) VALUES ${values} ON CONFLICT (id) DO NOTHING`;
    const params = batch.flat();
    const deadline = Date.now() + writeTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        await pool.query(sql, params);
        return;
      } catch (error) {
        // Broken data or SQL never heals; a lost connection or a restarting server may.
        const code = (error as { code?: unknown }).code;
        const permanent = typeof code === "string" && /^(22|23|42)/.test(code);
        const wait = Math.min(1_000, 50 * 2 ** attempt);
        if (permanent || Date.now() + wait > deadline) throw new AuditWriteError(error);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }, MAX_BATCH);

  let closed = false;
  return {
    backend: "postgres",
    append: (entry) => {
      if (closed) return Promise.reject(new AuditWriteError("the audit store is closed"));
      return writes.add(rowOf(entry));
    },
    async query(filter) {
      const { sql, params } = auditQuerySql(filter, (n) => `$${n}`);
      try {
        const { rows } = await pool.query(sql, params);
        return pageOf(rows, filter.limit);
      } catch (error) {
        throw new AuditUnavailableError("The audit trail could not be read", error);
      }
    },
    async prune(retention, now = Date.now()) {
      let deleted = await deleteChunks(
        pool,
        "DELETE FROM audit_entries WHERE id IN (SELECT id FROM audit_entries WHERE at_ms < $1 LIMIT $2)",
        [now - retention.maxAgeMs],
      );
      const { rows } = await pool.query(
        "SELECT at_ms, id FROM audit_entries ORDER BY at_ms DESC, id DESC LIMIT 1 OFFSET $1",
        [retention.maxEntries],
      );
      const edge = rows[0] as { at_ms: string; id: string } | undefined;
      if (edge) {
        deleted += await deleteChunks(
          pool,
          "DELETE FROM audit_entries WHERE id IN (SELECT id FROM audit_entries WHERE (at_ms, id) <= ($1, $2) LIMIT $3)",
          [Number(edge.at_ms), edge.id],
        );
      }
      return deleted;
    },
    pending: () => writes.pending(),
    async close() {
      if (closed) return;
      closed = true;
      await writes.drain();
      await pool.end();
    },
  };
}

async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await client.query(
      "CREATE TABLE IF NOT EXISTS audit_schema (version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    );
    const { rows } = await client.query("SELECT coalesce(max(version), 0) AS v FROM audit_schema");
    const version = Number(rows[0]?.v ?? 0);
    if (version > MIGRATIONS.length) {
      throw new Error(
        `the audit database has schema version ${version}, newer than this service knows (${MIGRATIONS.length})`,
      );
    }
    for (let v = version; v < MIGRATIONS.length; v++) {
      await client.query(MIGRATIONS[v] ?? "");
      await client.query("INSERT INTO audit_schema (version) VALUES ($1)", [v + 1]);
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

async function deleteChunks(
  pool: pg.Pool,
  sql: string,
  params: Array<string | number>,
): Promise<number> {
  let total = 0;
  for (;;) {
    const { rowCount } = await pool.query(sql, [...params, CHUNK_ROWS]);
    total += rowCount ?? 0;
    if ((rowCount ?? 0) < CHUNK_ROWS) return total;
  }
}
