import { describe, expect, it } from "vitest";
import { createHealthCheck } from "../../src/enforcement/health.js";

/** /health with tenant policies' own agentsh servers (docs/tenants.md). */
function healthWith(strict: "reachable" | "unreachable") {
  return createHealthCheck({
    monitor: {
      state: () => ({ mode: "enforced", checks: {}, problems: [] }),
      gate: () => null,
    },
    probe: async () => null,
    agentshUrl: "http://127.0.0.1:18080",
    policyServers: async () => ({ strict: { server: strict, url: "http://127.0.0.1:18081" } }),
    allowDegraded: false,
    bundle: { digest: "sha256:test", policy: "default" },
    isolation: {
      landlockAbi: 7,
      layers: {},
      udp: false,
      bindTcpPorts: ["any"],
      servicePorts: {},
      privilegedPortsBelow: 1024,
      limits: {},
    },
    commandStats: () => ({ slots: 4, inFlight: 0, queued: 0 }),
  });
}

describe("health with a tenant policy's own agentsh server", () => {
  it("lists it under agentsh.policies", async () => {
    expect(await healthWith("reachable")()).toMatchObject({
      status: "ok",
      agentsh: {
        server: "reachable",
        policies: { strict: { server: "reachable", url: "http://127.0.0.1:18081" } },
      },
    });
  });

  it("is unavailable while it does not answer, saying which", async () => {
    const report = await healthWith("unreachable")();
    expect(report.status).toBe("unavailable");
    expect(report.agentsh.server).toBe("reachable");
    expect(report.reason).toBe(
      "the agentsh server of policy strict at http://127.0.0.1:18081 is not reachable",
    );
  });
});
