import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { renderTable } from "./stats.js";

/**
 * Reads the app's V8 CPU profile (`node --cpu-prof`, written when the app exits) and says where
 * its main thread spent the time of a window of sequential `POST /execute` requests. Timestamps
 * of the profile and of `process.hrtime` are both the monotonic clock in µs, so the window the
 * benchmark recorded selects exactly the samples taken while it sent requests.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileWindow {
  startUs: number;
  endUs: number;
  requests: number;
}

export interface CpuSummary {
  requests: number;
  windowMs: number;
  /** Main-thread time per request by where it went, ms. */
  perRequest: Array<{ part: string; ms: number }>;
  /** The functions with the most self time per request (JavaScript only), ms. */
  topFunctions: Array<{ fn: string; ms: number }>;
}

/** The profile the app wrote: the one whose scripts include the app's dist/server.js. */
export function findAppProfile(dir: string): string | undefined {
  return readdirSync(dir)
    .filter((name) => name.endsWith(".cpuprofile"))
    .map((name) => path.join(dir, name))
    .find((file) => readFileSync(file, "utf8").includes("/dist/server.js"));
}

export function summarizeProfile(file: string, window: ProfileWindow): CpuSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parentOf.set(child, node.id);
  const partCache = new Map<number, string>();
  const partOfNode = (id: number): string => {
    const cached = partCache.get(id);
    if (cached !== undefined) return cached;
    const part = attribute(id, byId, parentOf);
    partCache.set(id, part);
    return part;
  };
  const parts = new Map<string, number>();
  const functions = new Map<string, number>();
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at < window.startUs || at > window.endUs) continue;
    const id = profile.samples[i] ?? -1;
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    const part = partOfNode(id);
    parts.set(part, (parts.get(part) ?? 0) + delta);
    if (frame.url) {
      const fn = `${frame.functionName || "(anonymous)"} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
      functions.set(fn, (functions.get(fn) ?? 0) + delta);
    }
  }
  const perRequest = (us: number) => us / 1_000 / window.requests;
  return {
    requests: window.requests,
    windowMs: (window.endUs - window.startUs) / 1_000,
    perRequest: [...parts.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([part, us]) => ({ part, ms: perRequest(us) })),
    topFunctions: [...functions.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([fn, us]) => ({ fn, ms: perRequest(us) })),
  };
}

/**
 * Where a sample belongs: V8's pseudo-frames as they are; otherwise the nearest frame on its
 * stack that is the app's own code (dist/) or a package, so that Node internals and native calls
 * (fs reads, spawn) count for the code that made them. Node internals with neither: by module.
 */
function attribute(
  id: number,
  byId: Map<number, ProfileNode>,
  parentOf: Map<number, number>,
): string {
  const leaf = byId.get(id)?.callFrame;
  if (!leaf) return "(unknown)";
  if (!leaf.url && leaf.functionName.startsWith("(")) {
    return leaf.functionName === "(idle)"
      ? "(idle: waiting for I/O, the CLI, agentsh)"
      : leaf.functionName;
  }
  for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
    const url = byId.get(at)?.callFrame.url ?? "";
    const pkg = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)?.[1];
    if (pkg) return `package ${pkg}`;
    const app = url.match(/\/dist\/(.+)$/)?.[1];
    if (app) return `app dist/${app}`;
  }
  for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
    const url = byId.get(at)?.callFrame.url ?? "";
    if (url.startsWith("node:")) {
      const segments = url.replace(/^node:(internal\/)?/, "").split("/");
      return `node: ${(segments[0] === "deps" ? segments[1] : segments[0]) ?? url} (no app frame)`;
    }
  }
  return `native ${leaf.functionName || "(anonymous)"}`;
}

const shortUrl = (url: string) =>
  url
    .replace(/^file:\/\/.*?\/node_modules\//, "")
    .replace(/^file:\/\/.*?\/dist\//, "dist/")
    .replace(/^node:internal\//, "node:");

export function renderCpuSummary(summary: CpuSummary): string {
  const ms = (v: number) => v.toFixed(2);
  const total = summary.perRequest.reduce((sum, p) => sum + p.ms, 0);
  return [
    `App main thread during ${summary.requests} sequential POST /execute (${summary.windowMs.toFixed(0)} ms), per request (ms)`,
    renderTable(
      ["where", "ms/request"],
      [
        ...summary.perRequest.slice(0, 14).map((p) => [p.part, ms(p.ms)]),
        [
          `${Math.max(0, summary.perRequest.length - 14)} more (in the JSON)`,
          ms(summary.perRequest.slice(14).reduce((sum, p) => sum + p.ms, 0)),
        ],
        ["total (sampled)", ms(total)],
      ],
    ),
    "",
    "Functions with the most self time, per request (ms)",
    renderTable(
      ["function", "ms/request"],
      summary.topFunctions.map((f) => [f.fn, ms(f.ms)]),
    ),
  ].join("\n");
}
