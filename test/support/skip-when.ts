import { spawnSync } from "node:child_process";
import type { TestOptions } from "vitest";

declare module "vitest" {
  interface TaskMeta {
    /** Set by skipWhen on a test it skipped: the conditions that held. */
    skippedWhen?: string[];
  }
}

/**
 * The only reasons a test may be skipped. A test (or describe) declares its condition with
 * `skipWhen`; scripts/test (scripts/test-counts.ts) accepts a skipped test only when skipWhen
 * skipped it, and fails the stage on any other skip: a leftover `it.skip`, a bare `skipIf`, or
 * the tests of a file whose `beforeAll` threw (vitest reports those as skipped, not failed).
 * A new reason is a new entry here, with why.
 */
export const SKIP_CONDITIONS = {
  "not-root": {
    why: "needs root (other uids, chown); scripts/test always runs as root",
    holds: () => process.getuid?.() !== 0,
  },
  "no-go": {
    why: "needs the Go toolchain, which only `scripts/test --quick` may run without",
    holds: () => spawnSync("go", ["version"]).status !== 0,
  },
  remote: {
    why: "TEST_URL points the e2e suite at a deployment: no local test network, no access to the stack's files or processes",
    holds: () => process.env.TEST_URL !== undefined,
  },
  "no-tenants-file": {
    why: "the tenants e2e tests need a stack booted with TENANTS_FILE (scripts/test's e2e-tenants stage); the main e2e stage boots without one",
    holds: () => !process.env.TENANTS_FILE,
  },
  "no-network-approvals": {
    why: "the network-approvals e2e tests need a stack booted with NETWORK_APPROVALS=true (scripts/test's e2e-network-approvals stage); elsewhere HTTPS to an unlisted destination is allowed without asking",
    holds: () => !["true", "1", "yes"].includes(process.env.NETWORK_APPROVALS ?? ""),
  },
  "container-stack": {
    why: "the e2e suite runs against the image (tools/container/test-image): the stack's files are not the host's",
    holds: () => process.env.E2E_STACK === "container",
  },
} as const satisfies Record<string, { why: string; holds: () => boolean }>;

export type SkipCondition = keyof typeof SKIP_CONDITIONS;

export function isSkipCondition(name: string): name is SkipCondition {
  return Object.hasOwn(SKIP_CONDITIONS, name);
}

/**
 * Options for `it(name, options, fn)` or `describe(name, options, fn)`: skipped, and marked as a
 * declared skip, when the condition (or any of several) holds; `options` are passed on.
 *
 *   it("reads the stack's files [local only]", skipWhen("remote"), async () => { … });
 *   it("a slow one [local only]", skipWhen("remote", { timeout: 60_000 }), async () => { … });
 */
export function skipWhen(
  conditions: SkipCondition | readonly SkipCondition[],
  options: TestOptions = {},
): TestOptions {
  const held = [conditions].flat().filter((name) => SKIP_CONDITIONS[name].holds());
  if (held.length === 0) return options;
  return { ...options, skip: true, meta: { ...options.meta, skippedWhen: held } };
}
