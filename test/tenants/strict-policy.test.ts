import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { policySchema } from "../../src/bundle/policy-schema.js";

/** agentsh/policies/strict.yaml is default.yaml plus its strict-* rules: nothing else drifts. */
const load = (name: string) =>
  policySchema.parse(
    parseYaml(
      readFileSync(new URL(`../../agentsh/policies/${name}.yaml`, import.meta.url), "utf8"),
    ),
  );

describe("the strict tenant policy", () => {
  it("is default.yaml with strict-* rules in front", () => {
    const strict = load("strict");
    const base = load("default");
    const lists = ["command_rules", "file_rules", "network_rules", "unix_socket_rules"] as const;
    const added: string[] = [];
    for (const list of lists) {
      const rules = (strict[list] ?? []) as Array<{ name: string }>;
      added.push(...rules.filter((r) => r.name.startsWith("strict-")).map((r) => r.name));
      expect(rules.filter((r) => !r.name.startsWith("strict-"))).toEqual(base[list]);
    }
    expect(added).toEqual(["strict-deny-git", "strict-deny-licence-texts"]);
    const { name: _s, command_rules: _c, file_rules: _f, ...strictRest } = strict;
    const { name: _d, command_rules: _dc, file_rules: _df, ...baseRest } = base;
    expect(strictRest).toEqual(baseRest);
  });
});
