import { constants, openSync } from "node:fs";
import { Socket } from "node:net";
import type { LogFields, Logger, LogLevel } from "../logger.js";

/**
 * agentsh's server writes Go's default slog text lines (`2026/12/05 16:45:08 INFO message k=v`)
 * and a few plain lines to its stdout and stderr; it has no JSON output and ignores its
 * `logging.*` config (v0.16.9). scripts/boot sends both streams into a named pipe, and the
 * service relays each line here as a line of its own schema (docs/logging.md), source "agentsh".
 */
export interface AgentshLogLine {
  level: LogLevel;
  message: string;
  fields: LogFields;
}

const SLOG_LINE =
  /^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)? (DEBUG|INFO|WARN|ERROR)(?:[+-]\d+)? (.*)$/;
const VALUE = String.raw`(?:"(?:[^"\\]|\\.)*"|[^\s"]*)`;
const ATTRS = new RegExp(String.raw`^[^\s="]+=${VALUE}(?: [^\s="]+=${VALUE})*$`);
const ATTR = new RegExp(String.raw`([^\s="]+)=(${VALUE})`, "g");

/**
 * Lines agentsh writes for every command that only repeat what the service logs itself (the
 * request, its audit entry, the launcher's Landlock ABI at boot): debug, so LOG_LEVEL=info
 * hides them. agentsh's level stays in `agentshLevel`.
 */
const PER_COMMAND = new Set([
  "landlock config prepared for wrapper",
  "seccomp openat emulation disabled: other backend active",
]);

/** Longest line relayed whole; the rest is cut (agentsh's own lines are far shorter). */
export const MAX_LINE_BYTES = 16 * 1024;

export function parseAgentshLine(line: string): AgentshLogLine | null {
  const text = line.replace(/\r$/, "");
  if (text.trim() === "") return null;
  const slog = SLOG_LINE.exec(text);
  if (!slog) {
    // Plain lines: the listen notice on stdout; anything else is a problem report on stderr
    // (an invalid setting, a panic), never hidden.
    if (/^agentsh server listening on /.test(text))
      return { level: "info", message: text, fields: {} };
    // agentsh ending the process group of a command that has already ended (the service
    // ends a command's processes itself): nothing went wrong.
    if (/^exec: failed to kill process group \d+: no such process$/.test(text))
      return { level: "debug", message: text, fields: {} };
    return {
      level: /^(panic|fatal error):/.test(text) ? "error" : "warn",
      message: text,
      fields: {},
    };
  }
  const agentshLevel = slog[1] ?? "INFO";
  const { message, attrs } = splitAttrs(slog[2] ?? "");
  const level = agentshLevel.toLowerCase() as LogLevel;
  const fields: LogFields = Object.keys(attrs).length > 0 ? { attrs } : {};
  if (PER_COMMAND.has(message) && level === "info") {
    return { level: "debug", message, fields: { ...fields, agentshLevel } };
  }
  return { level, message, fields };
}

/** slog's message is unquoted: the attributes are the longest tail of `key=value` pairs. */
function splitAttrs(rest: string): { message: string; attrs: Record<string, string> } {
  for (let i = rest.indexOf(" "); i !== -1; i = rest.indexOf(" ", i + 1)) {
    const tail = rest.slice(i + 1);
    if (!ATTRS.test(tail)) continue;
    const attrs: Record<string, string> = {};
    for (const [, key = "", value = ""] of tail.matchAll(ATTR)) attrs[key] = unquote(value);
    return { message: rest.slice(0, i), attrs };
  }
  return { message: rest, attrs: {} };
}

function unquote(value: string): string {
  if (!value.startsWith('"')) return value;
  try {
    return JSON.parse(value) as string;
  } catch {
    // Go escapes JSON does not know (\x00, \a): keep the quoted text's inside as it is.
    return value.slice(1, -1);
  }
}

/** Splits a byte stream into lines, cutting any line longer than MAX_LINE_BYTES. */
export function lineSplitter(onLine: (line: string, cut: boolean) => void) {
  let pending = "";
  let cutting = false;
  return {
    push(chunk: string) {
      pending += chunk;
      for (let nl = pending.indexOf("\n"); nl !== -1; nl = pending.indexOf("\n")) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (cutting) cutting = false;
        else onLine(line, false);
      }
      if (Buffer.byteLength(pending) > MAX_LINE_BYTES) {
        if (!cutting) onLine(pending.slice(0, MAX_LINE_BYTES), true);
        pending = "";
        cutting = true;
      }
    },
    flush() {
      if (pending !== "" && !cutting) onLine(pending, false);
      pending = "";
    },
  };
}

/** Logs one of agentsh's lines through `logger` (created with source "agentsh"). */
export function relayLine(logger: Logger, line: string, cut = false): void {
  const parsed = parseAgentshLine(line);
  if (!parsed) return;
  logger[parsed.level](parsed.message, cut ? { ...parsed.fields, cut: true } : parsed.fields);
}

/**
 * Reads agentsh's output from the named pipe scripts/boot made (AGENTSH_LOG_PIPE) for as long as
 * the service runs. Non-blocking: a FIFO read through fs streams would hold a libuv thread.
 */
export function relayAgentshLog(pipePath: string, logger: Logger, problems: Logger): () => void {
  const fd = openSync(pipePath, constants.O_RDONLY | constants.O_NONBLOCK);
  const socket = new Socket({ fd, readable: true, writable: false });
  const lines = lineSplitter((line, cut) => relayLine(logger, line, cut));
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => lines.push(chunk));
  socket.on("end", () => lines.flush());
  socket.on("error", (error) =>
    problems.warn("agentsh log relay failed", { pipe: pipePath, error: error.message }),
  );
  return () => socket.destroy();
}
