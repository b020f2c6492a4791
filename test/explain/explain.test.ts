import { describe, expect, it } from "vitest";
import { createExplainer } from "../../src/explain/explain.js";
import { createPolicyMatcher } from "../../src/explain/rules.js";
import { POLICY, testProgramResolver } from "../support/test-app.js";

const base = {
  matcher: createPolicyMatcher(POLICY, {}),
  workspace: "/workspace",
  wrapper: "agentsh-launch",
  resolveProgram: testProgramResolver,
  resolveHost: async () => [],
};

describe("explain cross-checked with agentsh's policy-test API", () => {
  it("asks agentsh the same lookups and lists where its engine names another rule", async () => {
    const asked: string[] = [];
    const explain = createExplainer({
      ...base,
      policyTest: async (operation, target) => {
        asked.push(`${operation} ${target}`);
        if (operation === "exec" && target === "/usr/bin/agentsh") {
          return { rule: "default-deny-commands" }; // the pre-check's name for the same default
        }
        if (operation === "file_open") return { rule: "some-other-rule" };
        return null; // not answered: skipped
      },
    });
    const e = await explain("agentsh session list; cat /etc/hostname; curl -s http://10.0.0.1/");
    expect(asked).toEqual([
      "exec /usr/bin/agentsh",
      "exec /usr/bin/cat",
      "exec /usr/bin/curl",
      "file_open /etc/hostname",
      "connect 10.0.0.1:80",
    ]);
    expect(e.agentsh).toEqual({
      checked: 2,
      disagreements: ["open /etc/hostname: explain default-allow-reads, agentsh some-other-rule"],
    });
  });

  it("no API (or no answers): agentsh is null", async () => {
    expect((await createExplainer(base)("id")).agentsh).toBeNull();
    expect(
      (await createExplainer({ ...base, policyTest: async () => null })("id")).agentsh,
    ).toBeNull();
  });
});
