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
  it("is default.yaml with strict-* rules and three env names in front", () => {
    const strict = load("strict");
    const base = load("default");
    const lists = ["command_rules", "file_rules", "network_rules", "unix_socket_rules"] as const;
    const added: string[] = [];
    for (const list of lists) {
      const rules = (strict[list] ?? []) as Array<{ name: string }>;
      added.push(...rules.filter((r) => r.name.startsWith("strict-")).map((r) => r.name));
      expect(rules.filter((r) => !r.name.startsWith("strict-"))).toEqual(base[list]);
    }
    expect(added).toEqual([
      "strict-deny-git",
      "strict-deny-licence-texts",
      "strict-deny-example-com",
    ]);
    // env_policy: three names in front of default.yaml's deny list, nothing else differs.
    expect(strict.env_policy).toEqual({
      ...base.env_policy,
      deny: ["PIP_*", "NPM_CONFIG_*", "npm_config_*", ...(base.env_policy?.deny ?? [])],
    });
    const lists_ = [...lists, "env_policy"] as const;
    const rest = (policy: typeof strict) =>
      Object.fromEntries(
        Object.entries(policy).filter(([key]) => key !== "name" && !lists_.includes(key as never)),
      );
    expect(rest(strict)).toEqual(rest(base));
  });
});
