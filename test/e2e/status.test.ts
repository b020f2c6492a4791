import { describe, expect, it } from "vitest";
import {
  demo,
  entry,
  execute,
  expectAllowed,
  expectBlocked,
  expectedCommandUser,
  http,
  layerEnforced,
} from "./harness.js";

describe("installation and status", () => {
  it("/health is 200 with every enforcement check passed by canary commands", async () => {
    const res = await http("/health");
    const body = (await res.json()) as {
      status: string;
      agentsh: { server: string };
      enforcement: { mode: string; checks: Record<string, boolean>; problems: string[] };
      bundle: { digest: string; policy: string };
    };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.status).toBe("ok");
    expect(body.agentsh.server).toBe("reachable");
    expect(body.enforcement.mode).toBe("enforced");
    expect(body.enforcement.problems).toEqual([]);
    expect(Object.keys(body.enforcement.checks)).toEqual(
      expect.arrayContaining([
        "sandbox wrapper applied (agentsh-unixwrap: seccomp + Landlock)",
        "nested command denied by rule (seccomp execve interception)",
        "file read denied by rule (seccomp file monitor)",
        "raw TCP connect outside the agentsh proxy refused (launcher: Landlock TCP rules)",
        "a path outside the command's file rules refused (launcher: Landlock file rules)",
        "signal to the service refused (launcher: uid drop, or its process guard)",
        "commands hold no capability (launcher: chown to another uid refused)",
        "UDP socket refused (launcher: seccomp socket filter)",
      ]),
    );
    // The uid canary runs where the uid drop is in force (CAP_SYS_PTRACE granted).
    expect(
      "command runs as an unprivileged slot uid (launcher: uid drop)" in body.enforcement.checks,
    ).toBe(await layerEnforced("uid-drop"));
    expect(Object.values(body.enforcement.checks).every(Boolean)).toBe(true);
    expect(body.bundle.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(body.bundle.policy).toBe("governed-executor");
  });

  it("/demo/status reports the kernel, the enforcement checks, and that agentsh is off limits", async () => {
    const res = await http("/demo/status");
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      service: { enforcement: { mode: string } };
      results: Parameters<typeof entry>[0];
    };
    expect(body.service.enforcement.mode).toBe("enforced");
    expectAllowed(entry(body.results, "uname -r").result, /^\d+\.\d+/);
    // One unprivileged account per command slot where the uid drop is enforced (isolation.yaml).
    expectAllowed(entry(body.results, "id -un").result, await expectedCommandUser());
    const probe = entry(body.results, "agentsh session list");
    expect(probe.ranBy).toBeUndefined();
    expect(probe.result.decision?.rule).toBe("default-deny-execve");
  });

  it("/demo/status carries agentsh --version and agentsh detect, run by the service itself", async () => {
    const res = await http("/demo/status");
    const body = (await res.json()) as { results: Parameters<typeof entry>[0] };
    const [version, detect] = body.results;
    expect(version).toMatchObject({ command: "agentsh --version", ranBy: "service" });
    expect(version?.result).toMatchObject({ success: true, blocked: false, exitCode: 0 });
    expect(version?.result.stdout).toMatch(/^agentsh 0\.16\.9/);
    expect(detect).toMatchObject({ command: "agentsh detect", ranBy: "service" });
    expect(detect?.result).toMatchObject({ success: true, blocked: false, exitCode: 0 });
    // agentsh 0.16.9 prints the report on stderr.
    for (const section of ["Protection Score", "FILE PROTECTION", "COMMAND CONTROL", "NETWORK"])
      expect(detect?.result.stderr).toContain(section);
    expect(detect?.result.stderr).toMatch(/seccomp/);
  });

  it.each(["agentsh --version", "agentsh detect", "/usr/local/bin/agentsh session list"])(
    "governed commands cannot run the agentsh CLI: %s (so they cannot drive the agentsh server)",
    async (command) => {
      const result = await execute(command);
      expectBlocked(result, "default-deny-execve", "command");
      expect(result.stdout).toBe("");
    },
  );

  it("governed commands cannot read the agentsh API key file", async () => {
    const result = await execute("cat /var/lib/*/api-keys.yaml");
    expect(result.success).toBe(false);
    expect(result.stdout).not.toMatch(/key:/);
  });

  it("a governed command cannot reach the agentsh API outside the proxy (kernel), nor with it (rule)", async () => {
    const result = await execute(
      `curl -s --noproxy '*' -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:18080/api/v1/sessions -H 'Content-Type: application/json' -d '{"id":"escape","workspace":"/"}'`,
    );
    // Landlock lets the command connect to the proxy's port only: the connect is refused (curl
    // exit 7, no HTTP status). Before the launcher this reached the API and got 401 (its key).
    expect(result.stdout).toBe("000");
    expect(result.exitCode).toBe(7);
  });

  it("governed commands cannot read other processes' environment (where secrets live)", async () => {
    const result = await execute("cat /proc/1/environ /proc/$PPID/environ");
    expect(result.success).toBe(false);
    expect(result.stdout).toBe("");
    // The file monitor names the rule for /proc/<pid>/environ.
    expect(result.denials?.map((d) => d.rule) ?? [result.decision?.rule]).toContain(
      "deny-process-secrets",
    );
  });

  it("the governed environment carries none of the service's secrets", async () => {
    const result = await execute("env");
    expectAllowed(result);
    expect(result.stdout).not.toMatch(/^(API_KEY|AGENTSH_API_KEY)=/m);
    expect(result.stdout).toMatch(/^HTTPS?_PROXY=http:\/\/127\.0\.0\.1:\d+$/m);
    // agentsh's LLM proxy (which forwards outside the network rules) is switched off.
    expect(result.stdout).not.toMatch(/^(ANTHROPIC|OPENAI)_BASE_URL=/m);
  });
});

describe("allowed commands", () => {
  it("whoami (the slot user where the uid drop is enforced, else root, as /health says)", async () => {
    expectAllowed(await execute("whoami"), await expectedCommandUser());
  });

  it.each([
    ["pwd", "/workspace\n"],
    ['echo "hello world"', "hello world\n"],
  ])("%s", async (command, stdout) => {
    expectAllowed(await execute(command), stdout);
  });

  it("ls /workspace", async () => {
    expectAllowed(await execute("ls /workspace"));
  });

  it("/demo/allowed: every command ran as expected", async () => {
    const entries = await demo("allowed");
    expect(entries.map((e) => [e.command, e.asExpected])).toEqual(
      entries.map((e) => [e.command, true]),
    );
  });
});
