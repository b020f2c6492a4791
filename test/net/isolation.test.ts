// The test network of with-stack.ts, proven from the outside with the fake stack: two runs at
// once, each held open while this file probes inside its namespace, then ended.

import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  allDead,
  canaryMatches,
  type HarnessRun,
  heldEnvironment,
  holdCommand,
  inside,
  namespaceGone,
  namespacePids,
  startRun,
  stopAllRuns,
  waitForCanary,
} from "./harness-run.js";
import { run } from "./processes.js";
import { readStandIns } from "./stand-ins.js";

const { addresses, names } = readStandIns();
const addressOf = (name: string) => names.find((row) => row.name === name)?.address ?? "";
// A stand-in for an allowed public host, and one for a malicious host.
const PUBLIC_NAME = "example.com";
const EVIL_NAME = "evil.com";
// TEST-NET-2: on no namespace's lo, so unreachable from inside.
const OUTSIDE = "198.51.100.1";

interface Held {
  harness: HarnessRun;
  env: Record<string, string>;
  ns: string;
  pids: number[];
}

const tmp = mkdtempSync("/tmp/with-stack-test.");
let held: Held[] = [];

beforeAll(async () => {
  const runs = ["a", "b"].map((name) => {
    const stateFile = join(tmp, `${name}.env`);
    return { harness: startRun(holdCommand(stateFile)), stateFile };
  });
  held = await Promise.all(
    runs.map(async ({ harness, stateFile }) => {
      const env = await heldEnvironment(harness, stateFile, 45_000);
      const ns = env.TEST_NETNS ?? "";
      return { harness, env, ns, pids: await namespacePids(ns) };
    }),
  );
}, 60_000);

afterAll(async () => {
  await stopAllRuns();
  rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describe("two runs at once (same PORT)", () => {
  it("each gets a namespace of its own, with the stack, canary, DNS stub and the command in it", async () => {
    const [a, b] = held;
    expect(a?.ns).toMatch(/^gexec-/);
    expect(b?.ns).toMatch(/^gexec-/);
    expect(a?.ns).not.toBe(b?.ns);
    for (const { ns, env, pids, harness } of held) {
      expect(harness.namespace()).toBe(ns);
      const identified = await run(["ip", "netns", "identify", env.HOLD_PID ?? ""], 5_000);
      expect(identified.stdout.trim()).toBe(ns);
      // canary, dnsmasq, the fake stack, the command
      expect(pids.length).toBeGreaterThanOrEqual(4);
    }
  });

  it("the command gets BASE_URL, SERVICE_URL, CANARY_LOG, CANARY_CERT, TEST_NETNS and PORT", () => {
    for (const { env, ns } of held) {
      expect(env).toMatchObject({
        BASE_URL: "http://127.0.0.1:10000",
        SERVICE_URL: "http://127.0.0.1:10000",
        TEST_NETNS: ns,
        PORT: "10000",
      });
      expect(env.CANARY_LOG).toMatch(/^\/tmp\/with-stack\..+\/canary\.jsonl$/);
      expect(env.CANARY_CERT).toMatch(/^\/tmp\/with-stack\..+\/canary-cert\.pem$/);
    }
  });

  it("the stack answers GET $BASE_URL/health with 200 inside the namespace", async () => {
    for (const { ns, env } of held) {
      const health = await inside(ns, "curl", "-s", "--max-time", "5", `${env.BASE_URL}/health`);
      expect(JSON.parse(health.stdout)).toEqual({ status: "ok", fake: true });
    }
  });

  it("http to a stand-in address reaches that run's canary only, logged as accept + request", async () => {
    for (const { ns, env } of held) {
      const path = `/only-in-${ns}`;
      const answer = await inside(ns, "curl", "-s", "--max-time", "5", `http://10.0.0.1${path}`);
      expect(answer.stdout).toBe("canary 10.0.0.1\n");
      const log = env.CANARY_LOG ?? "";
      const accepts = { event: "accept", localAddress: "10.0.0.1", localPort: 80 };
      expect(await waitForCanary(log, { ...accepts, protocol: "http" })).not.toHaveLength(0);
      const request = { event: "request", localAddress: "10.0.0.1", method: "GET", path };
      expect(await waitForCanary(log, { ...request, host: "10.0.0.1" })).toHaveLength(1);
    }
    const [a, b] = held;
    expect(canaryMatches(b?.env.CANARY_LOG ?? "", { path: `/only-in-${a?.ns}` })).toEqual([]);
  });

  it("https to the malicious stand-in reaches the canary, logged with its SNI", async () => {
    const address = addressOf(EVIL_NAME);
    for (const { ns, env } of held) {
      const answer = await inside(
        ns,
        "curl",
        "-sk",
        "--max-time",
        "5",
        `https://${EVIL_NAME}/probe`,
      );
      expect(answer.stdout).toBe(`canary ${address}\n`);
      const log = env.CANARY_LOG ?? "";
      const at = { localAddress: address, localPort: 443, protocol: "https" };
      expect(await waitForCanary(log, { ...at, event: "accept" })).not.toHaveLength(0);
      const request = { ...at, event: "request", sni: EVIL_NAME, host: EVIL_NAME, path: "/probe" };
      expect(await waitForCanary(log, request)).toHaveLength(1);
    }
  });

  it("https verifies against CANARY_CERT; a client that rejects it is still on record", async () => {
    const address = addressOf(PUBLIC_NAME);
    for (const { ns, env } of held) {
      const cert = env.CANARY_CERT ?? "";
      const verified = await inside(
        ns,
        "curl",
        "-s",
        "--max-time",
        "5",
        "--cacert",
        cert,
        `https://${PUBLIC_NAME}/`,
      );
      expect(verified.code, verified.stderr).toBe(0);
      expect(verified.stdout).toBe(`canary ${address}\n`);

      const log = env.CANARY_LOG ?? "";
      const accepts = { event: "accept", localAddress: address, localPort: 443 };
      const before = canaryMatches(log, accepts).length;
      const rejected = await inside(ns, "curl", "-s", "--max-time", "5", `https://${PUBLIC_NAME}/`);
      expect(rejected.code).toBe(60); // peer certificate cannot be authenticated
      expect(await waitForCanary(log, accepts, before + 1)).toHaveLength(before + 1);
      const tlsError = { event: "tls-error", localAddress: address, sni: PUBLIC_NAME };
      expect(await waitForCanary(log, tlsError)).toHaveLength(1);
    }
  });

  it("plain tcp (172.16.0.1:8080) gets the canary's banner and is logged as tcp", async () => {
    for (const { ns, env } of held) {
      const connect = 'exec 3<>"/dev/tcp/$0/$1" && cat <&3';
      const banner = await inside(ns, "bash", "-c", connect, "172.16.0.1", "8080");
      expect(banner.stdout).toBe("canary 172.16.0.1\n");
      const accept = {
        event: "accept",
        localAddress: "172.16.0.1",
        localPort: 8080,
        protocol: "tcp",
      };
      expect(await waitForCanary(env.CANARY_LOG ?? "", accept)).toHaveLength(1);
    }
  });

  it("every address in addresses.tsv answers as itself", async () => {
    const urls = addresses.map((address) => `http://${address}/`);
    for (const { ns } of held) {
      const answers = await inside(ns, "curl", "-s", "--max-time", "5", ...urls);
      expect(answers.stdout).toBe(addresses.map((address) => `canary ${address}\n`).join(""));
    }
  });

  it("every name in names.tsv resolves to its address; '*.domain' covers subdomains", async () => {
    const queried = names.map(({ name }) =>
      name.startsWith("*.") ? `probe.${name.slice(2)}` : name,
    );
    for (const { ns } of held) {
      const answers = await inside(ns, "getent", "hosts", ...queried);
      const resolved = answers.stdout
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => line.split(/\s+/));
      expect(resolved).toEqual(names.map(({ address }, i) => [address, queried[i]]));
    }
  });

  it("names not in names.tsv do not resolve (nothing is forwarded)", async () => {
    const unknown = ["no-such-name.test", "www.example.com", "metadata.google.internal.evil.test"];
    for (const { ns } of held) {
      const answers = await Promise.all(unknown.map((name) => inside(ns, "getent", "hosts", name)));
      expect(answers.map((answer) => answer.code)).toEqual(unknown.map(() => 2));
    }
  });

  it("/etc/resolv.conf points at the stub; /etc/hosts has only localhost lines", async () => {
    for (const { ns } of held) {
      const resolv = await inside(ns, "cat", "/etc/resolv.conf");
      expect(resolv.stdout.split("\n")[0]).toBe("nameserver 127.0.0.1");
      const hosts = await inside(ns, "cat", "/etc/hosts");
      const entries = hosts.stdout.split("\n").filter((line) => line.trim() !== "");
      for (const line of entries) expect(line).toMatch(/\slocalhost(\s|$)/);
    }
  });

  it("the namespace has only lo and no default route", async () => {
    for (const { ns } of held) {
      const links = await inside(ns, "ip", "-j", "link", "show");
      expect((JSON.parse(links.stdout) as Array<{ ifname: string }>).map((l) => l.ifname)).toEqual([
        "lo",
      ]);
      for (const family of ["-4", "-6"]) {
        const routes = await inside(ns, "ip", "-j", family, "route", "show", "default");
        expect(JSON.parse(routes.stdout || "[]")).toEqual([]);
      }
    }
  });

  it(`a connect to ${OUTSIDE} (not on the namespace) fails at once: Network is unreachable`, async () => {
    for (const { ns, env } of held) {
      // A connect that hung (a route somewhere) would meet timeout's 2 s and exit 124.
      const connect = await inside(
        ns,
        "timeout",
        "2",
        "bash",
        "-c",
        'exec 3<>"/dev/tcp/$0/80"',
        OUTSIDE,
      );
      expect(connect.code).toBe(1);
      expect(connect.stderr).toContain("Network is unreachable");
      expect(canaryMatches(env.CANARY_LOG ?? "", { localAddress: OUTSIDE })).toEqual([]);
      const route = await inside(ns, "ip", "route", "get", OUTSIDE);
      expect(route.stderr).toContain("Network is unreachable");
    }
  });

  it("both end with the command's exit code once it ends, leaving no namespace, /etc/netns dir or process", async () => {
    for (const { harness } of held) harness.child.stdin.end();
    const codes = await Promise.all(held.map(({ harness }) => harness.exit(20_000)));
    expect(codes).toEqual([0, 0]);
    for (const { ns, pids } of held) {
      expect(await namespaceGone(ns)).toBe(true);
      expect(allDead(pids)).toBe(true);
    }
  });
});
