#!/usr/bin/env -S node --import tsx
// audit-cost: what the durable audit trail adds to each command's answer, per back end.
//
// Usage (from the repository root):
//   scripts/with-postgres -- node --import tsx tools/bench/audit-cost.ts [--commands N]
//
// For SQLite (a file in a temp dir, WAL, synchronous=FULL) and, when TEST_DATABASE_URL or
// DATABASE_URL is set, PostgreSQL (a fresh database on that server), it times the step every
// answer waits for — the command trail's record(): the entry appended and durable — first one
// command at a time, then 8 at once (as 8 concurrent requests would; batches are shared).
// Prints p50/p95/p99 in milliseconds per command.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import type { AuditStore } from "../../src/audit/audit-log.js";
import { type AnsweredCommand, createCommandTrail } from "../../src/audit/command-trail.js";
import { openPostgresAuditStore } from "../../src/audit/postgres-store.js";
import { openSqliteAuditStore } from "../../src/audit/sqlite-store.js";
import { percentiles } from "./stats.js";

const args = process.argv.slice(2);
const commands = Number(args[args.indexOf("--commands") + 1] ?? "") || 2000;

const command: AnsweredCommand = {
  caller: "key-0123456789ab",
  session: null,
  requestId: "00000000-0000-4000-8000-000000000000",
  command: "sudo id",
  outcome: "blocked",
  errorCode: null,
  rule: "deny-privilege-escalation",
  layer: "agentsh",
  kind: "command",
  operation: "execve",
  target: "/usr/bin/sudo",
  exitCode: 126,
  durationMs: 41,
  sessionId: "gexec-slot-1",
  commandId: "cmd-1",
};

async function measure(store: AuditStore) {
  const trail = createCommandTrail({ store, instance: "bench" });
  const timed = async () => {
    const started = performance.now();
    await trail.record(command, Date.now());
    return performance.now() - started;
  };
  for (let i = 0; i < 100; i++) await timed(); // warm-up
  const sequential: number[] = [];
  for (let i = 0; i < commands; i++) sequential.push(await timed());
  const concurrent: number[] = [];
  for (let i = 0; i < commands / 8; i++) {
    concurrent.push(...(await Promise.all(Array.from({ length: 8 }, timed))));
  }
  return { sequential: percentiles(sequential), concurrent8: percentiles(concurrent) };
}

const fmt = (p: { p50: number; p95: number; p99: number }) =>
  `p50 ${p.p50.toFixed(3)}  p95 ${p.p95.toFixed(3)}  p99 ${p.p99.toFixed(3)}`;
const report = (name: string, r: Awaited<ReturnType<typeof measure>>) => {
  console.log(`${name.padEnd(10)} 1 at a time: ${fmt(r.sequential)} ms`);
  console.log(`${"".padEnd(10)} 8 at once:   ${fmt(r.concurrent8)} ms`);
};

console.log(`audit cost per command (${commands} commands each, node ${process.version})`);
const dir = mkdtempSync(path.join(tmpdir(), "audit-cost-"));
try {
  const sqlite = openSqliteAuditStore(path.join(dir, "audit.db"));
  report("sqlite", await measure(sqlite));
  await sqlite.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const server = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL;
if (server) {
  const name = `audit_cost_${process.pid}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(server);
  url.pathname = `/${name}`;
  try {
    const postgres = await openPostgresAuditStore({ connectionString: url.toString() });
    report("postgres", await measure(postgres));
    await postgres.close();
  } finally {
    await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
    await admin.end();
  }
} else {
  console.log("postgres   skipped: set TEST_DATABASE_URL (run through scripts/with-postgres)");
}
