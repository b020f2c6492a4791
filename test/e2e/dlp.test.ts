import { describe, expect, it } from "vitest";
import { execute, http } from "./harness.js";

describe("DLP: secrets in command output are redacted by the service", () => {
  it.each([
    ["OpenAI key", "sk-1234567890abcdef1234567890abcdef1234567890abcdefgh"],
    ["Anthropic key", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789"],
    ["AWS access key", "AKIAIOSFODNN7EXAMPLE"],
    ["GitHub token", `ghp_${"x".repeat(36)}`],
    ["Slack token", "xoxb-1234567890-abcdefghij"],
    [
      "JWT",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ],
    ["email", "user@example.com"],
    ["private key header", "-----BEGIN RSA PRIVATE KEY-----"],
  ])("%s", async (_name, secret) => {
    const result = await execute(`echo "leak: ${secret}"; echo "leak: ${secret}" >&2`);
    expect(result.stdout).not.toContain(secret);
    expect(result.stderr).not.toContain(secret);
    expect(result.stdout).toMatch(/^leak: \[REDACTED:[a-z_]+\]/);
    expect(
      Object.values(result.redactions ?? {}).reduce((a, b) => a + b, 0),
    ).toBeGreaterThanOrEqual(2);
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
