import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  loadTenantDirectory,
  parseTenants,
  sha256Hex,
  type TenantsContext,
  TenantsError,
} from "../../src/tenants/tenants.js";

const KEY_A = "a".repeat(32);
const KEY_B = "b".repeat(32);
const KEY_B2 = "c".repeat(32);

let dir: string;
let context: TenantsContext;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "tenants-"));
  await writeFile(path.join(dir, "default.yaml"), "version: 1\nname: default\n");
  await writeFile(path.join(dir, "strict.yaml"), "version: 1\nname: strict\n");
  context = {
    policyDir: dir,
    sessionsRoot: "/sessions",
    reservedPaths: ["/workspace", "/home/gexec"],
    env: { TEAM_A_KEY: KEY_A },
  };
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const file = (b = sha256Hex(KEY_B)) => `version: 1
tenants:
  - name: team-a
    keys: [{ env: TEAM_A_KEY }]
    policy: strict
    slots: 2
    rate_limits: { requests: 5 }
    sessions: 2
    limits: { memory_mb: 128, processes: 64 }
  - name: ops
    keys: [{ sha256: ${b} }]
    operator: true
`;

describe("tenants file", () => {
  it("resolves env and sha256 keys to their tenant, with defaults filled in", async () => {
    const entries = await parseTenants("t.yaml", file(), context);
    expect(entries.map((e) => e.tenant)).toEqual([
      {
        name: "team-a",
        policy: "strict",
        workspaceRoot: "/sessions/tenant-team-a",
        slots: 2,
        rateLimits: { windowMs: 60_000, requests: 5 },
        sessionQuota: 2,
        operator: false,
        limits: { memoryMb: 128, processes: 64 },
      },
      {
        name: "ops",
        policy: "default",
        workspaceRoot: "/sessions/tenant-ops",
        slots: undefined,
        rateLimits: undefined,
        sessionQuota: undefined,
        operator: true,
        limits: undefined,
      },
    ]);
  });

  it("names every problem in one error", async () => {
    const bad = `version: 1
tenants:
  - name: team-a
    keys: [{ env: MISSING_KEY }, { sha256: ${sha256Hex(KEY_A)} }]
    policy: nosuch
    workspace: /workspace
  - name: team-b
    keys: [{ env: TEAM_A_KEY }]
    workspace: /sessions/s-abc
`;
    const error = await parseTenants("t.yaml", bad, context).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TenantsError);
    const problems = (error as TenantsError).problems.join("\n");
    expect(problems).toContain("MISSING_KEY is not set");
    expect(problems).toContain("nosuch.yaml does not exist");
    expect(problems).toContain("must be a directory directly under /sessions");
    expect(problems).toContain("/workspace overlaps /workspace");
    expect(problems).toContain("names starting with s- are the sessions' own");
    expect(problems).toContain("the same key already belongs to team-a");
  });

  it("refuses unknown keys, plain keys and bad names (strict schema)", async () => {
    const bad = `version: 1
tenants:
  - name: Team_A
    keys: [{ key: ${KEY_A} }]
    operater: true
`;
    const error = (await parseTenants("t.yaml", bad, context).catch(
      (e: unknown) => e,
    )) as TenantsError;
    expect(error).toBeInstanceOf(TenantsError);
    expect(error.problems.join("\n")).toMatch(/tenants\.0\.name/);
    expect(error.problems.join("\n")).toMatch(/tenants\.0\.keys\.0/);
    expect(error.problems.join("\n")).toMatch(/operater/);
  });

  it("refuses a policy agentsh would not load (its strict schema)", async () => {
    await writeFile(path.join(dir, "broken.yaml"), "version: 1\nname: broken\nnot_a_key: 1\n");
    const text = file().replace("policy: strict", "policy: broken");
    const error = (await parseTenants("t.yaml", text, context).catch(
      (e: unknown) => e,
    )) as TenantsError;
    expect(error.problems.join("\n")).toContain("broken.yaml is not a valid agentsh policy");
  });
});

describe("tenant directory", () => {
  it("answers tenantOf by key and rotates keys on reload", async () => {
    const at = path.join(dir, "tenants.yaml");
    await writeFile(at, file());
    const directory = await loadTenantDirectory(at, context);
    expect(directory.tenantOf(KEY_A)?.name).toBe("team-a");
    expect(directory.tenantOf(KEY_B)?.name).toBe("ops");
    expect(directory.tenantOf(KEY_B2)).toBeUndefined();

    // Rotation: the ops key is replaced in the file; reload() takes the new one, drops the old.
    await writeFile(at, file(sha256Hex(KEY_B2)));
    expect(await directory.reload()).toEqual({ ok: true, tenants: 2, keys: 2 });
    expect(directory.tenantOf(KEY_B2)?.name).toBe("ops");
    expect(directory.tenantOf(KEY_B)).toBeUndefined();

    // A broken file keeps the tenants in force.
    await writeFile(at, "version: 2\n");
    const failed = await directory.reload();
    expect(failed.ok).toBe(false);
    expect(directory.tenantOf(KEY_B2)?.name).toBe("ops");
  });

  it("refuses to start on an unreadable file", async () => {
    await expect(loadTenantDirectory(path.join(dir, "none.yaml"), context)).rejects.toThrow(
      /cannot read it/,
    );
  });
});

describe("a tenant's own DLP patterns", () => {
  const withDlp = (regex: string) => `version: 1
tenants:
  - name: team-a
    keys: [{ env: TEAM_A_KEY }]
    dlp:
      custom_patterns:
        - { name: codename, display: codename, regex: '${regex}' }
  - name: ops
    keys: [{ sha256: ${sha256Hex(KEY_B)} }]
`;

  it("redact that tenant's output with its patterns first, then the service's; others keep the service's", async () => {
    const service = [{ name: "email", display: "email", regex: /\b[a-z]+@[a-z]+\.[a-z]+\b/g }];
    const entries = await parseTenants("t.yaml", withDlp("\\bPROJ-[0-9]{4}\\b"), {
      ...context,
      redactionPatterns: service,
    });
    const [teamA, ops] = entries.map((e) => e.tenant);
    expect(teamA?.redact?.("PROJ-1234 to a@b.io")).toEqual({
      text: "[REDACTED:codename] to [REDACTED:email]",
      counts: { codename: 1, email: 1 },
    });
    expect(ops?.redact).toBeUndefined();
  });

  it("refuse a pattern that could match across a line break (streams are redacted line by line)", async () => {
    await expect(parseTenants("t.yaml", withDlp("PROJ\\s[0-9]+"), context)).rejects.toThrow(
      /tenants\.0 \(team-a\)\.dlp\.custom_patterns\[0\] \(codename\): may match across a line break/,
    );
  });
});
