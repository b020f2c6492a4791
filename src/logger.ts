/**
 * Structured JSON-lines logging: one schema for every line the process writes (docs/logging.md).
 * Fields are data; never pass secrets or request bodies.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;
/** Who wrote the line: the service, agentsh's server (relayed) or scripts/boot. */
export type LogSource = "service" | "agentsh" | "boot";

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export const LOG_LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
/** The fields every line has, first and in this order. A field of the same name moves to `fields`. */
const RESERVED = new Set(["time", "level", "source", "message", "fields"]);

export function createJsonLogger(
  minLevel: LogLevel,
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  source: LogSource = "service",
): Logger {
  const log =
    (level: LogLevel) =>
    (message: string, fields: LogFields = {}) => {
      if (LOG_LEVELS[level] < LOG_LEVELS[minLevel]) return;
      write(JSON.stringify(logRecord(level, source, message, fields)));
    };
  return { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
}

/** One line of the schema: time, level, source, message, then the caller's fields. */
export function logRecord(
  level: LogLevel,
  source: LogSource,
  message: string,
  fields: LogFields,
  time: Date = new Date(),
): Record<string, unknown> {
  const record: Record<string, unknown> = { time: time.toISOString(), level, source, message };
  const clashing: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    if (RESERVED.has(key)) clashing[key] = value;
    else record[key] = value;
  }
  if (Object.keys(clashing).length > 0) record.fields = clashing;
  return record;
}
