import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { AuditEntry } from "../../src/audit/audit-log.js";
import { ownerOf } from "../../src/http/api-key.js";
import { freshDatabase } from "../support/postgres.js";
import { type ServiceProcess, startService } from "../support/service-process.js";

/**
 * The trail at process level: service processes (the real app and audit back end, a stand-in
 * agentsh) killed with SIGKILL under load and restarted, and two of them sharing one PostgreSQL.
 */

const KEY = `${"d".repeat(12)}-durable-trail-key`;
const AUTH = { "X-API-Key": KEY, "Content-Type": "application/json" };
const WORKERS = 8;

const running: ServiceProcess[] = [];
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const service of running.splice(0)) await service.kill9().catch(() => {});
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function start(env: Record<string, string>) {
  const service = await startService({
    API_KEY: KEY,
    RATE_LIMIT_EXECUTE: "100000",
    MAX_CONCURRENT_COMMANDS: String(WORKERS),
    ...env,
  });
  running.push(service);
  return service;
}

/** Every entry, paging through GET /audit with its cursor (bounded). */
async function wholeTrail(service: ServiceProcess, query = ""): Promise<AuditEntry[]> {
  const entries: AuditEntry[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 500; pages++) {
    const url: string = `${service.url}/audit?limit=200${query}${cursor ? `&cursor=${cursor}` : ""}`;
    const res = await fetch(url, { headers: AUTH, signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(200);
    const page = (await res.json()) as { entries: AuditEntry[]; nextCursor: string | null };
    entries.push(...page.entries);
    cursor = page.nextCursor;
    if (!cursor) return entries;
  }
  throw new Error("the trail has more than 500 pages");
}

async function execute(service: ServiceProcess, command: string) {
  const res = await fetch(`${service.url}/execute`, {
    method: "POST",
    headers: AUTH,
    body: JSON.stringify({ command }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as { requestId: string } };
}

const BACKENDS: Record<string, () => Promise<Record<string, string>>> = {
  sqlite: async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "durable-trail-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    return { AGENTSH_STATE_DIR: dir };
  },
  postgres: async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "durable-trail-"));
    const database = await freshDatabase();
    cleanups.push(async () => {
      rmSync(dir, { recursive: true, force: true });
      await database.drop();
    });
    return { AGENTSH_STATE_DIR: dir, DATABASE_URL: database.url };
  },
};

describe.each(Object.keys(BACKENDS))("the audit trail on %s, at process level", (name) => {
  it("has every answered command exactly once after a kill -9 under 8-way load and a restart", {
    timeout: 60_000,
  }, async () => {
    const env = await (BACKENDS[name] ?? (() => Promise.reject(new Error(name))))();
    const first = await start(env);
    const answered: string[] = [];
    let failures = 0;
    let killed = false;
    const deadline = Date.now() + 20_000;
    const worker = async (w: number) => {
      for (let i = 0; !killed && Date.now() < deadline; i++) {
        try {
          const { body } = await execute(first, i % 7 === 3 ? `sudo id ${w}` : `echo ${w}-${i}`);
          answered.push(body.requestId);
        } catch {
          // The process died with this request in flight: no answer, so no promise.
          failures += 1;
          return;
        }
      }
    };
    const load = Array.from({ length: WORKERS }, (_, w) => worker(w));
    // Kill it mid-run, once a good number of answers went out.
    while (answered.length < 150 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    killed = true;
    await first.kill9();
    await Promise.all(load);
    expect(answered.length).toBeGreaterThanOrEqual(150);
    expect(failures).toBeGreaterThan(0);

    const second = await start(env);
    const trail = await wholeTrail(second);
    const count = new Map<string, number>();
    for (const entry of trail) {
      count.set(entry.requestId ?? "", (count.get(entry.requestId ?? "") ?? 0) + 1);
    }
    const missing = answered.filter((id) => !count.has(id));
    const twice = [...count].filter(([, n]) => n > 1);
    expect(missing).toEqual([]);
    expect(twice).toEqual([]);
    expect(new Set(trail.map((e) => e.id)).size).toBe(trail.length);
    // Requests without an answer may or may not be there (the entry can beat the kill).
    expect(trail.length - answered.length).toBeLessThanOrEqual(WORKERS);
    expect(trail.filter((e) => e.outcome === "blocked").length).toBeGreaterThan(0);

    // The restarted service appends after the old entries.
    const after = await execute(second, "echo after the restart");
    expect(after.status).toBe(200);
    const newest = await wholeTrail(second, `&requestId=${after.body.requestId}`);
    expect(newest).toHaveLength(1);
  });
});

describe("two service processes on one PostgreSQL", () => {
  it("find each other's entries: a block made on one is found through the other", {
    timeout: 60_000,
  }, async () => {
    const database = await freshDatabase();
    const dirs = [1, 2].map(() => mkdtempSync(path.join(tmpdir(), "two-instances-")));
    cleanups.push(async () => {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
      await database.drop();
    });
    // Booted together: both migrate the same fresh database (one waits for the other's lock).
    const [one, two] = await Promise.all(
      ["one", "two"].map((tag, i) =>
        start({
          DATABASE_URL: database.url,
          INSTANCE_TAG: tag,
          AGENTSH_STATE_DIR: dirs[i] ?? "",
        }),
      ),
    );
    if (!one || !two) throw new Error("the services did not start");

    const blocked = await execute(one, "sudo id");
    expect(blocked.status).toBe(200);
    const ok = await execute(two, "echo from two");
    const found = await wholeTrail(two, `&requestId=${blocked.body.requestId}`);
    expect(found).toMatchObject([
      {
        requestId: blocked.body.requestId,
        instance: "one",
        caller: ownerOf(KEY),
        outcome: "blocked",
        rule: "deny-privilege-escalation",
        command: "sudo id",
      },
    ]);
    expect(JSON.stringify(found)).not.toContain(KEY);

    // Each answers for both, with the same filters and the same pages.
    for (const service of [one, two]) {
      const all = await wholeTrail(service);
      expect(all.map((e) => e.requestId).sort()).toEqual(
        [blocked.body.requestId, ok.body.requestId].sort(),
      );
      expect((await wholeTrail(service, "&instance=two")).map((e) => e.requestId)).toEqual([
        ok.body.requestId,
      ]);
      expect((await wholeTrail(service, "&outcome=blocked")).map((e) => e.instance)).toEqual([
        "one",
      ]);
    }
    const paged = await fetch(`${one.url}/audit?limit=1`, { headers: AUTH });
    const { nextCursor } = (await paged.json()) as { nextCursor: string };
    const rest = await fetch(`${two.url}/audit?limit=5&cursor=${nextCursor}`, { headers: AUTH });
    expect(((await rest.json()) as { entries: unknown[] }).entries).toHaveLength(1);
  });
});
