import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { holdServicePorts } from "../../src/enforcement/held-ports.js";
import { createJsonLogger } from "../../src/logger.js";

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

const logger = createJsonLogger("error", () => {});

/** A port free right now (the kernel's pick). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** What a command's bind on this address gets: "bound" or the error code. */
function tryBind(port: number, host: string): Promise<string> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve("bound")));
  });
}

const hasIpv6 = await tryBind(0, "::1").then((r) => r === "bound");

describe("the service's ports, held against commands", () => {
  it("holds a port no one listens on, on every address: a later bind anywhere gets EADDRINUSE", async () => {
    const port = await freePort();
    const held = await holdServicePorts([port], { port: 1, host: "0.0.0.0" }, logger);
    closers.push(held.close);
    expect(held.report[String(port)]).toEqual({ ipv4: "held", ipv6: hasIpv6 ? "held" : "none" });
    for (const host of ["127.0.0.1", "0.0.0.0", "127.0.0.2", ...(hasIpv6 ? ["::1", "::"] : [])]) {
      expect([host, await tryBind(port, host)]).toEqual([host, "EADDRINUSE"]);
    }
  });

  it("leaves a port its owner listens on to the owner, and holds its IPv6 side", async () => {
    const port = await freePort();
    const owner = net.createServer();
    await new Promise<void>((resolve) => owner.listen(port, "127.0.0.1", resolve));
    closers.push(() => owner.close());
    const held = await holdServicePorts([port], { port: 1, host: "0.0.0.0" }, logger);
    closers.push(held.close);
    expect(held.report[String(port)]).toEqual({ ipv4: "in use", ipv6: hasIpv6 ? "held" : "none" });
    expect(await tryBind(port, "127.0.0.1")).toBe("EADDRINUSE");
    expect(await tryBind(port, "0.0.0.0")).toBe("EADDRINUSE");
    if (hasIpv6) expect(await tryBind(port, "::1")).toBe("EADDRINUSE");
  });

  it("leaves the app's own IPv4 listener to the app (it listens next) and holds IPv6", async () => {
    const port = await freePort();
    const held = await holdServicePorts([port], { port, host: "0.0.0.0" }, logger);
    closers.push(held.close);
    expect(held.report[String(port)]).toEqual({ ipv4: "app", ipv6: hasIpv6 ? "held" : "none" });
    expect(await tryBind(port, "0.0.0.0")).toBe("bound");
  });

  it("after close, the ports are free again", async () => {
    const port = await freePort();
    const held = await holdServicePorts([port], { port: 1, host: "0.0.0.0" }, logger);
    held.close();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await tryBind(port, "0.0.0.0")).toBe("bound");
  });
});
