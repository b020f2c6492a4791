import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: ["test/e2e/**", "test/net/**"],
          testTimeout: 10_000,
          typecheck: { enabled: false },
        },
      },
      {
        // The isolated test network itself (test/net/with-stack.ts): needs root, ip, dnsmasq.
        test: {
          name: "net",
          include: ["test/net/**/*.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
