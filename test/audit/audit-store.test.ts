import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type AuditEntry,
  type AuditStore,
  AuditWriteError,
  InvalidCursorError,
} from "../../src/audit/audit-log.js";
import { openPostgresAuditStore } from "../../src/audit/postgres-store.js";
import { openSqliteAuditStore } from "../../src/audit/sqlite-store.js";
import { freshDatabase } from "../support/postgres.js";

/**
 * One suite, both back ends: SQLite in a temp dir, and a real PostgreSQL (scripts/with-postgres).
 * Whatever the API promises (order, filters, cursors, durability, exactly once, append-only,
 * retention) must hold the same on each.
 */

interface Backend {
  /** Opens (or reopens, as after a restart) the store on this test's database. */
  open(): Promise<AuditStore>;
  /** Runs raw SQL against the database, past the store (what an attacker with a client could). */
  raw(sql: string): Promise<void>;
  cleanup(): Promise<void>;
}

const BACKENDS: Record<string, () => Promise<Backend>> = {
  sqlite: async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "audit-store-"));
    const file = path.join(dir, "audit.db");
    return {
      open: async () => openSqliteAuditStore(file),
      raw: async (sql) => {
        const db = new DatabaseSync(file);
        try {
          db.exec(sql);
        } finally {
          db.close();
        }
      },
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  postgres: async () => {
    const database = await freshDatabase();
    return {
      open: () => openPostgresAuditStore({ connectionString: database.url, writeTimeoutMs: 1_000 }),
      raw: async (sql) => {
        const client = new pg.Client({ connectionString: database.url });
        await client.connect();
        try {
          await client.query(sql);
        } finally {
          await client.end();
        }
      },
      cleanup: database.drop,
    };
  },
};

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
let counter = 0;

function entry(overrides: Partial<AuditEntry> = {}): AuditEntry {
  counter += 1;
  return {
    id: `e-${String(counter).padStart(6, "0")}`,
    time: new Date(T0 + counter * 1000).toISOString(),
    instance: "one",
    caller: "key-aaaaaaaaaaaa",
    session: null,
    requestId: `req-${counter}`,
    command: `echo ${counter}`,
    outcome: "ok",
    errorCode: null,
    rule: null,
    layer: null,
    kind: null,
    operation: null,
    target: null,
    exitCode: 0,
    durationMs: 1.5,
    sessionId: "gexec-slot-1",
    commandId: `cmd-${counter}`,
    ...overrides,
  };
}

const commands = (entries: AuditEntry[]) => entries.map((e) => e.command);

describe.each(Object.keys(BACKENDS))("the audit store on %s", (name) => {
  let backend: Backend;
  let store: AuditStore;
  const opened: AuditStore[] = [];
  const open = async () => {
    const s = await backend.open();
    opened.push(s);
    return s;
  };

  beforeEach(async () => {
    backend = await (BACKENDS[name] ?? (() => Promise.reject(new Error(name))))();
    store = await open();
  });
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    await backend.cleanup();
  });

  it("names its back end", () => {
    expect(store.backend).toBe(name);
  });

  it("gives back every field as appended, nulls and fractions included", async () => {
    const blocked = entry({
      outcome: "blocked",
      rule: "deny-privilege-escalation",
      layer: "launcher",
      kind: "command",
      operation: "execve",
      target: "/usr/bin/sudo",
      exitCode: 126,
      durationMs: 12.25,
      session: "s-one-0123456789abcdef01234567",
    });
    const refused = entry({
      outcome: "rejected",
      errorCode: "session_not_found",
      caller: null,
      requestId: null,
      exitCode: null,
      durationMs: null,
      sessionId: null,
      commandId: null,
      command: "echo 'quotes' \"and\" ünïcödé ✓",
    });
    await store.append(blocked);
    await store.append(refused);
    const page = await store.query({ limit: 10 });
    expect(page).toEqual({ entries: [refused, blocked], nextCursor: null });
  });

  it("answers newest first (time, then id) and pages with a cursor through each entry once", async () => {
    const same = new Date(T0 + 999_999_000).toISOString();
    const all = [
      ...Array.from({ length: 7 }, () => entry()),
      entry({ id: "z-tie-b", time: same }),
      entry({ id: "z-tie-a", time: same }),
    ];
    await Promise.all(all.map((e) => store.append(e)));
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await store.query({ limit: 2, ...(cursor ? { cursor } : {}) });
      seen.push(...page.entries.map((e) => e.id));
      // An entry added meanwhile (newer) shifts nothing in the pages that follow.
      if (pages === 0) await store.append(entry({ time: new Date(T0 + 2e9).toISOString() }));
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    const expected = [...all]
      .sort((a, b) => Date.parse(a.time) - Date.parse(b.time) || (a.id < b.id ? -1 : 1))
      .reverse()
      .map((e) => e.id);
    expect(seen).toEqual(expected);
    expect(expected.slice(0, 2)).toEqual(["z-tie-b", "z-tie-a"]);
  });

  it("filters by outcome, rule, requestId, session, caller, instance and time range", async () => {
    const a = entry({ outcome: "blocked", rule: "deny-sudo", instance: "one" });
    const b = entry({ outcome: "blocked", rule: "deny-net", caller: "key-bbbbbbbbbbbb" });
    const c = entry({ session: "s-two-0123456789abcdef01234567", instance: "two" });
    const d = entry({ outcome: "busy", errorCode: "busy", sessionId: null, commandId: null });
    for (const e of [a, b, c, d]) await store.append(e);
    const q = async (filter: Parameters<AuditStore["query"]>[0]) =>
      commands((await store.query(filter)).entries);

    expect(await q({ limit: 10, outcome: "blocked" })).toEqual(commands([b, a]));
    expect(await q({ limit: 10, rule: "deny-net" })).toEqual(commands([b]));
    expect(await q({ limit: 10, requestId: c.requestId ?? "" })).toEqual(commands([c]));
    expect(await q({ limit: 10, session: "s-two-0123456789abcdef01234567" })).toEqual(
      commands([c]),
    );
    // agentsh's session id finds the entries that ran in it.
    expect(await q({ limit: 10, session: "gexec-slot-1" })).toEqual(commands([c, b, a]));
    expect(await q({ limit: 10, caller: "key-bbbbbbbbbbbb" })).toEqual(commands([b]));
    expect(await q({ limit: 10, instance: "two" })).toEqual(commands([c]));
    // since inclusive, until exclusive.
    expect(await q({ limit: 10, since: new Date(b.time), until: new Date(d.time) })).toEqual(
      commands([c, b]),
    );
    expect(await q({ limit: 10, outcome: "blocked", caller: "key-aaaaaaaaaaaa" })).toEqual(
      commands([a]),
    );
    // Filters and a cursor together: the next page continues the same filter.
    const first = await store.query({ limit: 1, outcome: "blocked" });
    expect(first.nextCursor).not.toBeNull();
    const second = await store.query({
      limit: 1,
      outcome: "blocked",
      cursor: first.nextCursor ?? "",
    });
    expect(commands(second.entries)).toEqual(commands([a]));
    expect(second.nextCursor).toBeNull();
  });

  it("refuses a cursor it cannot read", async () => {
    for (const cursor of ["garbage!", Buffer.from("[1]").toString("base64url"), "W10"]) {
      await expect(store.query({ limit: 1, cursor })).rejects.toBeInstanceOf(InvalidCursorError);
    }
  });

  it("keeps entries and cursors across a restart (close, reopen)", async () => {
    for (let i = 0; i < 5; i++) await store.append(entry());
    const page = await store.query({ limit: 2 });
    await store.close();
    const reopened = await open();
    const next = await reopened.query({ limit: 10, cursor: page.nextCursor ?? "" });
    expect(next.entries).toHaveLength(3);
    expect((await reopened.query({ limit: 10 })).entries).toHaveLength(5);
  });

  it("stores an entry once, however often it is written (a retried batch)", async () => {
    const once = entry();
    await Promise.all([store.append(once), store.append(once)]);
    await store.append(once);
    expect((await store.query({ limit: 10 })).entries).toEqual([once]);
  });

  it("resolves every concurrent append once it is durable, in shared batches", async () => {
    const many = Array.from({ length: 300 }, () => entry());
    const appends = many.map((e) => store.append(e));
    expect(store.pending()).toBeGreaterThan(0);
    await Promise.all(appends);
    expect(store.pending()).toBe(0);
    // Visible to another connection (another process would see the same).
    const other = await open();
    expect((await other.query({ limit: 200 })).entries).toHaveLength(200);
    expect((await other.query({ limit: 1, requestId: many[0]?.requestId ?? "" })).entries).toEqual([
      many[0],
    ]);
  });

  it("is append-only: the database itself refuses to change an entry", async () => {
    await store.append(entry());
    await expect(backend.raw("UPDATE audit_entries SET outcome = 'ok'")).rejects.toThrow(
      /append-only/,
    );
  });

  it("prunes by age and by count, oldest first", async () => {
    const all = Array.from({ length: 10 }, () => entry());
    for (const e of all) await store.append(e);
    const newest = Date.parse(all[9]?.time ?? "");
    // Age: older than 5.5 s before the newest go (entries are 1 s apart).
    expect(await store.prune({ maxAgeMs: 5_500, maxEntries: 1000 }, newest)).toBe(4);
    // Count: the 3 newest stay.
    expect(await store.prune({ maxAgeMs: 3_600_000, maxEntries: 3 }, newest)).toBe(3);
    expect(commands((await store.query({ limit: 10 })).entries)).toEqual(
      commands(all.slice(7).reverse()),
    );
    expect(await store.prune({ maxAgeMs: 3_600_000, maxEntries: 3 }, newest)).toBe(0);
  });

  it("refuses appends after close, and close writes what was pending", async () => {
    const last = entry();
    const pending = store.append(last);
    await store.close();
    await pending;
    await expect(store.append(entry())).rejects.toBeInstanceOf(AuditWriteError);
    const reopened = await open();
    expect((await reopened.query({ limit: 1 })).entries).toEqual([last]);
  });

  it("migrates once when several instances open the same database at once", async () => {
    const more = await Promise.all([open(), open(), open()]);
    await more[0]?.append(entry());
    expect((await more[2]?.query({ limit: 5 }))?.entries).toHaveLength(1);
  });

  it("costs under 1 ms per command at p50 (sequential appends, each durable)", async () => {
    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      const started = performance.now();
      await store.append(entry());
      times.push(performance.now() - started);
    }
    times.sort((x, y) => x - y);
    const p50 = times[100] ?? Number.POSITIVE_INFINITY;
    expect(p50, `p50 ${p50.toFixed(3)} ms, p99 ${times[198]?.toFixed(3)} ms`).toBeLessThan(1);
  });
});

describe("the PostgreSQL audit store at boot", () => {
  it("refuses to open (the service refuses to start) when the database cannot be reached", async () => {
    await expect(
      openPostgresAuditStore({ connectionString: "postgres://nobody:x@127.0.0.1:1/none" }),
    ).rejects.toThrow(/^The audit database \(DATABASE_URL\) cannot be used: .*ECONNREFUSED/);
  });
});
