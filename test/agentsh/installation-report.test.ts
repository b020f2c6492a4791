import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectInstallationReport } from "../../src/agentsh/installation-report.js";

/** A stand-in agentsh CLI: `--version` on stdout, `detect` on stderr (as 0.16.9 does). */
const STAND_IN = `#!/bin/sh
case "$1" in
  --version) echo "agentsh 0.16.9" ;;
  detect) echo "Protection Score: 85/100" >&2; env >&2 ;;
  *) exit 2 ;;
esac
`;

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "installation-report-"));
  await writeFile(path.join(dir, "agentsh"), STAND_IN);
  await writeFile(path.join(dir, "slow-agentsh"), "#!/bin/sh\nexec sleep 30\n");
  await chmod(path.join(dir, "agentsh"), 0o755);
  await chmod(path.join(dir, "slow-agentsh"), 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("collectInstallationReport", () => {
  it("runs agentsh --version and agentsh detect, keeping stderr, marked as run by the service", async () => {
    process.env.SECRET_FOR_TEST = "must-not-leak";
    const report = await collectInstallationReport(path.join(dir, "agentsh"), {
      now: () => new Date("2026-01-01T00:00:00Z"),
    });
    delete process.env.SECRET_FOR_TEST;
    expect(report.collectedAt).toBe("2026-01-01T00:00:00.000Z");
    expect(report.entries.map((e) => [e.command, e.ranBy, e.result.outcome])).toEqual([
      ["agentsh --version", "service", "ok"],
      ["agentsh detect", "service", "ok"],
    ]);
    const [version, detect] = report.entries;
    expect(version?.result).toMatchObject({
      success: true,
      stdout: "agentsh 0.16.9\n",
      blocked: false,
      decision: null,
    });
    expect(detect?.result.stderr).toContain("Protection Score: 85/100");
    // Only PATH and LANG are passed: nothing of the service's environment.
    expect(detect?.result.stderr).not.toContain("SECRET_FOR_TEST");
  });

  it("reports a missing CLI as failed instead of throwing", async () => {
    const report = await collectInstallationReport(path.join(dir, "missing"));
    for (const entry of report.entries) {
      expect(entry.result).toMatchObject({ success: false, exitCode: null, outcome: "failed" });
      expect(entry.result.stderr).toContain("ENOENT");
    }
  });

  it("gives up on a CLI that does not answer within the bound", async () => {
    const started = Date.now();
    const report = await collectInstallationReport(path.join(dir, "slow-agentsh"), {
      timeoutMs: 200,
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(report.entries[0]?.result.success).toBe(false);
    expect(report.entries[0]?.result.stderr).toContain("no answer within 200 ms");
  });
});
