import { describe, expect, it } from "vitest";
import {
  demo,
  entry,
  execute,
  executeWatching,
  expectAllowed,
  expectBlocked,
  REMOTE,
} from "./harness.js";

/**
 * Network probes run inside the isolated namespace of scripts/with-stack: every address below
 * exists there on loopback with a canary listener that logs each connection, and nothing can
 * leave the namespace. "Blocked" = agentsh's rule AND zero connections at the canary.
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

  it.each(cases)("%s metadata is blocked by deny-cloud-metadata", async (_cloud, command) => {
    expectBlocked(await execute(command), "deny-cloud-metadata", "network");
  });

  withCanary.each(cases)(
    "%s metadata: the endpoint received zero connections [local only]",
    async (_c, command, address) => {
      const { result, connections } = await executeWatching(command, [address]);
      expect(result.blocked).toBe(true);
      expect(connections[address]).toBe(0);
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

  it.each(targets)("http://%s/ is blocked by deny-private-networks", async (address) => {
    expectBlocked(await execute(curl(`http://${address}/`)), "deny-private-networks", "network");
  });

  withCanary.each(targets)(
    "%s received zero connections (HTTP and HTTPS) [local only]",
    async (address) => {
      const { result, connections } = await executeWatching(
        `${curl(`http://${address}/`)}; ${curl(`https://${address}/`, "-k")}`,
        [address],
      );
      expect(result.blocked).toBe(true);
      expect(connections[address]).toBe(0);
    },
  );

  it("the agentsh API on loopback is blocked through the proxy", async () => {
    expectBlocked(await execute(curl("http://127.0.0.1:18080/health")), "deny-loopback", "network");
  });

  it("/demo/ssrf: every command as expected", async () => {
    const entries = await demo("ssrf");
    expect(entries.map((e) => [e.command, e.asExpected])).toEqual(
      entries.map((e) => [e.command, true]),
    );
  });
});

describe("network filtering", () => {
  withCanary(
    "evil.com is blocked by deny-malicious-domains and never contacted [local only]",
    async () => {
      const { result, connections } = await executeWatching(
        `${curl("http://evil.com/")}; ${curl("https://evil.com/", "-k")}; ${curl("https://sub.evil.com/", "-k")}`,
        ["203.0.113.66"],
      );
      expectBlocked(result, "deny-malicious-domains", "network");
      expect(connections["203.0.113.66"]).toBe(0);
    },
  );

  it("evil.com is blocked by deny-malicious-domains", async () => {
    expectBlocked(await execute(curl("http://evil.com")), "deny-malicious-domains", "network");
  });

  it("plain HTTP to an unlisted host is denied by default", async () => {
    expectBlocked(await execute(curl("http://example.com/")), "default-deny-network", "network");
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

/**
 * Measured limits, asserted as they are so the README stays true: without ptrace (Render has no
 * SYS_PTRACE) agentsh polices network traffic only through its proxy. A client that ignores the
 * proxy variables reaches the target. If one of these starts failing, enforcement improved —
 * update the README's protection table.
 */
describe("known gaps without ptrace (measured, documented)", () => {
  withCanary("a raw socket to the metadata address is NOT policed [local only]", async () => {
    const { result, connections } = await executeWatching(
      `python3 -c 'import socket; s=socket.create_connection(("169.254.169.254", 80), 3); print("connected")'`,
      ["169.254.169.254"],
    );
    expect(result.stdout).toBe("connected\n");
    expect(result.blocked).toBe(false);
    expect(connections["169.254.169.254"]).toBe(1);
  });

  withCanary("curl --noproxy bypasses the proxy [local only]", async () => {
    const { result, connections } = await executeWatching(
      curl("http://10.0.0.1/", "--noproxy '*'"),
      ["10.0.0.1"],
    );
    expect(result.blocked).toBe(false);
    expect(connections["10.0.0.1"]).toBe(1);
  });
});
