import { describe, expect, it } from "vitest";
import { demoRoutes } from "../../src/demo-scenarios.js";
import { demo, entry, execute, expectAllowed, expectBlocked } from "./harness.js";

/**
 * Every denied tool exists on the test machine and in the image, so the exec is really
 * attempted and agentsh's seccomp execve check is what stops it.
 */
describe("command blocking (/demo/commands)", () => {
  // The blocked commands of /demo/commands, with the rules the scenario table names.
  const cases = (demoRoutes.find((r) => r.name === "commands")?.scenarios ?? [])
    .filter((s) => s.expect === "blocked")
    .map((s) => [s.command, s.rule ?? ""] as const);

  it.each(cases)("%s is blocked by %s", async (command, rule) => {
    const result = await execute(command);
    expectBlocked(result, rule, "command");
    expect(result.exitCode).toBe(126);
    expect(result.stdout).toBe("");
  });

  it('echo "this is allowed" runs', async () => {
    expectAllowed(await execute('echo "this is allowed"'), "this is allowed\n");
  });

  it("a denied tool is blocked even when hidden in a pipeline, and the rest still runs", async () => {
    const result = await execute("echo before; sudo id; echo after");
    expectBlocked(result, "deny-privilege-escalation");
    expect(result.stdout).toBe("before\nafter\n");
  });

  it("the kill builtin is disabled and /usr/bin/kill is denied", async () => {
    const result = await execute("kill -0 1");
    expectBlocked(result, "deny-process-control");
  });
});

describe("blocked demo (/demo/blocked)", () => {
  it("nc, nmap and the metadata endpoint are all blocked with rules", async () => {
    const entries = await demo("blocked");
    expect(entries.every((e) => e.asExpected)).toBe(true);
    expect(entry(entries, "nc -h").result.decision?.rule).toBe("deny-network-tools");
    expect(entry(entries, "nmap --version").result.decision?.rule).toBe("deny-network-tools");
    expect(
      entry(entries, "curl -s --max-time 3 http://169.254.169.254/latest/meta-data/").result
        .decision?.rule,
    ).toBe("deny-cloud-metadata");
  });
});

describe("privilege escalation (commands)", () => {
  it.each([
    ["sudo whoami", "deny-privilege-escalation"],
    ["su - root -c whoami", "deny-privilege-escalation"],
    ["chroot / /bin/bash -c whoami", "deny-privilege-escalation"],
    ["nsenter -t 1 -m -u -i -n -p -- /bin/bash", "deny-privilege-escalation"],
  ])("%s is blocked by %s", async (command, rule) => {
    const result = await execute(command);
    expectBlocked(result, rule, "command");
    expect(result.stdout).not.toMatch(/root/);
  });
});

describe("dev tools (/demo/devtools)", () => {
  it.each([
    ["python3 --version", /^Python 3\.\d+/],
    ["node --version", /^v\d+\./],
    ["git --version", /^git version /],
    ["curl --version | head -1", /^curl \d/],
    ["pip3 --version", /^pip \d/],
    ['echo "hello world" | grep hello', /^hello world\n$/],
  ])("%s", async (command, stdout) => {
    expectAllowed(await execute(command), stdout);
  });

  it("python3 and node run real programs in the workspace", async () => {
    expectAllowed(
      await execute(
        "cd /workspace && printf 'print(sum(range(10)))\\n' > e2e.py && python3 e2e.py && node -e 'console.log(6*7)'",
      ),
      "45\n42\n",
    );
  });

  it("git works in the workspace", async () => {
    const result = await execute(
      // A directory of this run's own: other stacks on the same machine share /workspace, and a
      // root-owned e2e-repo left by one is not removable by this stack's unprivileged slot user.
      `d=/workspace/e2e-repo-${process.pid} && rm -rf "$d" && git init -q "$d" && cd "$d" && git -c user.email=a@b -c user.name=e2e commit -q --allow-empty -m first && git log --oneline | wc -l; rc=$?; rm -rf "$d"; exit $rc`,
    );
    expectAllowed(result, "1\n");
  });
});
