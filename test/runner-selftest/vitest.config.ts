import { defineConfig } from "vitest/config";

/**
 * A deliberately broken suite: scripts/test runs it first and must count it as failed (see
 * "runner self-test" there). Its files end in .fixture.ts so no real project picks them up.
 */
export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ["*.fixture.ts"],
    // Makes the documented "remote" condition hold, so the declared skip is one.
    env: { TEST_URL: "http://127.0.0.1:9" },
    testTimeout: 5_000,
    hookTimeout: 5_000,
  },
});
