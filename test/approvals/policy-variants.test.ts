import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  approvalRuleNames,
  approvedPolicyName,
  approvedPolicyText,
  isHandWrittenPolicy,
  NETWORK_APPROVAL_RULE,
  NETWORK_APPROVALS_POLICY,
  networkApprovalPolicyText,
  networkApprovalsPolicyName,
} from "../../src/approvals/policy-variants.js";
import { policySchema } from "../../src/bundle/policy-schema.js";

const dir = new URL("../../agentsh/policies/", import.meta.url);
const defaultText = readFileSync(new URL("default.yaml", dir), "utf8");

describe("approval-class rules and their approved-<rule> policies", () => {
  const rules = approvalRuleNames(defaultText);

  it("the default policy has approval-class rules, each an enforced deny", () => {
    expect(rules).toEqual([
      "approval-git-push",
      "approval-npm-publish",
      "approval-terraform-apply",
    ]);
    const policy = policySchema.parse(parseYaml(defaultText));
    for (const rule of rules) {
      expect(policy.command_rules?.find((r) => r.name === rule)?.decision).toBe("deny");
    }
  });

  it("each variant file is generated from default.yaml (run tools/approval-policies.ts)", () => {
    const files = readdirSync(dir).filter((f) => f.startsWith("approved-"));
    expect(files.sort()).toEqual(rules.map((r) => `${approvedPolicyName(r)}.yaml`).sort());
    for (const rule of rules) {
      const file = readFileSync(new URL(`${approvedPolicyName(rule)}.yaml`, dir), "utf8");
      expect(file).toBe(approvedPolicyText(defaultText, rule));
    }
  });

  it("a variant differs from the default in that one rule's decision only", () => {
    const base = policySchema.parse(parseYaml(defaultText));
    const variant = policySchema.parse(
      parseYaml(approvedPolicyText(defaultText, "approval-git-push")),
    );
    const flipped = variant.command_rules?.map((r) => r.decision);
    const original = base.command_rules?.map((r) => r.decision);
    const changed = (flipped ?? []).flatMap((d, i) => (d !== original?.[i] ? [i] : []));
    expect(changed).toHaveLength(1);
    expect(variant.command_rules?.[changed[0] ?? -1]?.name).toBe("approval-git-push");
    expect({ ...variant, command_rules: [] }).toEqual({ ...base, command_rules: [] });
  });

  it("git push patterns: the subcommand after global options, and the pack programs", () => {
    const policy = policySchema.parse(parseYaml(defaultText));
    const patterns = (
      policy.command_rules?.find((r) => r.name === "approval-git-push")?.args_patterns ?? []
    ).map((p) => new RegExp(p));
    const hits = (argv: string) => patterns.some((re) => re.test(argv));
    for (const argv of [
      "git push",
      "git push -q origin HEAD:main",
      "git -C /w push",
      "git -c user.name=x push origin",
      "git --git-dir /x/.git push",
      "git-receive-pack /workspace/r.git",
      "/usr/lib/git-core/git-send-pack --stateless-rpc x",
    ]) {
      expect(hits(argv), argv).toBe(true);
    }
    for (const argv of ["git status", "git commit -m push", "git log --grep push", "git pushy"]) {
      expect(hits(argv), argv).toBe(false);
    }
  });
});

describe("the network-approvals policy (agentsh's default when NETWORK_APPROVALS=true)", () => {
  it("is generated from default.yaml (run tools/approval-policies.ts)", () => {
    const file = readFileSync(new URL(`${NETWORK_APPROVALS_POLICY}.yaml`, dir), "utf8");
    expect(file).toBe(networkApprovalPolicyText(defaultText));
  });

  it("differs from the default in one network rule only: allow-https becomes an approve rule", () => {
    const base = policySchema.parse(parseYaml(defaultText));
    const variant = policySchema.parse(parseYaml(networkApprovalPolicyText(defaultText)));
    const before = base.network_rules ?? [];
    const after = variant.network_rules ?? [];
    expect(after).toHaveLength(before.length);
    const changed = after.flatMap((rule, i) =>
      JSON.stringify(rule) === JSON.stringify(before[i]) ? [] : [i],
    );
    expect(changed).toHaveLength(1);
    const at = changed[0] ?? -1;
    expect(before[at]).toMatchObject({ name: "allow-https", ports: [443], decision: "allow" });
    expect(after[at]).toMatchObject({
      name: NETWORK_APPROVAL_RULE,
      ports: [443],
      decision: "approve",
    });
    // The last network rule: every allow-list and deny rule above it still decides first.
    expect(at).toBe(before.length - 1);
    expect({ ...variant, network_rules: [] }).toEqual({ ...base, network_rules: [] });
  });

  it("every hand-written policy has its generated variant (a tenant policy's own server runs it)", () => {
    const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
    const handWritten = files
      .map((f) => f.replace(/\.yaml$/, ""))
      .filter((name) => isHandWrittenPolicy(name));
    expect(handWritten.sort()).toEqual(["default", "strict"]);
    for (const name of handWritten) {
      const variant = `${networkApprovalsPolicyName(name)}.yaml`;
      expect(files).toContain(variant);
      expect(readFileSync(new URL(variant, dir), "utf8")).toBe(
        networkApprovalPolicyText(
          readFileSync(new URL(`${name}.yaml`, dir), "utf8"),
          `${name}.yaml`,
        ),
      );
    }
    expect(networkApprovalsPolicyName("default")).toBe("network-approvals");
    expect(networkApprovalsPolicyName("strict")).toBe("strict-network-approvals");
  });

  it("refuses a default policy whose allow-https is not what it expects", () => {
    expect(() =>
      networkApprovalPolicyText(defaultText.replace("- name: allow-https", "- name: x")),
    ).toThrow(/no network rule named allow-https/);
  });
});
