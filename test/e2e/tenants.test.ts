import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import type { CommandResult } from "../../src/command-result.js";
import type { SessionInfo } from "../../src/sessions/contract.js";
import { skipWhen } from "../support/skip-when.js";
import {
  BASE_URL,
  canaryConnections,
  expectAllowed,
  expectBlocked,
  http,
  OTHER_API_KEY,
  REMOTE,
  streamExecute,
} from "./harness.js";

/**
 * Two tenants side by side on the real stack (test/e2e/tenants.yaml, given to the stack as
 * TENANTS_FILE by scripts/test's e2e-tenants stage): alpha (policy default, operator) and beta
 * (policy strict, 96 MiB per command), each with 2 of the 4 command slots. Skipped (declared) in the other stages.
 * beta's commands run on the agentsh server scripts/boot starts for strict (127.0.0.1:18081):
 * agentsh applies network rules and env_policy from its server's policy, not the session's.
 */
const ALPHA = process.env.E2E_API_KEY ?? "";
const BETA = OTHER_API_KEY ?? "";
const tenantsStage = (name: string, body: () => void) =>
  describe(name, skipWhen("no-tenants-file"), body);

const sessions: { id: string; key: string }[] = [];

async function run(command: string, key: string, sessionId?: string): Promise<CommandResult> {
  const res = await http("/execute", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-API-Key": key },
    body: JSON.stringify(sessionId ? { command, sessionId } : { command }),
  });
  const body = (await res.json()) as { result: CommandResult };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.result;
}

/** exit 3 = PermissionError (EACCES/EPERM), 0 = it worked, 4 = another OSError. */
const refusedProbe = (body: string) =>
  `python3 -c 'import os, sys\ntry:\n    ${body}\nexcept PermissionError:\n    sys.exit(3)\nexcept OSError as e:\n    print(e)\n    sys.exit(4)\nsys.exit(0)'`;

afterAll(async () => {
  await Promise.all(
    sessions.map(({ id, key }) =>
      http(`/sessions/${id}`, { method: "DELETE", headers: { "X-API-Key": key } }),
    ),
  );
});

tenantsStage("tenants: each key's commands in its tenant's own places", () => {
  const marker = `m${Date.now()}`;

  it("plain commands start in the tenant's workspace, with a scratch HOME of the tenant's", async () => {
    expectAllowed(
      await run("pwd; echo $HOME", ALPHA),
      /^\/sessions\/tenant-alpha\n\/home\/gexec\/tenant-alpha/,
    );
    expectAllowed(
      await run("pwd; echo $HOME", BETA),
      /^\/sessions\/tenant-beta\n\/home\/gexec\/tenant-beta/,
    );
  });

  it("beta can neither read, list nor write alpha's workspace (positive control: alpha can)", async () => {
    expectAllowed(
      await run(`echo ${marker} > secret.txt && chmod 600 secret.txt && cat secret.txt`, ALPHA),
      `${marker}\n`,
    );
    for (const probe of [
      'open("/sessions/tenant-alpha/secret.txt").read()',
      'os.listdir("/sessions/tenant-alpha")',
      'open("/sessions/tenant-alpha/planted", "w").write("x")',
    ]) {
      const result = await run(refusedProbe(probe), BETA);
      expect(result.exitCode, `${probe}: ${JSON.stringify(result)}`).toBe(3);
    }
    expectAllowed(await run("ls", ALPHA), "secret.txt\n");
  });

  it("beta cannot read alpha's scratch (HOME/TMPDIR) nor a file alpha left in /tmp", async () => {
    expectAllowed(
      await run(`echo ${marker} > "$HOME/note" && echo "$HOME"`, ALPHA),
      /^\/home\/gexec\/tenant-alpha/,
    );
    // /tmp is nobody's (the bundle's deny-shared-tmp and the launcher's Landlock): alpha's
    // attempt is refused, and beta's read below finds nothing or is refused.
    await run(`echo ${marker} > /tmp/alpha-${marker}`, ALPHA);
    const home = (await run("echo $HOME", ALPHA)).stdout.trim();
    expectAllowed(await run(`cat "$HOME/note"`, ALPHA), `${marker}\n`);
    for (const path of [`${home}/note`, `/tmp/alpha-${marker}`]) {
      const result = await run(refusedProbe(`open("${path}").read()`), BETA);
      // 3: refused; 4 (FileNotFoundError) only for /tmp, where alpha could not write either.
      expect([3, ...(path.startsWith("/tmp") ? [4] : [])], JSON.stringify(result)).toContain(
        result.exitCode,
      );
    }
  });

  it("beta cannot read alpha's session directory (positive control: alpha's own session can)", async () => {
    const res = await http("/sessions", { method: "POST", headers: { "X-API-Key": ALPHA } });
    const { session } = (await res.json()) as { session: SessionInfo };
    expect(res.status).toBe(201);
    sessions.push({ id: session.id, key: ALPHA });
    expectAllowed(
      await run(`echo ${marker} > s.txt && cat s.txt`, ALPHA, session.id),
      `${marker}\n`,
    );
    const dir = (await run("pwd", ALPHA, session.id)).stdout.trim();
    const result = await run(refusedProbe(`open("${dir}/s.txt").read()`), BETA);
    expect(result.exitCode, JSON.stringify(result)).toBe(3);
    // Nor may beta use alpha's session.
    const other = await http("/execute", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-API-Key": BETA },
      body: JSON.stringify({ command: "id", sessionId: session.id }),
    });
    expect(other.status).toBe(404);
  });

  it("beta cannot signal alpha's running command [local only]", skipWhen("remote"), async () => {
    const sleeper = run(`M=${marker}-sig exec sleep 12`, ALPHA);
    const deadline = Date.now() + 8_000;
    let pids: number[] = [];
    while (pids.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      pids = pidsWithEnv(`M=${marker}-sig`);
    }
    expect(pids.length, "alpha's sleep started").toBeGreaterThan(0);
    for (const pid of pids) {
      const probe = run(refusedProbe(`os.kill(${nsPid(pid)}, 9)`), BETA);
      if (process.env.E2E_PROFILE === "render") {
        // Every command uid 0, no Landlock signal scope: tenants take turns, so beta's command
        // starts only once alpha's has ended, and finds no process to signal.
        let alphaDone = false;
        void sleeper.then(() => {
          alphaDone = true;
        });
        const result = await probe;
        expect(alphaDone, "beta's command ran only after alpha's ended").toBe(true);
        expect(result.exitCode, JSON.stringify(result)).toBe(4);
        expect(result.stdout).toMatch(/No such process/);
      } else {
        const result = await probe;
        expect(result.exitCode, JSON.stringify(result)).toBe(3);
      }
    }
    // Positive control: beta may signal its own child.
    expectAllowed(
      await run(
        refusedProbe(
          'import subprocess; p = subprocess.Popen(["sleep", "5"]); os.kill(p.pid, 9); p.wait()',
        ),
        BETA,
      ),
    );
    const alpha = await sleeper;
    expect(alpha.exitCode, "alpha's sleep ran to its end").toBe(0);
  });
});

tenantsStage("tenants: each tenant's policy (agentsh sessions created with it)", () => {
  it("command rule: beta (strict) may not run git; alpha (default) may", async () => {
    expectAllowed(await run("git --version", ALPHA), /^git version/);
    expectBlocked(await run("git --version", BETA), "strict-deny-git", "command");
  });

  it("file rule: beta may not read /usr/share/common-licenses; alpha may", async () => {
    const read = "grep -m1 -o GNU /usr/share/common-licenses/GPL-3";
    expectAllowed(await run(read, ALPHA), "GNU\n");
    expectBlocked(await run(read, BETA), "strict-deny-licence-texts", "file");
  });

  it("resource limit: 200 MiB fit alpha's command (bundle: 384 MiB), not beta's (its own 96 MiB)", async () => {
    const probe = `python3 -c 'b = bytearray(200 * 1024 ** 2); print("allocated")'; echo rc=$?`;
    expectAllowed(await run(probe, ALPHA), "allocated\nrc=0\n");
    const beta = await run(probe, BETA);
    expect(beta.stdout).toBe("rc=137\n");
    expect(beta.decision).toMatchObject({ rule: "limit-memory", layer: "limit" });
    expect(beta.decision?.message).toContain("96 MiB");
  });

  it("network rules of both policies: metadata is blocked for each tenant, and nothing reached it", async () => {
    const probe = "curl -s --max-time 3 http://169.254.169.254/latest/meta-data/";
    for (const key of [ALPHA, BETA]) {
      const since = Date.now() - 5;
      expectBlocked(await run(probe, key), "deny-cloud-metadata", "network");
      if (!REMOTE) {
        // The canary listens on the stand-in metadata address: nothing reached it.
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect(canaryConnections("169.254.169.254", since)).toEqual([]);
      }
    }
  });

  it("network rule of beta's own policy (its agentsh server's proxy): beta may not reach example.com, which alpha reaches", async () => {
    const probe = "curl -sk --max-time 5 -o /dev/null -w '%{http_code}' https://example.com/";
    const betaSince = Date.now() - 5;
    expectBlocked(await run(probe, BETA), "strict-deny-example-com", "network");
    if (!REMOTE) {
      // The canary listens on example.com's stand-in address: nothing of beta's reached it.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(canaryConnections("203.0.113.10", betaSince)).toEqual([]);
    }
    // Positive control: the same request of alpha (default.yaml's allow-https) is answered.
    const alphaSince = Date.now() - 5;
    expectAllowed(await run(probe, ALPHA), "200");
    if (!REMOTE) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(canaryConnections("203.0.113.10", alphaSince).length).toBeGreaterThan(0);
    }
    // /explain answers each with its policy, and agentsh's engine (beta's: its own server's)
    // agrees.
    const explain = async (key: string) => {
      const res = await http("/explain", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-API-Key": key },
        body: JSON.stringify({ command: probe }),
      });
      return (await res.json()) as {
        verdict: string;
        rule: string | null;
        agentsh: { checked: number; disagreements: string[] } | null;
      };
    };
    const beta = await explain(BETA);
    expect(beta).toMatchObject({ verdict: "blocked", rule: "strict-deny-example-com" });
    expect(beta.agentsh?.checked, JSON.stringify(beta)).toBeGreaterThan(0);
    expect(beta.agentsh?.disagreements).toEqual([]);
    expect((await explain(ALPHA)).verdict).not.toBe("blocked");
  });

  it("env_policy of beta's own policy: a session of beta does not pass package-manager settings (PIP_*, npm_config_*) to its commands, streamed ones included; alpha's does", async () => {
    const shown = async (key: string) => {
      const res = await http("/sessions", { method: "POST", headers: { "X-API-Key": key } });
      const { session } = (await res.json()) as { session: SessionInfo };
      expect(res.status).toBe(201);
      sessions.push({ id: session.id, key });
      const exported = await http("/execute", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-API-Key": key },
        body: JSON.stringify({
          command:
            "export PIP_INDEX_URL=https://pypi.org/simple npm_config_ignore_scripts=true KEPT_BY_BOTH=1",
          sessionId: session.id,
        }),
      });
      const body = (await exported.json()) as { session: { envNotCarried?: string[] } };
      const listing =
        "env | grep -E '^(PIP_INDEX_URL|npm_config_ignore_scripts|KEPT_BY_BOTH)=' | LC_ALL=C sort";
      const buffered = (await run(listing, key, session.id)).stdout;
      // agentsh 0.16.9 applies no env_policy to streamed commands: what the service carries is
      // what they get, so the service carries only what the session's own policy passes.
      const streamed = await streamExecute(
        { command: listing, sessionId: session.id },
        { apiKey: key },
      );
      const result = streamed.events.find((e) => e.event === "result")?.data as {
        result: CommandResult;
      };
      return {
        notCarried: body.session.envNotCarried ?? [],
        buffered,
        streamed: result.result.stdout,
      };
    };
    const all =
      "KEPT_BY_BOTH=1\nPIP_INDEX_URL=https://pypi.org/simple\nnpm_config_ignore_scripts=true\n";
    expect(await shown(ALPHA)).toEqual({ notCarried: [], buffered: all, streamed: all });
    expect(await shown(BETA)).toEqual({
      notCarried: ["PIP_INDEX_URL", "npm_config_ignore_scripts"],
      buffered: "KEPT_BY_BOTH=1\n",
      streamed: "KEPT_BY_BOTH=1\n",
    });
  });

  it("the agentsh servers of tenant policies are the agentsh API: their port is denied to every tenant (deny-agentsh-api)", async () => {
    for (const key of [ALPHA, BETA]) {
      expectBlocked(
        await run("curl -s --max-time 3 http://127.0.0.1:18081/health", key),
        "deny-agentsh-api",
        "network",
      );
    }
  });

  it("/health lists beta's policy server, reachable", async () => {
    const res = await http("/health");
    const health = (await res.json()) as {
      agentsh: { policies?: Record<string, { server: string; url: string }> };
    };
    expect(health.agentsh.policies).toEqual({
      strict: { server: "reachable", url: "http://127.0.0.1:18081" },
    });
  });

  it("a tenant's session gets its policy too", async () => {
    const res = await http("/sessions", { method: "POST", headers: { "X-API-Key": BETA } });
    const { session } = (await res.json()) as { session: SessionInfo };
    expect(res.status).toBe(201);
    sessions.push({ id: session.id, key: BETA });
    expectBlocked(await run("git --version", BETA, session.id), "strict-deny-git", "command");
  });

  it("DLP of beta's own (a codename pattern): redacted in beta's answer, stream and audit entry; alpha's output keeps it", async () => {
    const tag = `d${Date.now()}`;
    const command = `echo PROJ-4711 ${tag}`;
    expect((await run(command, ALPHA)).stdout).toBe(`PROJ-4711 ${tag}\n`);
    expect((await run(command, BETA)).stdout).toBe(`[REDACTED:codename] ${tag}\n`);
    const streamed = await streamExecute({ command }, { apiKey: BETA });
    // The output as it streamed and in the final result (the command text echoed back is the
    // caller's own).
    const output = streamed.events
      .map((e) =>
        e.event === "stdout"
          ? (e.data as { text: string }).text
          : e.event === "result"
            ? (e.data as { result: CommandResult }).result.stdout
            : "",
      )
      .join("");
    expect(output).toBe(`[REDACTED:codename] ${tag}\n[REDACTED:codename] ${tag}\n`);
    const res = await http("/audit?limit=200", { headers: { "X-API-Key": ALPHA } });
    const page = (await res.json()) as { entries: { command: string; caller: string }[] };
    const commands = page.entries.filter((e) => e.command.includes(tag)).map((e) => e.command);
    expect(commands).toContain(command);
    expect(commands).toContain(`echo [REDACTED:codename] ${tag}`);
  });
});

tenantsStage("tenants: scoped views", () => {
  it("beta's /audit shows only beta's commands; alpha (operator) sees both", async () => {
    const tag = `v${Date.now()}`;
    await run(`echo ${tag}-a`, ALPHA);
    await run(`echo ${tag}-b`, BETA);
    const seen = async (key: string) => {
      const res = await http("/audit?limit=200", { headers: { "X-API-Key": key } });
      expect(res.status).toBe(200);
      const page = (await res.json()) as { entries: { command: string; caller: string }[] };
      return page.entries.filter((e) => e.command.includes(tag)).map((e) => e.command);
    };
    expect(await seen(BETA)).toEqual([`echo ${tag}-b`]);
    expect((await seen(ALPHA)).sort()).toEqual([`echo ${tag}-a`, `echo ${tag}-b`]);
  });

  it("beta's /metrics holds beta's series only; alpha (operator) sees every tenant's and the service's", async () => {
    await run("echo metrics", ALPHA);
    await run("echo metrics", BETA);
    const scrape = async (key: string) => {
      const res = await http("/metrics", { headers: { "X-API-Key": key } });
      expect(res.status).toBe(200);
      return res.text();
    };
    const seenByBeta = await scrape(BETA);
    expect(seenByBeta).toMatch(/gexec_commands_total\{[^}]*tenant="beta"/);
    expect(seenByBeta).not.toMatch(/tenant="alpha"/);
    expect(seenByBeta).not.toContain("gexec_command_slots");
    const seenByAlpha = await scrape(ALPHA);
    expect(seenByAlpha).toMatch(/tenant="alpha"/);
    expect(seenByAlpha).toMatch(/tenant="beta"/);
    expect(seenByAlpha).toContain("gexec_command_slots");
  });
});

tenantsStage("tenants: fair share of the command slots", () => {
  it("alpha floods 100 parallel sleeps; beta's echo is answered within 3 s, alpha's own waits", async () => {
    const flood = Array.from({ length: 100 }, () =>
      http("/execute", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-API-Key": ALPHA },
        body: JSON.stringify({ command: "sleep 1" }),
      }).then((res) => res.status),
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const timed = async (key: string) => {
      const started = performance.now();
      const result = await run("echo fair", key);
      return { ms: Math.round(performance.now() - started), result };
    };
    const alphaTimed = async () => {
      const started = performance.now();
      // Behind its own flood: answered when a slot of alpha's share frees, or 503 busy.
      const res = await http("/execute", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-API-Key": ALPHA },
        body: JSON.stringify({ command: "echo fair" }),
      });
      await res.text();
      return { ms: Math.round(performance.now() - started), status: res.status };
    };
    const [beta, alpha] = await Promise.all([timed(BETA), alphaTimed()]);
    console.log(
      `fair share: beta's echo ${beta.ms} ms, alpha's own echo ${alpha.ms} ms (HTTP ${alpha.status}) behind its flood`,
    );
    expectAllowed(beta.result, "fair\n");
    expect(beta.ms).toBeLessThan(3_000);
    // The positive control: alpha's flood really held its share (its own echo queued behind it).
    expect(alpha.ms).toBeGreaterThan(beta.ms + 2_000);
    const statuses = await Promise.all(flood);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
  }, 120_000);
});

tenantsStage("tenants: key rotation without a restart (SIGHUP)", () => {
  it(
    "a tenant added to the file is served after SIGHUP, and gone after the next; a policy without its own agentsh server is refused [local only]",
    skipWhen("remote", { timeout: 30_000 }),
    async () => {
      const file = process.env.TENANTS_FILE ?? "";
      const original = readFileSync(file, "utf8");
      const key = randomBytes(24).toString("hex");
      const digest = createHash("sha256").update(key).digest("hex");
      const app = listenerPid(Number(new URL(BASE_URL).port));
      const status = async () =>
        (await http("/sessions", { headers: { "X-API-Key": key } })).status;
      const until = async (want: number) => {
        const deadline = Date.now() + 5_000;
        let last = await status();
        while (last !== want && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          last = await status();
        }
        return last;
      };
      expect(await status()).toBe(401);
      try {
        writeFileSync(file, `${original}  - name: gamma\n    keys: [{ sha256: ${digest} }]\n`);
        process.kill(app, "SIGHUP");
        expect(await until(200)).toBe(200);
        expectAllowed(await run("pwd", key), "/sessions/tenant-gamma\n");
        // A broken file is refused and the tenants in force stay.
        writeFileSync(file, "version: 2\n");
        process.kill(app, "SIGHUP");
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(await status()).toBe(200);
        // So is a tenant on a policy without an agentsh server of its own (those start at
        // boot): the whole file is refused, gamma stays and delta is not let in.
        const deltaKey = randomBytes(24).toString("hex");
        const deltaDigest = createHash("sha256").update(deltaKey).digest("hex");
        writeFileSync(
          file,
          `${original}  - name: gamma\n    keys: [{ sha256: ${digest} }]\n  - name: delta\n    keys: [{ sha256: ${deltaDigest} }]\n    policy: approved-git-push\n`,
        );
        process.kill(app, "SIGHUP");
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(await status()).toBe(200);
        expect((await http("/sessions", { headers: { "X-API-Key": deltaKey } })).status).toBe(401);
      } finally {
        writeFileSync(file, original);
        process.kill(app, "SIGHUP");
      }
      expect(await until(401)).toBe(401);
      expectAllowed(await run("echo still", ALPHA), "still\n");
    },
  );
});

/** The process listening on `port` in this network namespace (the app). */
function listenerPid(port: number): number {
  const out = execFileSync("ss", ["-Hltnp", `sport = :${port}`], { encoding: "utf8" });
  return Number(out.match(/pid=(\d+)/)?.[1]);
}

function pidsWithEnv(entry: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, "utf8").split("\0").includes(entry)) {
        pids.push(Number(name));
      }
    } catch {}
  }
  return pids;
}

/** The pid as the command's pid namespace sees it. */
function nsPid(pid: number): number {
  const nspid = /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(nspid?.trim().split(/\s+/).at(-1) ?? pid);
}
