import type { AgentshConfig } from "./config-schema.js";

/**
 * Redacts secrets from command output with the bundle's `dlp` settings. agentsh applies its DLP
 * only to traffic through its LLM proxy, so the service applies the same patterns to the output
 * it returns. Custom patterns are RE2 (Go); the subset used in bundles is also valid in JS.
 */

export interface RedactionPattern {
  name: string;
  display: string;
  regex: RegExp;
}

export interface Redaction {
  text: string;
  /** Pattern name → number of matches replaced. */
  counts: Record<string, number>;
}

export type Redactor = (text: string) => Redaction;

/** Our own regexes for the built-in categories agentsh's `dlp.patterns` switches on. */
const BUILTIN_PATTERNS: Record<string, { display: string; source: string; flags?: string }> = {
  api_keys: {
    display: "api_key",
    source:
      "\\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|xox[abprs]-[A-Za-z0-9-]{10,})\\b",
  },
  email: { display: "email", source: "\\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}\\b" },
  phone: { display: "phone", source: "\\b(?:\\+?1[-. ]?)?\\(?\\d{3}\\)?[-. ]\\d{3}[-. ]\\d{4}\\b" },
  credit_card: { display: "credit_card", source: "\\b(?:\\d[ -]?){13,16}\\b" },
  ssn: { display: "ssn", source: "\\b\\d{3}-\\d{2}-\\d{4}\\b" },
};

export function compileRedactionPatterns(dlp: AgentshConfig["dlp"]): {
  patterns: RedactionPattern[];
  problems: string[];
} {
  const patterns: RedactionPattern[] = [];
  const problems: string[] = [];
  // Custom patterns first: they are the most specific (e.g. private keys, JWTs).
  for (const [index, custom] of (dlp?.custom_patterns ?? []).entries()) {
    if (mayMatchLineBreak(custom.regex)) {
      problems.push(
        `dlp.custom_patterns[${index}] (${custom.name}): may match across a line break (\\s, \\n, [^…], (?s)); streamed output is redacted line by line, so write [ \\t] instead of \\s`,
      );
      continue;
    }
    const inlineCaseless = custom.regex.startsWith("(?i)");
    const source = inlineCaseless ? custom.regex.slice(4) : custom.regex;
    try {
      patterns.push({
        name: custom.name,
        display: custom.display ?? custom.name,
        regex: new RegExp(source, inlineCaseless ? "gi" : "g"),
      });
    } catch (error) {
      problems.push(`dlp.custom_patterns[${index}] (${custom.name}): ${(error as Error).message}`);
    }
  }
  for (const [name, enabled] of Object.entries(dlp?.patterns ?? {})) {
    const builtin = BUILTIN_PATTERNS[name];
    if (!enabled || !builtin) continue;
    patterns.push({ name, display: builtin.display, regex: new RegExp(builtin.source, "g") });
  }
  return { patterns, problems };
}

/**
 * Whether a pattern could match a line break: `\s`, `\n`, `\r`, a negated class or the
 * dot-all flag. Conservative (it may refuse a pattern that could not), never the other way.
 */
export function mayMatchLineBreak(source: string): boolean {
  return /\\[snrvfR]|\\x0[aAdD]|\\u000[aAdD]|\[\^|\(\?[a-z]*s/.test(source);
}

export function createRedactor(patterns: readonly RedactionPattern[]): Redactor {
  return (text) => {
    const counts: Record<string, number> = {};
    let redacted = text;
    for (const pattern of patterns) {
      redacted = redacted.replace(pattern.regex, () => {
        counts[pattern.name] = (counts[pattern.name] ?? 0) + 1;
        return `[REDACTED:${pattern.display}]`;
      });
    }
    return { text: redacted, counts };
  };
}

/** A line longer than this is passed on in pieces (cut at whitespace where there is some). */
const MAX_HELD_CHARS = 8192;
/** How much of a long line stays held back when a piece is passed on. */
const HELD_BACK_CHARS = 1024;

/**
 * Redaction for output that arrives in pieces (streaming). A secret can be split across two
 * pieces, so text is passed on in whole lines, each redacted like the buffered output (no
 * pattern spans a line break). A line that grows past 8 KiB without ending is passed on up to
 * the last whitespace before its final 1 KiB, so a token up to 1 KiB long is never split.
 * At most `limitBytes` are passed on; the rest is dropped (the final result says so).
 */
export function createStreamRedactor(
  redact: Redactor,
  emit: (text: string) => void,
  limitBytes: number,
): { feed(text: string): void; end(): void } {
  let held = "";
  let sentBytes = 0;
  const pass = (text: string) => {
    if (text === "" || sentBytes >= limitBytes) return;
    let redacted = redact(text).text;
    const room = limitBytes - sentBytes;
    if (Buffer.byteLength(redacted) > room) {
      redacted = Buffer.from(redacted)
        .subarray(0, room)
        .toString("utf8")
        .replace(/\uFFFD$/, "");
    }
    sentBytes += Buffer.byteLength(redacted);
    emit(redacted);
  };
  return {
    feed(text) {
      held += text;
      const lineEnd = held.lastIndexOf("\n") + 1;
      if (lineEnd > 0) {
        pass(held.slice(0, lineEnd));
        held = held.slice(lineEnd);
      }
      if (held.length > MAX_HELD_CHARS) {
        const limit = held.length - HELD_BACK_CHARS;
        const space = held.slice(0, limit).search(/\s\S*$/);
        const cut = space > 0 ? space + 1 : limit;
        pass(held.slice(0, cut));
        held = held.slice(cut);
      }
    },
    end() {
      pass(held);
      held = "";
    },
  };
}
