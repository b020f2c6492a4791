import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { pruneAgentshEvents, startRetentionJob } from "../../src/audit/events-retention.js";

/** agentsh v0.16.9's schema for the two tables we trim (internal/store/sqlite, migrate). */
const AGENTSH_SCHEMA = `
  PRAGMA journal_mode=WAL;
  CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY, ts_unix_ns INTEGER NOT NULL, session_id TEXT NOT NULL,
    command_id TEXT, type TEXT NOT NULL, pid INTEGER, policy_decision TEXT,
    effective_decision TEXT, policy_rule TEXT, path TEXT, domain TEXT, remote TEXT,
    operation TEXT, payload_json TEXT NOT NULL, integrity_json TEXT);
  CREATE INDEX IF NOT EXISTS idx_events_session_ts ON events(session_id, ts_unix_ns);
  CREATE INDEX IF NOT EXISTS idx_events_type_ts ON events(type, ts_unix_ns);
  CREATE TABLE IF NOT EXISTS command_outputs (
    command_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, stdout BLOB, stderr BLOB,
    stdout_total_bytes INTEGER NOT NULL, stderr_total_bytes INTEGER NOT NULL,
    stdout_truncated INTEGER NOT NULL, stderr_truncated INTEGER NOT NULL,
    created_ts_unix_ns INTEGER NOT NULL);
`;

const NOW = Date.parse("2026-06-01T00:00:00Z");
const HOUR = 3_600_000;
const ns = (ms: number) => BigInt(ms) * 1_000_000n;

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A database as agentsh leaves it, with `writer` kept open (agentsh's connection). */
function agentshDb() {
  const dir = mkdtempSync(path.join(tmpdir(), "events-retention-"));
  dirs.push(dir);
  const file = path.join(dir, "events.db");
  const writer = new DatabaseSync(file);
  writer.exec(AGENTSH_SCHEMA);
  const insertEvent = writer.prepare(
    "INSERT INTO events(event_id, ts_unix_ns, session_id, type, policy_rule, payload_json) VALUES(?,?,?,?,?,?)",
  );
  const insertOutput = writer.prepare(
    "INSERT INTO command_outputs VALUES(?, 's', 'out', '', 3, 0, 0, 0, ?)",
  );
  let n = 0;
  const addEvents = (atMs: number, count: number, payloadBytes = 100) => {
    writer.exec("BEGIN");
    for (let i = 0; i < count; i++) {
      n += 1;
      insertEvent.run(
        `ev-${n}`,
        ns(atMs),
        "gexec-1",
        "file_open",
        "deny-x",
        "p".repeat(payloadBytes),
      );
    }
    writer.exec("COMMIT");
  };
  const count = (sql: string) => Number(writer.prepare(sql).get()?.n);
  return { file, writer, addEvents, insertOutput, count };
}

describe("agentsh event retention", () => {
  it("deletes events and command outputs older than the age limit and keeps recent ones", () => {
    const db = agentshDb();
    db.addEvents(NOW - 30 * 24 * HOUR, 1200);
    db.addEvents(NOW - 8 * 24 * HOUR, 10);
    db.addEvents(NOW - 6 * 24 * HOUR, 20);
    db.addEvents(NOW - 60_000, 30);
    db.insertOutput.run("cmd-old", ns(NOW - 9 * 24 * HOUR));
    db.insertOutput.run("cmd-new", ns(NOW - HOUR));

    const report = pruneAgentshEvents(
      db.file,
      { maxAgeMs: 7 * 24 * HOUR, maxBytes: 1024 ** 3 },
      NOW,
    );

    expect(report).toMatchObject({ deletedEvents: 1210, deletedOutputs: 1 });
    expect(db.count("SELECT count(*) AS n FROM events")).toBe(50);
    expect(
      db.count(`SELECT count(*) AS n FROM events WHERE ts_unix_ns < ${ns(NOW - 7 * 24 * HOUR)}`),
    ).toBe(0);
    expect(db.count("SELECT count(*) AS n FROM command_outputs WHERE command_id = 'cmd-new'")).toBe(
      1,
    );
    // agentsh's own connection still writes afterwards.
    db.addEvents(NOW, 1);
    expect(db.count("SELECT count(*) AS n FROM events")).toBe(51);
    db.writer.close();
  });

  it("deletes the oldest events until the live pages fit the size limit", () => {
    const db = agentshDb();
    db.addEvents(NOW - 5 * HOUR, 2000, 1000);
    db.addEvents(NOW - 4 * HOUR, 2000, 1000);
    db.addEvents(NOW - HOUR, 500, 1000);
    const maxBytes = 1024 * 1024;

    const report = pruneAgentshEvents(db.file, { maxAgeMs: 24 * HOUR, maxBytes }, NOW);

    expect(report?.bytesBefore).toBeGreaterThan(4 * maxBytes);
    expect(report?.bytesAfter).toBeLessThanOrEqual(maxBytes);
    const left = db.count("SELECT count(*) AS n FROM events");
    expect(left).toBeGreaterThan(0);
    // What is left is the newest: every event of the last hour survived.
    expect(db.count(`SELECT count(*) AS n FROM events WHERE ts_unix_ns = ${ns(NOW - HOUR)}`)).toBe(
      500,
    );
    expect(left).toBeLessThan(1000);
    db.writer.close();
  });

  it("does nothing where agentsh has not created its database yet", () => {
    expect(pruneAgentshEvents("/nonexistent/events.db", { maxAgeMs: 1, maxBytes: 1 })).toBeNull();
  });

  it("the job runs at once, trims the audit log too, and waits while commands run", async () => {
    const db = agentshDb();
    db.addEvents(Date.now() - 48 * HOUR, 10);
    db.addEvents(Date.now(), 5);
    let idle = false;
    const reports: Array<{ deletedEvents: number; auditDeleted: number }> = [];
    const stop = startRetentionJob({
      dbPath: db.file,
      settings: { maxAgeMs: 24 * HOUR, maxBytes: 1024 ** 3 },
      intervalMs: 60_000,
      idle: () => idle,
      pruneAuditLog: async () => 2,
      onReport: (report) => reports.push(report),
      onError: (error) => {
        throw error;
      },
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(reports).toEqual([]);
      idle = true;
      const deadline = Date.now() + 5_000;
      while (reports.length === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(reports[0]).toMatchObject({ deletedEvents: 10, auditDeleted: 2 });
      expect(db.count("SELECT count(*) AS n FROM events")).toBe(5);
    } finally {
      stop();
      db.writer.close();
    }
  });
});
