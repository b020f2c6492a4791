import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { ExecuteBody } from "../../src/sessions/contract.js";
import { execute, http, type StreamedEvent, streamExecute } from "./harness.js";

/**
 * Every DLP pattern of agentsh/config.yaml, end to end: a command prints a sample on stdout and
 * stderr, and the answer carries the pattern's marker instead, counted under the pattern's name
 * (buffered and streamed: two paths through the redactor).
 */
interface DlpCase {
  /** The pattern's name in agentsh/config.yaml (and in `result.redactions`). */
  pattern: string;
  sample: string;
  /** What the marker shows: `[REDACTED:display]`. */
  display: string;
  /** Another pattern listed earlier in config.yaml that matches this sample first. */
  caughtFirstBy?: { pattern: string; display: string };
}

const CASES: DlpCase[] = [
  {
    pattern: "openai_api_key",
    sample: "sk-1234567890abcdef1234567890abcdef1234567890abcdefgh",
    display: "openai_key",
  },
  { pattern: "openai_api_key", sample: `sk-proj-${"A1b2".repeat(8)}`, display: "openai_key" },
  {
    pattern: "anthropic_api_key",
    sample: "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789",
    display: "anthropic_key",
    // openai_api_key comes first in config.yaml and its regex (sk-…) matches these keys too:
    // redacted all the same, under the OpenAI name. Either is accepted, so fixing the order
    // does not break this row.
    caughtFirstBy: { pattern: "openai_api_key", display: "openai_key" },
  },
  { pattern: "aws_access_key_id", sample: "AKIAIOSFODNN7EXAMPLE", display: "aws_access_key" },
  { pattern: "aws_access_key_id", sample: "ASIAIOSFODNN7EXAMPLE", display: "aws_access_key" },
  {
    pattern: "aws_secret_access_key",
    sample: "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    display: "aws_secret_key",
  },
  {
    pattern: "aws_secret_access_key",
    sample: "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    display: "aws_secret_key",
  },
  { pattern: "github_token", sample: `ghp_${"x".repeat(36)}`, display: "github_token" },
  {
    pattern: "github_token",
    sample: `github_pat_11ABCDEFG0${"abcdefghij".repeat(6)}`,
    display: "github_token",
  },
  { pattern: "slack_token", sample: "xoxb-1234567890-abcdefghij", display: "slack_token" },
  {
    pattern: "jwt",
    sample:
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    display: "jwt",
  },
  { pattern: "private_key", sample: "-----BEGIN RSA PRIVATE KEY-----", display: "private_key" },
  { pattern: "private_key", sample: "-----BEGIN OPENSSH PRIVATE KEY-----", display: "private_key" },
  { pattern: "email", sample: "user@example.com", display: "email" },
  { pattern: "phone", sample: "415-555-0132", display: "phone" },
  // With a country code (a leading "+" is not part of the match: `\b` needs a word before it).
  { pattern: "phone", sample: "1 415.555.0132", display: "phone" },
  { pattern: "credit_card", sample: "4111 1111 1111 1111", display: "credit_card" },
  { pattern: "credit_card", sample: "5500-0000-0000-0004", display: "credit_card" },
  { pattern: "credit_card", sample: "4111111111111111", display: "credit_card" },
  { pattern: "ssn", sample: "123-45-6789", display: "ssn" },
];

/** Enabled in config.yaml but never the first to match (so no sample can show it). */
const NEVER_FIRST: Record<string, string> = {
  api_keys:
    "every alternative of the built-in api_keys (sk-, AKIA, gh*_, github_pat_, xox*-) is caught first by a custom pattern",
};

const textOf = (events: StreamedEvent[], stream: "stdout" | "stderr") =>
  events
    .filter((e) => e.event === stream)
    .map((e) => (e.data as { text: string }).text)
    .join("");

describe("DLP: secrets in command output are redacted by the service", () => {
  it("has a case here for every pattern agentsh/config.yaml enables", () => {
    const config = parse(
      readFileSync(new URL("../../agentsh/config.yaml", import.meta.url), "utf8"),
    ) as {
      dlp: { patterns: Record<string, boolean>; custom_patterns: Array<{ name: string }> };
    };
    const enabled = [
      ...Object.entries(config.dlp.patterns)
        .filter(([, on]) => on)
        .map(([name]) => name),
      ...config.dlp.custom_patterns.map((p) => p.name),
    ];
    const covered = new Set([...CASES.map((c) => c.pattern), ...Object.keys(NEVER_FIRST)]);
    expect(enabled.filter((name) => !covered.has(name))).toEqual([]);
    expect([...covered].filter((name) => !enabled.includes(name))).toEqual([]);
  });

  it.each(CASES.map((c) => [c.pattern, c.sample, c] as const))(
    "%s: %s",
    async (_pattern, sample, c) => {
      const command = `echo "leak: ${sample}"; echo "leak: ${sample}" >&2`;
      const accepted = [c, ...(c.caughtFirstBy ? [c.caughtFirstBy] : [])];

      const result = await execute(command);
      const caughtBy = accepted.find((a) => result.redactions?.[a.pattern] !== undefined) ?? c;
      expect(result.redactions, JSON.stringify(result)).toEqual({ [caughtBy.pattern]: 2 });
      expect(result.stdout).toBe(`leak: [REDACTED:${caughtBy.display}]\n`);
      expect(result.stderr).toBe(`leak: [REDACTED:${caughtBy.display}]\n`);

      const { events } = await streamExecute({ command });
      expect(textOf(events, "stdout")).toBe(`leak: [REDACTED:${caughtBy.display}]\n`);
      expect(textOf(events, "stderr")).toBe(`leak: [REDACTED:${caughtBy.display}]\n`);
      const streamed = events.find((e) => e.event === "result")?.data as ExecuteBody | undefined;
      expect(streamed?.result.stdout).toBe(`leak: [REDACTED:${caughtBy.display}]\n`);
    },
  );

  it("leaves text that only looks like a secret alone", async () => {
    // Short digit runs, a version number, a date: none of them a card, phone or SSN.
    const text = "build 1234-56 v2.10.3 on 2024-01-15, 42 items";
    const result = await execute(`echo "${text}"`);
    expect(result.stdout).toBe(`${text}\n`);
    expect(result.redactions).toBeUndefined();
  });

  it("/demo/dlp explains where redaction happens and shows none of the seed's secrets", async () => {
    const res = await http("/demo/dlp");
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      note: string;
      results: Array<{ result: { stdout: string } }>;
    };
    const output = body.results.map((r) => r.result.stdout).join("");
    for (const secret of [
      "AKIAIOSFODNN7EXAMPLE",
      "sk-1234567890abcdef",
      "ghp_xxxx",
      "user@example.com",
    ]) {
      expect(output).not.toContain(secret);
    }
    expect(output).toContain("[REDACTED:");
    expect(body.note).toMatch(/LLM proxy/);
  });
});
