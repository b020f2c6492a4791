import type { Canary } from "../agentsh/self-test.js";
import type { ProofRecord } from "./monitor.js";

/**
 * Per protection category: what the bundle and installation claim, and what the last canary
 * round proved, with its time. A claim without a passing probe is not a protection.
 */
export interface ProtectionStatus {
  category: string;
  claim: { claimed: boolean; by: Record<string, boolean> };
  proof: {
    proved: boolean | null;
    probedAt: string | null;
    canaries: Array<{ name: string; command: string; passed: boolean | null }>;
  };
}

export type ProtectionReport = () => ProtectionStatus[];

export function createProtectionReport(options: {
  canaries: readonly Canary[];
  staticChecks: Record<string, boolean>;
  lastProof: () => ProofRecord | null;
}): ProtectionReport {
  const categories = [...new Set(options.canaries.map((c) => c.category))];
  return () => {
    const last = options.lastProof();
    return categories.map((category) => {
      const canaries = options.canaries.filter((c) => c.category === category);
      const by = Object.fromEntries(
        [...new Set(canaries.flatMap((c) => c.claimedBy))].map((name) => [
          name,
          options.staticChecks[name] ?? false,
        ]),
      );
      const results = canaries.map((c) => ({
        name: c.name,
        command: c.command,
        passed: last ? (last.checks[c.name] ?? null) : null,
      }));
      return {
        category,
        claim: { claimed: Object.values(by).every(Boolean), by },
        proof: {
          proved: last ? results.every((r) => r.passed === true) : null,
          probedAt: last?.at ?? null,
          canaries: results,
        },
      };
    });
  };
}
