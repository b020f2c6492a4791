import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  parsePolicyServers,
  policyServerProblem,
  tenantPolicies,
} from "../../src/tenants/policy-servers.js";
import { parseTenants, type TenantsContext } from "../../src/tenants/tenants.js";

const tenantsFile = (...policies: Array<string | undefined>) =>
  [
    "version: 1",
    "tenants:",
    ...policies.map(
      (policy, i) =>
        `  - name: t${i}\n    keys: [{ sha256: "${String(i).repeat(64)}" }]${policy ? `\n    policy: ${policy}` : ""}`,
    ),
    "",
  ].join("\n");

describe("the policies that get an agentsh server of their own", () => {
  it("are each policy the tenants file names besides the default, once, in file order", () => {
    expect(
      tenantPolicies(tenantsFile("strict", undefined, "b", "strict", "default"), "default"),
    ).toEqual(["strict", "b"]);
    expect(tenantPolicies(tenantsFile(undefined, "default"), "default")).toEqual([]);
    // Another server default: "default" is then a tenant policy like any other.
    expect(tenantPolicies(tenantsFile("default", "strict"), "strict")).toEqual(["default"]);
  });

  it("refuses a file that is not a tenants file", () => {
    expect(() => tenantPolicies("version: 2\n", "default")).toThrow(/not a valid tenants file/);
  });

  it("reaches the app as AGENTSH_POLICY_SERVERS (policy=host:port, comma-separated)", () => {
    expect(parsePolicyServers("")).toEqual({});
    expect(parsePolicyServers("strict=127.0.0.1:18081,b=127.0.0.1:18082")).toEqual({
      strict: "http://127.0.0.1:18081",
      b: "http://127.0.0.1:18082",
    });
    expect(() => parsePolicyServers("strict=http://x:1")).toThrow(/policy=host:port/);
    expect(() => parsePolicyServers("a=h:1,a=h:2")).toThrow(/twice/);
  });

  it("a tenant may use the default policy or one whose server runs; any other is refused with the way out", () => {
    const servers = { strict: "http://127.0.0.1:18081" };
    expect(policyServerProblem("default", "default", servers)).toBeNull();
    expect(policyServerProblem("strict", "default", servers)).toBeNull();
    expect(policyServerProblem("other", "default", servers)).toMatch(
      /other has no agentsh server of its own .*now: strict\): restart the service/,
    );
  });
});

describe("the tenants file with the policy servers in force", () => {
  let dir: string;
  let context: TenantsContext;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "policy-servers-"));
    for (const name of ["default", "strict", "other"]) {
      await writeFile(path.join(dir, `${name}.yaml`), `version: 1\nname: ${name}\n`);
    }
    context = {
      policyDir: dir,
      sessionsRoot: "/sessions",
      reservedPaths: [],
      env: {},
      policyProblem: (policy) =>
        policyServerProblem(policy, "default", { strict: "http://127.0.0.1:18081" }),
    };
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("is refused, naming the tenant, when one names a policy without a server", async () => {
    await expect(parseTenants("t.yaml", tenantsFile("strict", "other"), context)).rejects.toThrow(
      /tenants\.1 \(t1\)\.policy: other has no agentsh server of its own/,
    );
    await expect(
      parseTenants("t.yaml", tenantsFile("strict", undefined), context),
    ).resolves.toHaveLength(2);
  });

  it("scripts/boot reads the policies through dist/tenants/policy-servers-cli.js's source", async () => {
    const file = path.join(dir, "tenants.yaml");
    await writeFile(file, tenantsFile("strict", "other", "strict"));
    const config = path.join(dir, "config.yaml");
    await writeFile(config, "policies:\n  default: default\n");
    const cli = path.join(import.meta.dirname, "../../src/tenants/policy-servers-cli.ts");
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", cli, file, config],
      { timeout: 20_000 },
    );
    expect(stdout).toBe("strict\nother\n");
  });
});
