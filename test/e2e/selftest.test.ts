import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, renameSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { skipWhen } from "../support/skip-when.js";
import { execute, expectAllowed, http } from "./harness.js";

const selftest = async () => {
  const res = await http("/selftest", { method: "POST" });
  const body = (await res.json()) as {
    mode: string;
    probedAt: string;
    checks: Record<string, boolean>;
    protections: Array<{ category: string; proof: { proved: boolean | null; probedAt: string } }>;
  };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body;
};

/**
 * Every agentsh-unixwrap the agentsh server under test could find on its own PATH, in its own
 * root (/proc/PID/root: the container's file system when the stack is the image). All of them
 * are hidden: with one left further down PATH, agentsh would still find a helper.
 */
function helpersOfAgentshServer(): string[] {
  const out = execFileSync("ss", ["-Hltnp", "sport = :18080"], { encoding: "utf8" });
  const pid = out.match(/pid=(\d+)/)?.[1];
  if (!pid) throw new Error(`no agentsh listener on :18080: ${out}`);
  const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
  const searchPath = env.find((v) => v.startsWith("PATH="))?.slice(5) ?? "";
  const helpers = [
    ...new Set(
      searchPath
        .split(":")
        .map((dir) => path.join(`/proc/${pid}/root`, dir, "agentsh-unixwrap"))
        .filter((candidate) => existsSync(candidate)),
    ),
  ];
  if (helpers.length === 0)
    throw new Error(`agentsh-unixwrap is not on the agentsh server's PATH ${searchPath}`);
  return helpers;
}

const SANDBOX = "sandbox wrapper applied (agentsh-unixwrap: seccomp + Landlock)";

describe("protection proven continuously", () => {
  it(
    "enforcement broken on purpose (agentsh-unixwrap taken off agentsh's PATH, the documented fail-open): POST /selftest sees the must-block canaries fail, /health turns 503, /execute refuses; restored: a fresh round proves it again [local only]",
    skipWhen("remote"),
    async () => {
      const before = await selftest();
      expect(before.mode).toBe("enforced");
      expect((await http("/health")).status).toBe(200);

      // The real precondition of seccomp + Landlock in agentsh 0.16.9: the helper on the server's
      // PATH. Without it agentsh runs commands unsandboxed and says nothing; only a probe sees it.
      const helpers = helpersOfAgentshServer();
      const hidden = (helper: string) => `${helper}.e2e-hidden-${process.pid}`;
      for (const helper of helpers) renameSync(helper, hidden(helper));
      try {
        const broken = await selftest();
        expect(broken.mode).toBe("degraded");
        expect(broken.checks[SANDBOX]).toBe(false);
        expect(Date.parse(broken.probedAt)).toBeGreaterThan(Date.parse(before.probedAt));
        expect(broken.protections.find((p) => p.category === "sandbox wrapper")?.proof.proved).toBe(
          false,
        );
        const health = await http("/health");
        const body = (await health.json()) as { enforcement: { mode: string; problems: string[] } };
        expect(health.status).toBe(503);
        expect(body.enforcement.mode).toBe("degraded");
        expect(body.enforcement.problems.join("\n")).toContain(SANDBOX);
        const refused = await http("/execute", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ command: "echo should-not-run" }),
        });
        expect(refused.status).toBe(503);
        expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
          "enforcement_degraded",
        );
      } finally {
        for (const helper of helpers) renameSync(hidden(helper), helper);
        // Recover even when an assertion above failed, so later files meet an enforced service.
        await http("/selftest", { method: "POST" }).catch(() => undefined);
      }

      const after = await selftest();
      expect(after.mode, JSON.stringify(after.checks)).toBe("enforced");
      expect((await http("/health")).status).toBe(200);
      expectAllowed(await execute("echo again"), "again\n");
    },
  );
});
