import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { skipWhen } from "../support/skip-when.js";
import { demo, entry, execute, expectAllowed, expectBlocked } from "./harness.js";

/** Local runs share the host filesystem with the stack, so effects are checked on disk. */
const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe("filesystem", () => {
  it("workspace write and read", async () => {
    expectAllowed(await execute("echo testdata > /workspace/demo-test.txt"));
    expectAllowed(await execute("cat /workspace/demo-test.txt"), "testdata\n");
  });

  it("a workspace write lands on disk [local only]", skipWhen("remote"), async () => {
    expectAllowed(await execute("echo e2e-$((6*7)) > /workspace/e2e-proof.txt"));
    expect(readFileSync("/workspace/e2e-proof.txt", "utf8")).toBe("e2e-42\n");
  });

  it("system files are readable", async () => {
    expectAllowed(await execute("cat /etc/hostname"), /\S/);
  });

  const writes: Array<[string, string]> = [
    ["echo test > /etc/test.txt", "/etc/test.txt"],
    ["echo test > /usr/bin/test-e2e", "/usr/bin/test-e2e"],
    ["mkdir /etc/testdir", "/etc/testdir"],
    ["cp /etc/hostname /etc/hostname.bak", "/etc/hostname.bak"],
  ];
  it.each(writes)("%s is blocked by deny-system-write", async (command) => {
    const result = await execute(command);
    expectBlocked(result, "deny-system-write", "file");
  });

  it("…and none of those paths exist afterwards [local only]", skipWhen("remote"), async () => {
    for (const [command, path] of writes) {
      await execute(command);
      expect(existsSync(path), path).toBe(false);
    }
  });

  it("symlink escape to /etc/shadow: Landlock refuses the read in the kernel", async () => {
    const command =
      "rm -f /workspace/shadow-link && ln -s /etc/shadow /workspace/shadow-link && cat /workspace/shadow-link";
    const result = await execute(command);
    // Landlock denials carry no agentsh rule; what matters is that nothing was read. agentsh
    // 0.16.9 cannot name one: its symlinkat check sees only the link path (/workspace/…, allowed)
    // and the open through the link is checked unresolved; only the kernel follows the link.
    // So the outcome stays `failed` (the reference suite's symlink case: 67/68). If this starts
    // failing because a rule appears, update docs/security.md.
    expect(result.outcome).toBe("failed");
    expect(result.stderr).toMatch(/Permission denied/);
    expect(result.stdout).toBe("");
    const entries = await demo("filesystem");
    expect(entry(entries, command).asExpected).toBe(true);
  });

  it("a hard link to /etc/shadow is blocked by deny-sensitive-files (linkat checks both paths)", async () => {
    const result = await execute(
      "rm -f /workspace/shadow-hardlink; ln /etc/shadow /workspace/shadow-hardlink; ls /workspace/shadow-hardlink",
    );
    expectBlocked(result, "deny-sensitive-files", "file");
    expect(result.stdout).toBe("");
  });

  it("/proc/self/root cannot be used to reach /etc/shadow either", async () => {
    const result = await execute("cat /proc/self/root/etc/shadow");
    expect(result.success).toBe(false);
    expect(result.stdout).toBe("");
  });

  it("/demo/filesystem: every command as expected", async () => {
    const entries = await demo("filesystem");
    expect(entries.map((e) => [e.command, e.asExpected])).toEqual(
      entries.map((e) => [e.command, true]),
    );
  });
});

describe("privilege escalation (files)", () => {
  it("cat /etc/shadow is blocked by deny-sensitive-files and prints nothing", async () => {
    const result = await execute("cat /etc/shadow");
    expectBlocked(result, "deny-sensitive-files", "file");
    expect(result.decision?.target).toBe("/etc/shadow");
    expect(result.stdout).toBe("");
  });

  it("appending to /etc/sudoers is blocked by deny-sensitive-files", async () => {
    expectBlocked(await execute("echo test >> /etc/sudoers"), "deny-sensitive-files", "file");
  });

  it("…and /etc/sudoers is unchanged [local only]", skipWhen("remote"), async () => {
    const before = sha256("/etc/sudoers");
    await execute("echo 'ALL ALL=(ALL) NOPASSWD: ALL' >> /etc/sudoers");
    expect(sha256("/etc/sudoers")).toBe(before);
  });
});
