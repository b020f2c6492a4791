import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { skipWhen } from "../support/skip-when.js";
import { execute } from "./harness.js";

/**
 * One log stream (docs/logging.md): everything the stack writes to stdout and stderr — scripts/boot,
 * agentsh's server (relayed through the service) and the service — is JSON lines with one schema.
 * test/net/with-stack.ts writes the stack's output to STACK_LOG (for the image: the container's).
 */
const LEVELS = ["debug", "info", "warn", "error"];
const SOURCES = ["service", "agentsh", "boot"];
/**
 * Against the image (tools/container/test-image) the stack log is `podman run`'s output, which
 * on this test host also carries podman's own logrus lines (it cannot reach systemd to schedule
 * the image's HEALTHCHECK): the test runner's, not the container's. Only those are set aside.
 */
const CONTAINER_RUNTIME_LINE = /^time="[^"]+" level=(?:info|warning|error) msg="/;

describe("the stack's log", () => {
  it(
    "is JSON lines with time, level, source and message, from boot, agentsh and the service [local only]",
    skipWhen("remote"),
    async () => {
      const stackLog = process.env.STACK_LOG;
      expect(stackLog, "STACK_LOG is set by scripts/test for the e2e stages").toBeTruthy();
      // Without the relay, agentsh writes two text lines per command: run a few.
      for (const command of ["echo logged", "sudo id", "cat /etc/hostname"]) await execute(command);
      // The relay is asynchronous: give the last lines a moment to land.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const text = readFileSync(stackLog ?? "", "utf8");
      // A line still being written has no newline yet.
      const lines = text.slice(0, text.lastIndexOf("\n")).split("\n");
      expect(lines.length).toBeGreaterThan(10);
      const runtimeLines =
        process.env.E2E_STACK === "container"
          ? lines.filter((line) => CONTAINER_RUNTIME_LINE.test(line))
          : [];
      if (runtimeLines.length > 0) {
        console.log(`[measured] ${runtimeLines.length} container runtime line(s) set aside`);
      }
      const bad: string[] = [];
      const sources = new Set<string>();
      for (const line of lines) {
        if (runtimeLines.includes(line)) continue;
        let record: Record<string, unknown>;
        try {
          record = JSON.parse(line) as Record<string, unknown>;
        } catch {
          bad.push(line);
          continue;
        }
        const ok =
          typeof record.time === "string" &&
          new Date(record.time).toISOString() === record.time &&
          LEVELS.includes(record.level as string) &&
          SOURCES.includes(record.source as string) &&
          typeof record.message === "string";
        if (ok) sources.add(record.source as string);
        else bad.push(line);
      }
      expect(bad.slice(0, 20), `${bad.length} of ${lines.length} lines break the schema`).toEqual(
        [],
      );
      expect([...sources].sort()).toEqual(["agentsh", "boot", "service"]);
      // agentsh's listen notice came through the pipe and the relay, not as text.
      expect(text).toMatch(/"source":"agentsh","message":"agentsh server listening on /);
    },
  );
});
