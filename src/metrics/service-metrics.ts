import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { AuditEntry } from "../audit/audit-log.js";
import type { EnforcementState } from "../enforcement/monitor.js";
import type { ProtectionReport } from "../enforcement/protections.js";

/**
 * What `GET /metrics` reports, in one registry of its own (no global state: two apps in one
 * process, as in the tests, count apart). Counters move when a command is answered (from its
 * audit entry, so the trail and the counters agree); gauges are read from their sources at
 * scrape time.
 */
export interface ServiceMetrics {
  readonly registry: Registry;
  /** One answered command: its entry, and how long it took from arrival to answer. */
  commandAnswered(entry: AuditEntry, seconds: number): void;
  /** How long the audit append held the answer back. */
  auditWrite(seconds: number): void;
  /** A command hit a resource limit (memory, processes, CPU time…). */
  limitHit(limit: string): void;
}

export interface MetricSources {
  commandStats: () => { slots: number; inFlight: number; queued: number };
  enforcement: () => EnforcementState;
  protections: ProtectionReport;
  sessions: () => number;
  auditPending: () => number;
}

const PREFIX = "gexec_";
const MODES: readonly EnforcementState["mode"][] = ["enforced", "degraded", "unverified"];

export function createServiceMetrics(sources: MetricSources): ServiceMetrics {
  const registry = new Registry();
  const commands = new Counter({
    name: `${PREFIX}commands_total`,
    help: "Commands answered, by outcome, the rule that blocked them, the layer that decided and the tenant that asked ('' when none).",
    labelNames: ["outcome", "rule", "layer", "tenant"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: `${PREFIX}command_duration_seconds`,
    help: "Time from a command's arrival to its answer (queue wait and audit write included).",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const auditWrite = new Histogram({
    name: `${PREFIX}audit_write_seconds`,
    help: "Time an answer waited for its audit entry to be durable.",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5],
    registers: [registry],
  });
  const limitHits = new Counter({
    name: `${PREFIX}limit_hits_total`,
    help: "Commands stopped by a resource limit, by limit.",
    labelNames: ["limit"] as const,
    registers: [registry],
  });
  new Gauge({
    name: `${PREFIX}command_slots`,
    help: "Command slots (concurrent commands), by state.",
    labelNames: ["state"] as const,
    registers: [registry],
    collect() {
      const stats = sources.commandStats();
      this.set({ state: "in_use" }, stats.inFlight);
      this.set({ state: "free" }, Math.max(0, stats.slots - stats.inFlight));
    },
  });
  new Gauge({
    name: `${PREFIX}command_queue_depth`,
    help: "Commands waiting for a slot.",
    registers: [registry],
    collect() {
      this.set(sources.commandStats().queued);
    },
  });
  new Gauge({
    name: `${PREFIX}enforcement_state`,
    help: "1 for the current enforcement mode (enforced, degraded, unverified), 0 for the others.",
    labelNames: ["mode"] as const,
    registers: [registry],
    collect() {
      const { mode } = sources.enforcement();
      for (const m of MODES) this.set({ mode: m }, m === mode ? 1 : 0);
    },
  });
  new Gauge({
    name: `${PREFIX}canary_passed`,
    help: "The last canary round, per canary: 1 passed, 0 failed (absent before the first round).",
    labelNames: ["category", "canary"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const protection of sources.protections()) {
        for (const canary of protection.proof.canaries) {
          if (canary.passed === null) continue;
          this.set({ category: protection.category, canary: canary.name }, canary.passed ? 1 : 0);
        }
      }
    },
  });
  new Gauge({
    name: `${PREFIX}canary_last_run_timestamp_seconds`,
    help: "When the last canary round finished (0 before the first).",
    registers: [registry],
    collect() {
      const at = sources.protections().find((p) => p.proof.probedAt)?.proof.probedAt;
      this.set(at ? Date.parse(at) / 1000 : 0);
    },
  });
  new Gauge({
    name: `${PREFIX}sessions`,
    help: "Governed sessions this instance holds.",
    registers: [registry],
    collect() {
      this.set(sources.sessions());
    },
  });
  new Gauge({
    name: `${PREFIX}audit_pending_entries`,
    help: "Audit entries waiting for their batch to be written.",
    registers: [registry],
    collect() {
      this.set(sources.auditPending());
    },
  });

  return {
    registry,
    commandAnswered(entry, seconds) {
      commands.inc({
        outcome: entry.outcome,
        rule: entry.rule ?? "",
        layer: entry.layer ?? "",
        tenant: tenantOf(entry.caller),
      });
      duration.observe(seconds);
    },
    auditWrite: (seconds) => auditWrite.observe(seconds),
    limitHit: (limit) => limitHits.inc({ limit }),
  };
}

/** The tenant of an audit entry's caller (`tenant-<name>`, src/tenants/tenants.ts), else "". */
function tenantOf(caller: string | null): string {
  return caller?.startsWith("tenant-") ? caller.slice("tenant-".length) : "";
}

/**
 * The exposition `text` cut to one tenant's series: the samples labelled `tenant="<name>"`, with
 * their families' HELP and TYPE lines. What a non-operator tenant sees on `GET /metrics`.
 */
export function onlyTenantSeries(text: string, tenant: string): string {
  const label = new RegExp(`[{,]tenant="${tenant.replace(/[^a-z0-9-]/g, "")}"[,}]`);
  const kept: string[] = [];
  let header: string[] = [];
  let family = "";
  for (const line of text.split("\n")) {
    const meta = /^# (HELP|TYPE) (\S+)/.exec(line);
    if (meta) {
      if (meta[2] !== family) {
        family = meta[2] ?? "";
        header = [];
      }
      header.push(line);
      continue;
    }
    if (line !== "" && label.test(line)) {
      kept.push(...header, line);
      header = [];
    }
  }
  return kept.length > 0 ? `${kept.join("\n")}\n` : "";
}
