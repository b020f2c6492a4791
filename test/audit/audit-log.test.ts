import { describe, expect, it } from "vitest";
import { type AuditEntry, createAuditLog } from "../../src/audit/audit-log.js";

const T0 = Date.parse("2026-01-01T00:00:00.000Z");

function entry(at: number, command: string): AuditEntry {
  return {
    time: new Date(at).toISOString(),
    requestId: `req-${command}`,
    command,
    outcome: "ok",
    rule: null,
    layer: null,
    kind: null,
    operation: null,
    target: null,
    exitCode: 0,
    durationMs: 1,
    sessionId: null,
    commandId: null,
  };
}

describe("the audit log", () => {
  it("drops entries older than its age limit on prune and on query", () => {
    let now = T0;
    const log = createAuditLog({ maxEntries: 10, maxAgeMs: 60_000, now: () => now });
    log.record(entry(T0, "a"));
    log.record(entry(T0 + 30_000, "b"));
    log.record(entry(T0 + 59_000, "c"));
    now = T0 + 90_001;
    expect(log.prune()).toBe(2);
    expect(log.size()).toBe(1);
    expect(log.query({ limit: 10 }).entries.map((e) => e.command)).toEqual(["c"]);
    now = T0 + 200_000;
    expect(log.query({ limit: 10 }).entries).toEqual([]);
    expect(log.size()).toBe(0);
  });

  it("holds at most maxEntries, the newest", () => {
    const log = createAuditLog({ maxEntries: 3, maxAgeMs: 3_600_000, now: () => T0 });
    for (const c of ["a", "b", "c", "d", "e"]) log.record(entry(T0, c));
    expect(log.size()).toBe(3);
    expect(log.query({ limit: 10 }).entries.map((e) => e.command)).toEqual(["e", "d", "c"]);
  });

  it("keeps a cursor valid while newer entries arrive (pages do not shift)", () => {
    const log = createAuditLog({ maxEntries: 100, maxAgeMs: 3_600_000, now: () => T0 });
    for (const c of ["a", "b", "c", "d"]) log.record(entry(T0, c));
    const first = log.query({ limit: 2 });
    expect(first.entries.map((e) => e.command)).toEqual(["d", "c"]);
    log.record(entry(T0, "e"));
    const second = log.query({ limit: 2, cursor: first.nextCursor ?? "" });
    expect(second.entries.map((e) => e.command)).toEqual(["b", "a"]);
    expect(second.nextCursor).toBeNull();
  });
});
