import { closeSync, constants, openSync, readSync } from "node:fs";
import { StringDecoder } from "node:string_decoder";
import { createJsonLogger, LOG_LEVELS, type LogLevel } from "../logger.js";
import { lineSplitter, relayLine } from "./server-log.js";

/**
 * `node dist/agentsh/server-log-drain.js PIPE`: relays what agentsh has written to the pipe so
 * far, then exits. scripts/boot runs it when agentsh fails before the service (the pipe's
 * reader) starts, so the reason reaches the log in the same schema.
 */
function main(pipePath: string | undefined): void {
  if (!pipePath) throw new Error("usage: server-log-drain PIPE");
  const env = process.env.LOG_LEVEL;
  const level: LogLevel = env !== undefined && env in LOG_LEVELS ? (env as LogLevel) : "info";
  const logger = createJsonLogger(level, undefined, "agentsh");
  const lines = lineSplitter((line, cut) => relayLine(logger, line, cut));
  const decoder = new StringDecoder("utf8");
  const fd = openSync(pipePath, constants.O_RDONLY | constants.O_NONBLOCK);
  const buffer = Buffer.alloc(64 * 1024);
  try {
    for (;;) {
      let read: number;
      try {
        read = readSync(fd, buffer);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EAGAIN") break;
        throw error;
      }
      if (read === 0) break;
      lines.push(decoder.write(buffer.subarray(0, read)));
    }
  } finally {
    closeSync(fd);
  }
  lines.push(decoder.end());
  lines.flush();
}

try {
  main(process.argv[2]);
} catch (error) {
  createJsonLogger("error", undefined, "boot").error("could not read agentsh's output", {
    error: error instanceof Error ? error.message : String(error),
  });
  process.exit(1);
}
