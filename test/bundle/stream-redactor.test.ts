import { describe, expect, it } from "vitest";
import {
  compileRedactionPatterns,
  createRedactor,
  createStreamRedactor,
  mayMatchLineBreak,
} from "../../src/bundle/redactor.js";

const redact = createRedactor(
  compileRedactionPatterns({ patterns: { api_keys: true, email: true } }).patterns,
);
const SECRET = "AKIAIOSFODNN7EXAMPLE";
const REDACTED = "[REDACTED:api_key]";

/** A stream redactor whose output is collected piece by piece. */
function collector(limitBytes = 1024 * 1024) {
  const emitted: string[] = [];
  const stream = createStreamRedactor(redact, (text) => emitted.push(text), limitBytes);
  return { emitted, ...stream };
}

describe("mayMatchLineBreak", () => {
  it.each([
    ["key\\s*=", true],
    ["a\\nb", true],
    ["[^a]+", true],
    ["(?s)a.b", true],
    ["key[ \\t]*=", false],
    ["\\bAKIA[0-9A-Z]{16}\\b", false],
    ["\\S+", false],
  ])("%s → %s", (source, expected) => {
    expect(mayMatchLineBreak(source)).toBe(expected);
  });

  it("holds for every pattern of the shipped bundle and every built-in category", () => {
    const all = compileRedactionPatterns({
      patterns: { api_keys: true, email: true, phone: true, credit_card: true, ssn: true },
    }).patterns;
    for (const { name, regex } of all) expect(mayMatchLineBreak(regex.source), name).toBe(false);
  });
});

describe("createStreamRedactor", () => {
  it("passes whole lines at once, redacted", () => {
    const { emitted, feed } = collector();
    feed(`one\ntwo ${SECRET}\n`);
    expect(emitted).toEqual([`one\ntwo ${REDACTED}\n`]);
  });

  it("holds a partial line until its newline arrives", () => {
    const { emitted, feed } = collector();
    feed("par");
    feed("tial");
    expect(emitted).toEqual([]);
    feed(" line\nnext");
    expect(emitted).toEqual(["partial line\n"]);
  });

  it("passes what is still held at the end (and nothing empty)", () => {
    const { emitted, feed, end } = collector();
    feed("a\nunterminated");
    end();
    end();
    expect(emitted).toEqual(["a\n", "unterminated"]);
    const quiet = collector();
    quiet.end();
    expect(quiet.emitted).toEqual([]);
  });

  it("redacts a secret split across pieces", () => {
    const { emitted, feed, end } = collector();
    for (const piece of ["key=AKIA", "IOSFODNN", "7EXAMPLE\nmail me: user@ex", "ample.com"]) {
      feed(piece);
    }
    end();
    expect(emitted.join("")).toBe(`key=${REDACTED}\nmail me: [REDACTED:email]`);
    expect(emitted.join("")).not.toMatch(/AKIA|EXAMPLE|user@/);
  });

  it("passes a long line without newline in pieces, cut at whitespace, keeping its last 1 KiB", () => {
    const { emitted, feed } = collector();
    const words = "word ".repeat(1800); // 9000 characters, no newline
    feed(words);
    expect(emitted).toHaveLength(1);
    const passed = emitted[0] ?? "";
    expect(passed.endsWith(" ")).toBe(true);
    expect(words.startsWith(passed)).toBe(true);
    expect(words.length - passed.length).toBeGreaterThanOrEqual(1024);
    expect(words.length - passed.length).toBeLessThan(1024 + 5);
  });

  it("cuts a long line with no whitespace at all at 1 KiB before its end", () => {
    const { emitted, feed, end } = collector();
    const blob = "x".repeat(9000);
    feed(blob);
    expect(emitted.map((t) => t.length)).toEqual([9000 - 1024]);
    end();
    expect(emitted.join("")).toBe(blob);
  });

  it("holds nothing back below 8 KiB of unterminated line", () => {
    const { emitted, feed } = collector();
    feed("y".repeat(8192));
    expect(emitted).toEqual([]);
  });

  it("never splits a token that lies across the cut of a long line", () => {
    const { emitted, feed, end } = collector();
    // 7200 characters of words, the secret, then 1014 more: 1024 before the end lands inside
    // the secret, so a cut there would leave both halves unrecognisable.
    const text = `${"w ".repeat(3600)}${SECRET} ${"z ".repeat(506)}z`;
    expect(text.length - 1024).toBeGreaterThan(7200);
    expect(text.length - 1024).toBeLessThan(7200 + SECRET.length);
    feed(text);
    expect(emitted.join("")).toBe("w ".repeat(3600));
    end();
    expect(emitted.join("")).toBe(text.replace(SECRET, REDACTED));
  });

  it("passes at most limitBytes in all, then nothing", () => {
    const { emitted, feed, end } = collector(10);
    feed("0123456789abc\n");
    feed("more\n");
    end();
    expect(emitted).toEqual(["0123456789"]);
  });

  it("counts the limit after redaction and in bytes, never splitting a character", () => {
    const { emitted, feed } = collector(5);
    feed("ééé\n");
    expect(emitted).toEqual(["éé"]);
    const redacted = collector(REDACTED.length + 2);
    redacted.feed(`${SECRET}\nnext line\n`);
    expect(redacted.emitted).toEqual([`${REDACTED}\nn`]);
  });
});
