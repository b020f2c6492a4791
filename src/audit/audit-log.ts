import type { Outcome } from "../executor.js";
import type { Refusal } from "../run-command.js";

/**
 * The service's own record of every command it was asked to run: which request sent it, who
 * asked, what became of it and which rule decided. agentsh's event store has the rule-level
 * events but neither our request ids nor our outcomes (refusals never reach agentsh at all), so
 * the runner writes one entry per answered command here, and the answer waits until the entry
 * is durable. Two back ends implement `AuditStore`: SQLite in the state directory (the default,
 * `sqlite-store.ts`) and PostgreSQL when DATABASE_URL is set (`postgres-store.ts`), where every
 * instance writes to, and reads from, one trail.
 */

/**
 * `rejected`: refused by the service before it could run (unknown or busy session, a bug).
 * `approval_*`: an approval's life (src/approvals/): asked for, approved, denied, expired, used.
 */
export type AuditOutcome =
  | Outcome
  | Refusal["outcome"]
  | "rejected"
  | "approval_requested"
  | "approval_approved"
  | "approval_denied"
  | "approval_expired"
  | "approval_used";

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
  "rejected",
  "approval_requested",
  "approval_approved",
  "approval_denied",
  "approval_expired",
  "approval_used",
] as const satisfies readonly AuditOutcome[];

export interface AuditEntry {
  /** Unique; the store ignores a second write of the same id (a retried batch). */
  id: string;
  /** When the outcome was known (ISO 8601, milliseconds). */
  time: string;
  /** The service instance that answered (INSTANCE_TAG). */
  instance: string;
  /** Who asked: the API key's fingerprint (`key-…`), `anonymous` without keys; null for demos. */
  caller: string | null;
  /** The caller's session (`s-<tag>-…` from POST /sessions); null when it ran without one. */
  session: string | null;
  requestId: string | null;
  /** The command as sent, after the bundle's DLP redaction. */
  command: string;
  outcome: AuditOutcome;
  /** The error code the caller was answered with; null when it got a result. */
  errorCode: string | null;
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
  /** The caller's session id (`s-…`) or agentsh's session id. */
  session?: string;
  /** The API key fingerprint. */
  caller?: string;
  instance?: string;
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

/** Entries beyond either bound are deleted by the retention job. */
export interface AuditRetention {
  maxAgeMs: number;
  maxEntries: number;
}

/** A cursor that no audit store issued (garbled or truncated). */
export class InvalidCursorError extends Error {
  constructor() {
    super("The cursor is not valid.");
    this.name = "InvalidCursorError";
  }
}

/** The audit database could not be read or written (PostgreSQL unreachable, disk full…). */
export class AuditUnavailableError extends Error {
  constructor(what: string, cause: unknown) {
    super(`${what}: ${cause instanceof Error ? cause.message : cause}`);
    this.name = "AuditUnavailableError";
  }
}

/** The entry could not be made durable: the caller must not be answered as if it were. */
export class AuditWriteError extends AuditUnavailableError {
  constructor(cause: unknown) {
    super("The audit entry could not be stored", cause);
    this.name = "AuditWriteError";
  }
}

export interface AuditStore {
  readonly backend: "sqlite" | "postgres";
  /**
   * Resolves once the entry is durable (committed, fsynced), rejects with AuditWriteError when
   * it could not be. Entries are batched: appends made while a batch is written share the next.
   * There is no update or delete: entries go only by `prune` (retention).
   */
  append(entry: AuditEntry): Promise<void>;
  /** Newest first (time, then id). Throws InvalidCursorError for a cursor it cannot read. */
  query(filter: AuditFilter): Promise<AuditPage>;
  /** Deletes what is older or beyond the count; returns how many entries went. */
  prune(retention: AuditRetention, now?: number): Promise<number>;
  /** Entries waiting for their batch (a gauge for /metrics). */
  pending(): number;
  /** Writes what is pending, then closes the database. */
  close(): Promise<void>;
}

/**
 * The one column list both back ends use, in `AuditEntry` order; times are stored as
 * milliseconds since the epoch (`at_ms`) so both compare and page identically.
 */
export const AUDIT_COLUMNS = [
  "id",
  "at_ms",
  "instance",
  "caller",
  "session",
  "request_id",
  "command",
  "outcome",
  "error_code",
  "rule",
  "layer",
  "kind",
  "operation",
  "target",
  "exit_code",
  "duration_ms",
  "agentsh_session",
  "command_id",
] as const;

export type AuditRow = Record<(typeof AUDIT_COLUMNS)[number], string | number | null>;

export function rowOf(e: AuditEntry): Array<string | number | null> {
  return [
    e.id,
    Date.parse(e.time),
    e.instance,
    e.caller,
    e.session,
    e.requestId,
    e.command,
    e.outcome,
    e.errorCode,
    e.rule,
    e.layer,
    e.kind,
    e.operation,
    e.target,
    e.exitCode,
    e.durationMs,
    e.sessionId,
    e.commandId,
  ];
}

export function entryOf(row: Record<string, unknown>): AuditEntry {
  const text = (value: unknown) => (value === null || value === undefined ? null : String(value));
  const num = (value: unknown) => (value === null || value === undefined ? null : Number(value));
  return {
    id: String(row.id),
    time: new Date(Number(row.at_ms)).toISOString(),
    instance: String(row.instance),
    caller: text(row.caller),
    session: text(row.session),
    requestId: text(row.request_id),
    command: String(row.command),
    outcome: String(row.outcome) as AuditOutcome,
    errorCode: text(row.error_code),
    rule: text(row.rule),
    layer: text(row.layer) as AuditEntry["layer"],
    kind: text(row.kind),
    operation: text(row.operation),
    target: text(row.target),
    exitCode: num(row.exit_code),
    durationMs: num(row.duration_ms),
    sessionId: text(row.agentsh_session),
    commandId: text(row.command_id),
  };
}

/**
 * The WHERE clause of a query, the same SQL on both back ends but for the placeholder
 * (`?` for SQLite, `$n` for PostgreSQL). Pages are keyset pages on (at_ms, id), so a cursor
 * stays valid across restarts and instances, and entries arriving meanwhile shift nothing.
 */
export function auditQuerySql(
  filter: AuditFilter,
  placeholder: (index: number) => string,
): { sql: string; params: Array<string | number> } {
  const params: Array<string | number> = [];
  const arg = (value: string | number) => {
    params.push(value);
    return placeholder(params.length);
  };
  const where: string[] = [];
  if (filter.outcome !== undefined) where.push(`outcome = ${arg(filter.outcome)}`);
  if (filter.rule !== undefined) where.push(`rule = ${arg(filter.rule)}`);
  if (filter.requestId !== undefined) where.push(`request_id = ${arg(filter.requestId)}`);
  if (filter.caller !== undefined) where.push(`caller = ${arg(filter.caller)}`);
  if (filter.instance !== undefined) where.push(`instance = ${arg(filter.instance)}`);
  if (filter.session !== undefined) {
    where.push(`(session = ${arg(filter.session)} OR agentsh_session = ${arg(filter.session)})`);
  }
  if (filter.since !== undefined) where.push(`at_ms >= ${arg(filter.since.getTime())}`);
  if (filter.until !== undefined) where.push(`at_ms < ${arg(filter.until.getTime())}`);
  if (filter.cursor !== undefined) {
    const { atMs, id } = decodeCursor(filter.cursor);
    where.push(`(at_ms, id) < (${arg(atMs)}, ${arg(id)})`);
  }
  const sql =
    `SELECT ${AUDIT_COLUMNS.join(", ")} FROM audit_entries` +
    (where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "") +
    ` ORDER BY at_ms DESC, id DESC LIMIT ${arg(filter.limit + 1)}`;
  return { sql, params };
}

/** One more row than asked for was fetched: it only says whether a next page exists. */
export function pageOf(rows: Array<Record<string, unknown>>, limit: number): AuditPage {
  const entries = rows.slice(0, limit).map(entryOf);
  const last = entries.at(-1);
  return {
    entries,
    nextCursor: rows.length > limit && last ? encodeCursor(Date.parse(last.time), last.id) : null,
  };
}

function encodeCursor(atMs: number, id: string): string {
  return Buffer.from(JSON.stringify([atMs, id]), "utf8").toString("base64url");
}

function decodeCursor(cursor: string): { atMs: number; id: string } {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw new InvalidCursorError();
  }
  if (
    !Array.isArray(value) ||
    value.length !== 2 ||
    !Number.isSafeInteger(value[0]) ||
    typeof value[1] !== "string" ||
    value[1].length === 0 ||
    value[1].length > 100
  ) {
    throw new InvalidCursorError();
  }
  return { atMs: value[0], id: value[1] };
}
