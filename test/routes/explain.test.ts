import { describe, expect, it } from "vitest";
import { buildTestApp, postJson, readJson } from "../support/test-app.js";

const KEY = "k".repeat(24);

async function explain(command: string, options: Parameters<typeof buildTestApp>[0] = {}) {
  const t = buildTestApp(options);
  const res = await t.app.request("/explain", postJson({ command }));
  expect(res.status).toBe(200);
  return { body: await readJson(res), executor: t.executor };
}

describe("POST /explain", () => {
  it("names the rule a blocked program hits, and runs nothing", async () => {
    const { body, executor } = await explain("sudo whoami");
    expect(body).toMatchObject({
      verdict: "blocked",
      rule: "deny-privilege-escalation",
      executed: false,
      programs: [
        { program: "sudo", executable: "/usr/bin/sudo", rule: "deny-privilege-escalation" },
      ],
    });
    expect(executor.commands).toEqual([]);
  });

  it("allowed: every program, path and URL allowed; builtins meet no command rule", async () => {
    const { body } = await explain(
      'echo "hi" > /workspace/a.txt && cat /workspace/a.txt | grep hi',
    );
    expect(body.verdict).toBe("allowed");
    expect(body.programs.map((p: { decision: string }) => p.decision)).toEqual([
      "builtin",
      "allow",
      "allow",
    ]);
    expect(body.files).toContainEqual(
      expect.objectContaining({
        path: "/workspace/a.txt",
        operation: "create",
        rule: "allow-workspace",
      }),
    );
  });

  it("files: redirections and known tools, relative paths from the workspace", async () => {
    expect((await explain("echo x >> /etc/sudoers")).body).toMatchObject({
      verdict: "blocked",
      rule: "deny-sensitive-files",
    });
    expect((await explain("cp /etc/hostname /etc/hostname.bak")).body.rule).toBe(
      "deny-system-write",
    );
    expect((await explain("cat /etc/hostname")).body.verdict).toBe("allowed");
    expect((await explain("cd /etc && mkdir testdir")).body.rule).toBe("deny-system-write");
    expect((await explain("touch notes.txt")).body.files[0].path).toBe("/workspace/notes.txt");
  });

  it("network: URLs in arguments, by address or by resolved name", async () => {
    expect((await explain("curl -s http://169.254.169.254/latest/")).body.rule).toBe(
      "deny-cloud-metadata",
    );
    const named = await explain("curl -s https://sneaky.example/", {
      hosts: { "sneaky.example": ["10.9.9.9"] },
    });
    expect(named.body).toMatchObject({ verdict: "blocked", rule: "deny-private-networks" });
    expect(named.body.network[0]).toMatchObject({ host: "sneaky.example", port: 443 });
    expect((await explain("curl -s --max-time 3 http://127.0.0.1:3000/")).body.verdict).toBe(
      "allowed",
    );
  });

  it("looks inside bash -c and eval with literal strings; env/timeout run their program", async () => {
    expect((await explain("bash -c 'id && sudo id'")).body.rule).toBe("deny-privilege-escalation");
    expect((await explain('eval "pkill node"')).body.rule).toBe("deny-process-control");
    expect((await explain("timeout 5 nc -l 9000")).body.rule).toBe("deny-network-tools");
    expect((await explain("env FOO=1 ssh host")).body.rule).toBe("deny-network-tools");
    // kill is not a builtin here (bash_startup.sh disables it): it meets the command rules.
    expect((await explain("kill -9 1")).body.rule).toBe("deny-process-control");
  });

  it("undecidable: variables, substitutions, scripts, eval, branches, symlinks — each said", async () => {
    const cases: Array<[string, RegExp]> = [
      ['d=$(mktemp -d) && "$d/tool"', /program name .* decided at run time/],
      ['eval "$CMD"', /eval runs a string built at run time/],
      ["bash ./build.sh", /runs the script \.\/build\.sh/],
      ["python3 -c 'import os'", /python3 runs code/],
      ["source ./env.sh", /source runs the script/],
      ["cat $FILE", /cat gets a path decided at run time/],
      ["ls /tmp/*.log", /decided at run time/],
      ["true || sudo id", /denied by deny-privilege-escalation if the run gets there/],
      ["missing-tool --flag", /not found on the PATH/],
      [
        "ln -s /etc/shadow /workspace/l && cat /workspace/l",
        /symlink the command creates .*Landlock/,
      ],
    ];
    for (const [command, reason] of cases) {
      const { body } = await explain(command);
      expect(body.verdict, command).toBe("undecidable");
      expect(body.runtime.join("\n"), command).toMatch(reason);
    }
  });

  it("a command bash cannot parse is undecidable, with the parser's message", async () => {
    const { body } = await explain("echo 'unterminated");
    expect(body.verdict).toBe("undecidable");
    expect(body.reasons[0]).toMatch(/cannot parse.*without closing quote/);
  });

  it("same auth, validation and body as /execute", async () => {
    const t = buildTestApp({ env: { API_KEY: KEY } });
    expect((await t.app.request("/explain", postJson({ command: "id" }))).status).toBe(401);
    const ok = await t.app.request("/explain", postJson({ command: "id" }, { "X-API-Key": KEY }));
    expect(ok.status).toBe(200);
    const bad = await t.app.request("/explain", postJson({ command: "" }, { "X-API-Key": KEY }));
    expect(bad.status).toBe(400);
    expect((await readJson(bad)).error.code).toBe("validation_failed");
    const extra = await t.app.request(
      "/explain",
      postJson({ command: "id", shell: "zsh" }, { "X-API-Key": KEY }),
    );
    expect(extra.status).toBe(400);
    expect(t.executor.commands).toEqual([]);
  });

  it("is rate limited like /execute, in its own bucket", async () => {
    const t = buildTestApp({ env: { RATE_LIMIT_EXECUTE: "2" } });
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      statuses.push((await t.app.request("/explain", postJson({ command: "id" }))).status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect((await t.app.request("/execute", postJson({ command: "id" }))).status).toBe(200);
  });
});
