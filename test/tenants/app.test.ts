import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSqliteAuditStore } from "../../src/audit/sqlite-store.js";
import { createExplainer } from "../../src/explain/explain.js";
import { createPolicyMatcher } from "../../src/explain/rules.js";
import { effectiveTenantPolicy } from "../../src/tenants/explain.js";
import {
  loadTenantDirectory,
  readTenantPolicy,
  sha256Hex,
  type TenantDirectory,
} from "../../src/tenants/tenants.js";
import { metricValue, parseMetrics, sampleOf } from "../support/prometheus.js";
import {
  buildTestApp,
  POLICY,
  postJson,
  readJson,
  testProgramResolver,
} from "../support/test-app.js";

/** The request layer with a tenants file: who a key is, and what each tenant may see. */

const KEY_A = `${"a".repeat(16)}-tenant-a`;
const KEY_B = `${"b".repeat(16)}-tenant-b`;
const KEY_OPS = `${"o".repeat(16)}-operator`;
const LEGACY = `${"l".repeat(16)}-legacy-key`;

let dir: string;
let tenants: TenantDirectory;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "tenants-app-"));
  await writeFile(path.join(dir, "default.yaml"), "version: 1\nname: default\n");
  await writeFile(path.join(dir, "strict.yaml"), "version: 1\nname: strict\n");
  await writeFile(
    path.join(dir, "tenants.yaml"),
    `version: 1
tenants:
  - name: team-a
    keys: [{ env: KEY_A }]
    policy: strict
    slots: 2
    sessions: 1
    rate_limits: { requests: 6 }
  - name: team-b
    keys: [{ sha256: ${sha256Hex(KEY_B)} }]
  - name: ops
    keys: [{ env: KEY_OPS }]
    operator: true
`,
  );
  tenants = await loadTenantDirectory(path.join(dir, "tenants.yaml"), {
    policyDir: dir,
    sessionsRoot: "/sessions",
    reservedPaths: ["/workspace"],
    env: { KEY_A, KEY_OPS },
  });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const as = (key: string) => ({ "X-API-Key": key });
const build = () =>
  buildTestApp({
    // API_KEY on its own is not a tenant's key: with a tenants file only the file's keys count.
    env: { API_KEY: LEGACY, RATE_LIMIT_EXECUTE: "1000" },
    tenants,
    audit: openSqliteAuditStore(":memory:"),
    explainFor: async (tenant) =>
      createExplainer({
        matcher: createPolicyMatcher(
          effectiveTenantPolicy(
            await readTenantPolicy(
              BUNDLE_POLICIES,
              tenant.policy === "strict" ? "strict" : "default",
            ),
            POLICY,
          ),
        ),
        workspace: tenant.workspaceRoot,
        wrapper: "agentsh-launch",
        resolveProgram: testProgramResolver,
        resolveHost: async () => [],
      }),
  });
const BUNDLE_POLICIES = new URL("../../agentsh/policies", import.meta.url).pathname;

describe("tenants: who a key is", () => {
  it("runs a tenant's command with its tenant (workspace, policy, slot share)", async () => {
    const { app, executor } = build();
    const res = await app.request("/execute", postJson({ command: "pwd" }, as(KEY_A)));
    expect(res.status).toBe(200);
    expect(executor.commands[0]).toMatchObject({
      owner: "tenant-team-a",
      tenant: {
        name: "team-a",
        policy: "strict",
        workspaceRoot: "/sessions/tenant-team-a",
        slots: 2,
      },
    });
  });

  it("refuses keys no tenant holds, including a bare API_KEY", async () => {
    const { app, executor } = build();
    for (const key of [LEGACY, "x".repeat(24)]) {
      const res = await app.request("/execute", postJson({ command: "id" }, as(key)));
      expect(res.status).toBe(401);
      expect((await readJson(res)).error.code).toBe("api_key_invalid");
    }
    expect(executor.commands).toHaveLength(0);
  });

  it("creates a tenant's sessions with its policy, up to its quota", async () => {
    const { app, executor } = build();
    const first = await app.request("/sessions", postJson({}, as(KEY_A)));
    expect(first.status).toBe(201);
    const { session } = await readJson(first);
    expect([...executor.sessionPolicies.values()]).toEqual(["strict"]);
    const second = await app.request("/sessions", postJson({}, as(KEY_A)));
    expect(second.status).toBe(429);
    expect((await readJson(second)).error.message).toContain("This tenant holds 1 sessions");
    // Another tenant neither sees nor uses it; its own sessions get its policy (default).
    const other = await app.request(`/sessions/${session.id}`, { headers: as(KEY_B) });
    expect(other.status).toBe(404);
    expect((await app.request("/sessions", postJson({}, as(KEY_B)))).status).toBe(201);
    expect([...executor.sessionPolicies.values()]).toEqual(["strict", "default"]);
  });

  it("counts a tenant's own request rate", async () => {
    const { app } = build();
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      statuses.push((await app.request("/sessions", { headers: as(KEY_A) })).status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 429]);
    // Another tenant's window is its own.
    expect((await app.request("/sessions", { headers: as(KEY_B) })).status).toBe(200);
  });
});

describe("tenants: scoped views", () => {
  it("/explain answers with the caller's policy", async () => {
    const { app } = build();
    const explain = async (key: string) =>
      readJson(await app.request("/explain", postJson({ command: "git status" }, as(key))));
    expect(await explain(KEY_A)).toMatchObject({ verdict: "blocked", rule: "strict-deny-git" });
    expect(await explain(KEY_B)).toMatchObject({ verdict: "allowed" });
  });

  it("shows a tenant only its own audit entries; the operator sees all", async () => {
    const { app } = build();
    await app.request("/execute", postJson({ command: "echo from-a" }, as(KEY_A)));
    await app.request("/execute", postJson({ command: "echo from-b" }, as(KEY_B)));
    const commandsSeenBy = async (key: string, query = "") =>
      (await readJson(await app.request(`/audit${query}`, { headers: as(key) }))).entries.map(
        (e: { command: string }) => e.command,
      );
    expect(await commandsSeenBy(KEY_A)).toEqual(["echo from-a"]);
    expect(await commandsSeenBy(KEY_B)).toEqual(["echo from-b"]);
    // Asking for another tenant's entries does not widen the view.
    expect(await commandsSeenBy(KEY_B, "?caller=tenant-team-a")).toEqual(["echo from-b"]);
    expect(await commandsSeenBy(KEY_OPS)).toEqual(["echo from-b", "echo from-a"]);
    expect(await commandsSeenBy(KEY_OPS, "?caller=tenant-team-a")).toEqual(["echo from-a"]);
  });

  it("shows a tenant only its own /metrics series; the operator all; /selftest to operators only", async () => {
    const { app } = build();
    await app.request("/execute", postJson({ command: "echo from-a" }, as(KEY_A)));
    await app.request("/execute", postJson({ command: "echo from-b" }, as(KEY_B)));
    const scrape = async (key: string) => {
      const res = await app.request("/metrics", { headers: as(key) });
      expect(res.status).toBe(200);
      return parseMetrics(await res.text());
    };
    const seenByA = await scrape(KEY_A);
    expect(metricValue(seenByA, "gexec_commands_total", { tenant: "team-a" })).toBe(1);
    expect(sampleOf(seenByA, "gexec_commands_total", { tenant: "team-b" })).toBeUndefined();
    // Nothing of the service's or another tenant's: only series labelled with its name.
    expect([...seenByA.keys()]).toEqual(["gexec_commands_total"]);
    const seenByOps = await scrape(KEY_OPS);
    expect(metricValue(seenByOps, "gexec_commands_total", { tenant: "team-b" })).toBe(1);
    expect(seenByOps.has("gexec_command_slots")).toBe(true);
    expect((await app.request("/metrics", { headers: as("z".repeat(24)) })).status).toBe(401);
    expect((await app.request("/selftest", { method: "POST", headers: as(KEY_B) })).status).toBe(
      401,
    );
    expect((await app.request("/selftest", { method: "POST", headers: as(KEY_OPS) })).status).toBe(
      200,
    );
  });
});
