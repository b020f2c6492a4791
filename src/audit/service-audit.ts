import path from "node:path";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { type AuditLog, createAuditLog } from "./audit-log.js";
import { startRetentionJob } from "./events-retention.js";

/**
 * The audit log as the Node entry runs it: every entry also goes to the JSON log as an `audit`
 * line (the copy to ship elsewhere), and a retention job bounds both the log and agentsh's event
 * database.
 */
export function startServiceAudit(options: {
  config: Config["audit"];
  logger: Logger;
  /** agentsh's state dir (scripts/boot's AGENTSH_STATE_DIR), for the default database path. */
  stateDir: string;
  /** Whether no command is in flight. */
  idle: () => boolean;
}): { log: AuditLog; stop: () => void } {
  const { config, logger } = options;
  const memory = createAuditLog({ maxEntries: config.maxEntries, maxAgeMs: config.maxAgeMs });
  const log: AuditLog = {
    ...memory,
    record(entry) {
      memory.record(entry);
      logger.info("audit", { ...entry });
    },
  };
  const dbPath = config.eventsDb ?? path.join(options.stateDir, "events.db");
  const stop = startRetentionJob({
    dbPath,
    settings: { maxAgeMs: config.maxAgeMs, maxBytes: config.eventsMaxBytes },
    intervalMs: config.retentionIntervalMs,
    idle: options.idle,
    pruneAuditLog: () => memory.prune(),
    onReport: (report) => {
      if (report.deletedEvents + report.deletedOutputs + report.auditDeleted > 0) {
        logger.info("audit retention", { dbPath, ...report });
      }
    },
    onError: (error) => logger.warn("audit retention failed", { dbPath, error: error.message }),
  });
  return { log, stop };
}
