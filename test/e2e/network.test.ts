import { describe, expect, it } from "vitest";
import {
  demo,
  entry,
  executeWatching,
  expectAllowed,
  expectNetworkBlocked,
  REMOTE,
} from "./harness.js";

/**
 * Network probes run inside the isolated namespace of scripts/with-stack: every address below
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

  it("/demo/cloud-metadata: all six blocked", async () => {
    const entries = await demo("cloud-metadata");
    expect(entries).toHaveLength(6);
    for (const e of entries) {
      expect(e.asExpected, e.command).toBe(true);
      expect(e.result.decision?.rule, e.command).toBe("deny-cloud-metadata");
    }
  });
});

describe("SSRF: private ranges and link-local", () => {
  const targets = [
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.0.1",
    "192.168.255.254",
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

  it("loopback services through the proxy: blocked by deny-loopback, zero connections", async () => {
    // The canary also listens on 127.0.0.1:8080; the agentsh API itself is covered in status.
    await expectNetworkBlocked(curl("http://127.0.0.1:8080/"), "deny-loopback", ["127.0.0.1"]);
  });

  it("/demo/ssrf: every command as expected", async () => {
    const entries = await demo("ssrf");
    expect(entries.map((e) => [e.command, e.asExpected])).toEqual(
      entries.map((e) => [e.command, true]),
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

  it("/demo/network: every command as expected", async () => {
    const entries = await demo("network");
    for (const e of entries)
      expect(e.asExpected, `${e.command} ${JSON.stringify(e.result)}`).toBe(true);
    expect(entry(entries, curl("http://evil.com")).result.decision?.rule).toBe(
      "deny-malicious-domains",
    );
  });
});

// The former "known gaps without ptrace" (a raw socket to 169.254.169.254 and
// `curl --noproxy '*'` reached their targets) are closed by the launcher's Landlock TCP rules:
// proven with zero canary connections in isolation.test.ts.
