import { beforeAll, describe, expect, it } from "vitest";

// As when the MCP client cannot connect or Chromium will not launch: vitest reports the two
// tests below as skipped, not failed, and exits 1.
describe("a file whose beforeAll throws", () => {
  beforeAll(() => {
    throw new Error("setup failed on purpose (runner self-test)");
  });

  it("would pass", () => {
    expect(1).toBe(1);
  });

  it("would pass too", () => {
    expect(2).toBe(2);
  });
});
