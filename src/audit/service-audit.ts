import path from "node:path";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { AuditStore } from "./audit-log.js";
import { startRetentionJob } from "./events-retention.js";
import { openSqliteAuditStore } from "./sqlite-store.js";

/**
 * The audit trail as the Node entry runs it: PostgreSQL when DATABASE_URL is set (one trail for
 * every instance), else SQLite in the state directory. Every entry also goes to the JSON log as
 * an `audit` line, and a retention job bounds the trail and agentsh's event database.
 */
export async function startServiceAudit(options: {
  config: Config["audit"];
  logger: Logger;
  /** agentsh's state dir (scripts/boot's AGENTSH_STATE_DIR): the default database paths. */
  stateDir: string;
  /** Whether no command is in flight. */
  idle: () => boolean;
  /** The event databases of tenant policies' own agentsh servers, pruned alike. */
  moreEventsDbs?: readonly string[];
}): Promise<{ store: AuditStore; stop: () => Promise<void> }> {
  const { config, logger } = options;
  // The PostgreSQL client is loaded only when it is used (about 1.5 MiB of heap, more RSS).
  const durable = config.databaseUrl
    ? await (await import("./postgres-store.js")).openPostgresAuditStore({
        connectionString: config.databaseUrl,
        onError: (error) => logger.warn("audit database connection lost", { error: error.message }),
      })
    : openSqliteAuditStore(config.dbPath ?? path.join(options.stateDir, "audit.db"));
  logger.info("audit trail", {
    backend: durable.backend,
    ...(durable.backend === "sqlite"
      ? { path: config.dbPath ?? path.join(options.stateDir, "audit.db") }
      : { database: redactedUrl(config.databaseUrl ?? "") }),
  });
  const store: AuditStore = {
    ...durable,
    async append(entry) {
      logger.info("audit", { ...entry });
      await durable.append(entry);
    },
  };
  const retention = { maxAgeMs: config.maxAgeMs, maxEntries: config.maxEntries };
  const dbPaths = [
    config.eventsDb ?? path.join(options.stateDir, "events.db"),
    ...(options.moreEventsDbs ?? []),
  ];
  const stopJobs = dbPaths.map((dbPath, i) =>
    startRetentionJob({
      dbPath,
      settings: { maxAgeMs: config.maxAgeMs, maxBytes: config.eventsMaxBytes },
      intervalMs: config.retentionIntervalMs,
      idle: options.idle,
      // The service's own trail once, with the default server's events.
      pruneAuditLog: i === 0 ? () => durable.prune(retention) : async () => 0,
      onReport: (report) => {
        if (report.deletedEvents + report.deletedOutputs + report.auditDeleted > 0) {
          logger.info("audit retention", { dbPath, ...report });
        }
      },
      onError: (error) => logger.warn("audit retention failed", { dbPath, error: error.message }),
    }),
  );
  return {
    store,
    stop: async () => {
      for (const stopJob of stopJobs) stopJob();
      await durable.close();
    },
  };
}

/** The database URL without its password, for the log. */
function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparsable URL)";
  }
}
