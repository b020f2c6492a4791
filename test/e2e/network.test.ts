import { describe, expect, it } from "vitest";
import {
  execute,
  executeWatching,
  expectAllowed,
  expectBlocked,
  expectNetworkBlocked,
  REMOTE,
} from "./harness.js";

/**
 * Network probes run inside the isolated namespace of test/net/with-stack.ts: every address below
 * exists there on loopback with a canary listener that logs each connection, and nothing can
 * leave the namespace. "Blocked" = agentsh's rule AND zero connections at the canary
 * (`expectNetworkBlocked`; against a remote deployment only the rule can be checked).
 */
const withCanary = REMOTE ? it.skip : it;

const curl = (url: string, extra = "") => `curl -s --max-time 3 ${extra}${extra ? " " : ""}${url}`;

describe("cloud metadata (six clouds)", () => {
  const cases: Array<[string, string, string]> = [
    ["AWS", curl("http://169.254.169.254/latest/meta-data/"), "169.254.169.254"],
    [
      "GCP",
      curl("http://metadata.google.internal/computeMetadata/v1/", '-H "Metadata-Flavor: Google"'),
      "169.254.169.254",
    ],
    [
      "Azure",
      curl(
        '"http://169.254.169.254/metadata/instance?api-version=2021-02-01"',
        '-H "Metadata: true"',
      ),
      "169.254.169.254",
    ],
    ["DigitalOcean", curl("http://169.254.169.254/metadata/v1/"), "169.254.169.254"],
    ["Alibaba", curl("http://100.100.100.200/latest/meta-data/"), "100.100.100.200"],
    ["Oracle", curl("http://169.254.169.254/opc/v2/instance/"), "169.254.169.254"],
  ];

  it.each(cases)(
    "%s metadata: blocked by deny-cloud-metadata, zero connections to the endpoint",
    async (_cloud, command, address) => {
      await expectNetworkBlocked(command, "deny-cloud-metadata", [address]);
    },
  );
});

describe("SSRF: private ranges and link-local", () => {
  const targets = [
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.0.1",
    "192.168.255.255",
    "169.254.0.1",
  ];

  it.each(targets)(
    "%s over HTTP and HTTPS: blocked by deny-private-networks, zero connections",
    async (address) => {
      await expectNetworkBlocked(
        `${curl(`http://${address}/`)}; ${curl(`https://${address}/`, "-k")}`,
        "deny-private-networks",
        [address],
      );
    },
  );
});

/**
 * Loopback by port (agentsh/policies/default.yaml): dev servers a command starts on 1024-32767 or
 * 61000-65535 are reachable through the proxy; the service's own ports, privileged ports and the
 * ephemeral range (agentsh's per-session proxies) are denied by named rules. curl tunnels
 * plain http:// through CONNECT (agentsh/curl/.curlrc), the only proxy request whose real port
 * agentsh 0.16.9 judges; `%{http_connect}` 403 with no HTTP answer (000) shows that the proxy
 * refused the tunnel. The canary listens on 127.0.0.1 ports 22, 8080 and on stand-ins for the
 * service ports the test stack does not open (6379 Redis, 9090 agentsh gRPC, 6060 pprof).
 */
describe("loopback by policy", () => {
  const tunnel = (port: number) =>
    curl(`http://127.0.0.1:${port}/`, `-o /dev/null -w '%{http_connect} %{http_code}'`);

  it("a dev server the command starts on a loopback dev port is reached through the proxy", async () => {
    const result = await execute(
      `python3 -m http.server 5173 --bind 127.0.0.1 >/dev/null 2>&1 & ${curl("http://127.0.0.1:5173/", "--retry 20 --retry-delay 1 --retry-all-errors -o /dev/null -w '%{http_connect} %{http_code}'")}`,
    );
    // CONNECT answered 200 by the proxy, then the dev server's own 200.
    expectAllowed(result, "200 200");
  });

  withCanary(
    "a listener on a dev port (canary 127.0.0.1:8080) is allowed and reached [local only]",
    async () => {
      const { result, connections } = await executeWatching(tunnel(8080), ["127.0.0.1"]);
      expect(result.blocked, JSON.stringify(result)).toBe(false);
      expect(result.stdout).toMatch(/^200 /);
      expect(connections["127.0.0.1"]).toBeGreaterThan(0);
    },
  );

  it.each([
    ["the app (PORT 10000)", 10000, "deny-service-ports"],
    ["agentsh's HTTP API (18080)", 18080, "deny-agentsh-api"],
    ["agentsh's gRPC port (9090, canary stand-in)", 9090, "deny-agentsh-api"],
    ["agentsh's pprof port (6060, canary stand-in)", 6060, "deny-service-ports"],
    ["Redis (6379, canary stand-in)", 6379, "deny-service-ports"],
    ["a privileged port (canary 127.0.0.1:22)", 22, "deny-privileged-loopback"],
  ])("%s: blocked by %s, tunnel refused, zero connections", async (_what, port, rule) => {
    const command = tunnel(port);
    await expectNetworkBlocked(command, rule, ["127.0.0.1"]);
    expect((await execute(command)).stdout).toBe("403 000");
  });

  it("agentsh's own per-session proxy port (ephemeral): blocked by deny-ephemeral-loopback", async () => {
    const result = await execute(
      curl('"$HTTP_PROXY/"', "-o /dev/null -w '%{http_connect} %{http_code}'"),
    );
    expectBlocked(result, "deny-ephemeral-loopback", "network");
    expect(result.stdout).toBe("403 000");
  });

  it("plain HTTP without the tunnel (python, curl -q) is judged as port 80: deny-privileged-loopback, zero connections", async () => {
    await expectNetworkBlocked(
      // (-q works only as curl's first argument.)
      `python3 -c 'import urllib.request as u; u.urlopen("http://127.0.0.1:8080/", timeout=3)'; curl -q -s --max-time 3 http://127.0.0.1:8080/`,
      "deny-privileged-loopback",
      ["127.0.0.1"],
    );
  });
});

describe("network filtering", () => {
  it("evil.com and its subdomains: blocked by deny-malicious-domains, never contacted", async () => {
    await expectNetworkBlocked(
      `${curl("http://evil.com/")}; ${curl("https://evil.com/", "-k")}; ${curl("https://sub.evil.com/", "-k")}`,
      "deny-malicious-domains",
      ["203.0.113.66"],
    );
  });

  it("plain HTTP to an unlisted host: denied by default-deny-network, zero connections", async () => {
    await expectNetworkBlocked(curl("http://example.com/"), "default-deny-network", [
      "203.0.113.10",
    ]);
  });

  withCanary("a package registry over HTTPS is allowed and reached [local only]", async () => {
    const { result, connections } = await executeWatching(
      curl("https://registry.npmjs.org/express", "-k -o /dev/null -w '%{http_code}'"),
      ["203.0.113.10"],
    );
    expectAllowed(result, "200");
    expect(connections["203.0.113.10"]).toBeGreaterThan(0);
  });

  withCanary("general HTTPS is allowed and reached [local only]", async () => {
    const { result, connections } = await executeWatching(
      curl("https://example.com/", "-k -o /dev/null -w '%{http_code}'"),
      ["203.0.113.10"],
    );
    expectAllowed(result, "200");
    expect(connections["203.0.113.10"]).toBeGreaterThan(0);
  });
});

// The former "known gaps without ptrace" (a raw socket to 169.254.169.254 and
// `curl --noproxy '*'` reached their targets) are closed by the launcher's Landlock TCP rules:
// proven with zero canary connections in isolation.test.ts.
