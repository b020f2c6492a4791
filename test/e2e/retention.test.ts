import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { backup, DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { pruneAgentshEvents } from "../../src/audit/events-retention.js";
import { skipWhen } from "../support/skip-when.js";

// Set by scripts/test for the host stack. Not run against a remote deployment (its database is
// out of reach) nor against the image (tools/container/test-image): SQLite resolves the
// /proc/PID/root link to the host's own path, so the container's events.db cannot be opened by
// name from the host. The host run exercises the same code on the same agentsh database format.
const STATE_DIR = process.env.E2E_AGENTSH_STATE_DIR;

describe(
  "retention on agentsh's real event database",
  skipWhen(["remote", "container-stack"]),
  () => {
    it("on a copy of the live events.db, events older than the cutoff go and newer ones stay", async () => {
      if (!STATE_DIR) throw new Error("E2E_AGENTSH_STATE_DIR is not set (scripts/test sets it)");
      const dir = mkdtempSync(path.join(tmpdir(), "e2e-retention-"));
      try {
        // The live database is agentsh's; the online backup reads it without blocking its writer.
        const live = new DatabaseSync(path.join(STATE_DIR, "events.db"), { readOnly: true });
        const copy = path.join(dir, "events.db");
        await backup(live, copy);
        live.close();

        const db = new DatabaseSync(copy);
        const range = db.prepare(
          "SELECT min(ts_unix_ns) AS lo, max(ts_unix_ns) AS hi, count(*) AS n FROM events",
        );
        range.setReadBigInts(true);
        const before = range.get() as { lo: bigint; hi: bigint; n: bigint };
        expect(before.n).toBeGreaterThan(1n);
        // A cutoff halfway through what the suite has recorded so far.
        const cutoffMs = Number((before.lo + (before.hi - before.lo) / 2n) / 1_000_000n);
        const report = pruneAgentshEvents(
          copy,
          { maxAgeMs: 1000, maxBytes: 1024 ** 4 },
          cutoffMs + 1000,
        );
        const after = range.get() as { lo: bigint; hi: bigint; n: bigint };
        db.close();

        expect(report?.deletedEvents).toBeGreaterThan(0);
        expect(after.n).toBe(before.n - BigInt(report?.deletedEvents ?? 0));
        expect(after.lo).toBeGreaterThanOrEqual(BigInt(cutoffMs) * 1_000_000n);
        expect(after.hi).toBe(before.hi);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
