import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { expect } from "vitest";
import type { CommandResult } from "../../src/command-result.js";

/**
 * The end-to-end suite talks to a running governed stack over HTTP only.
 * - Local: `scripts/test` starts agentsh + the app inside an isolated network namespace
 *   (`test/net/with-stack.ts`) and passes SERVICE_URL and CANARY_LOG.
 * - Deployment: `TEST_URL=https://… npx vitest run --project e2e`; the canary checks need the
 *   local namespace or the stack's files and are skipped there (skipWhen("remote"), "[local only]"
 *   in their names).
 */
const testUrl = process.env.TEST_URL;
// with-stack exports SERVICE_URL (vitest replaces BASE_URL with Vite's own "/").
export const BASE_URL = testUrl ?? process.env.SERVICE_URL ?? "";
export const CANARY_LOG = testUrl ? undefined : process.env.CANARY_LOG;
export const REMOTE = testUrl !== undefined;
const API_KEY = process.env.E2E_API_KEY;

if (!BASE_URL) {
  throw new Error(
    "The e2e suite needs a governed stack: run `scripts/test`, or set TEST_URL to a deployment.",
  );
}
if (!REMOTE && !CANARY_LOG) {
  throw new Error("CANARY_LOG is not set: run the local e2e suite through test/net/with-stack.ts.");
}

/** Peak (VmHWM) and current RSS (MiB) of the process listening on `port` in this namespace. */
export function memoryOf(port: number): { peakMiB: number; rssMiB: number } {
  const out = execFileSync("ss", ["-Hltnp", `sport = :${port}`], { encoding: "utf8" });
  const pid = out.match(/pid=(\d+)/)?.[1];
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) =>
    Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))?.[1]);
  return { peakMiB: Math.round(kib("VmHWM") / 1024), rssMiB: Math.round(kib("VmRSS") / 1024) };
}

export async function http(path: string, init: RequestInit = {}): Promise<Response> {
  const deadline = AbortSignal.timeout(60_000);
  const signal = init.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
  const headers = new Headers(init.headers);
  if (API_KEY && !headers.has("X-API-Key")) headers.set("X-API-Key", API_KEY);
  return fetch(`${BASE_URL}${path}`, { ...init, headers, signal });
}

export interface ExecuteResponse {
  command: string;
  result: CommandResult;
  requestId: string;
}

export async function execute(command: string, timeoutMs?: number): Promise<CommandResult> {
  const res = await http("/execute", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(timeoutMs ? { command, timeoutMs } : { command }),
  });
  const body = (await res.json()) as ExecuteResponse;
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.result;
}

/** The launcher's layers as /health reports them on this host ("enforced" or why not). */
export async function isolationLayers(): Promise<Record<string, string>> {
  const body = (await (await http("/health")).json()) as {
    isolation: { layers: Record<string, string> };
  };
  return body.isolation.layers;
}

/** Whether /health says a layer (named by its key's first word, e.g. "uid-drop") is enforced. */
export async function layerEnforced(name: string): Promise<boolean> {
  const layers = await isolationLayers();
  return Object.entries(layers).some(
    ([key, state]) => key.startsWith(name) && /^enforced(?: \(|$)/.test(state),
  );
}

/**
 * The deployment profile the stack was booted as: `render` holds the launcher to Landlock ABI 5
 * in a container without CAP_SYS_PTRACE (tools/container/test-image), `host` is the test host.
 */
export const PROFILE =
  process.env.E2E_PROFILE ?? (process.env.E2E_STACK === "container" ? "container" : "host");

/** Who governed commands run as: a slot user where the uid drop is enforced, else root. */
export async function expectedCommandUser(): Promise<RegExp> {
  return (await layerEnforced("uid-drop")) ? /^gexec-\d+\n$/ : /^root\n$/;
}

export interface DemoEntry {
  command: string;
  /** Set on `/demo/status`'s installation report, which the service runs itself. */
  ranBy?: "service";
  expected: "allowed" | "blocked" | "denied";
  asExpected: boolean;
  result: CommandResult;
}

export async function demo(name: string): Promise<DemoEntry[]> {
  const res = await http(`/demo/${name}`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as DemoEntry[] | { results: DemoEntry[] };
  return Array.isArray(body) ? body : body.results;
}

export function entry(entries: DemoEntry[], command: string): DemoEntry {
  const found = entries.find((e) => e.command === command);
  if (!found) throw new Error(`demo has no command ${command}`);
  return found;
}

/** Blocked means agentsh's decision with the named rule — never "the command failed". */
export function expectBlocked(
  result: CommandResult,
  rule: string,
  kind?: "command" | "file" | "network",
) {
  expect(result.outcome, JSON.stringify(result)).toBe("blocked");
  expect(result.blocked).toBe(true);
  expect(result.success).toBe(false);
  expect(result.decision?.rule, JSON.stringify(result.decision)).toBe(rule);
  if (kind) expect(result.decision?.kind).toBe(kind);
  expect(result.message).toContain(rule);
}

export function expectAllowed(result: CommandResult, stdout?: string | RegExp) {
  expect(result.outcome, JSON.stringify(result)).toBe("ok");
  expect(result.blocked).toBe(false);
  expect(result.decision).toBeNull();
  if (stdout !== undefined) {
    if (typeof stdout === "string") expect(result.stdout).toBe(stdout);
    else expect(result.stdout).toMatch(stdout);
  }
}

interface CanaryEntry {
  ts: string;
  event: "accept" | "request" | "tls-error";
  localAddress: string;
  localPort: number;
  sni?: string;
  host?: string;
}

/** TCP connections the canary accepted on `address` since `since` (ms epoch). */
export function canaryConnections(address: string, since: number): CanaryEntry[] {
  if (!CANARY_LOG) throw new Error("no canary log (remote target)");
  return readFileSync(CANARY_LOG, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as CanaryEntry)
    .filter((e) => e.event === "accept" && e.localAddress === address && Date.parse(e.ts) >= since);
}

/**
 * Runs `command` and returns its result with the connections each address received meanwhile.
 * The canary listens on every stand-in address, so zero connections to a reachable listener
 * proves the policy stopped the traffic (not a missing route).
 */
export async function executeWatching(command: string, addresses: string[]) {
  const since = Date.now() - 5;
  const result = await execute(command);
  // The canary logs synchronously on accept; a short pause covers a connect still in flight.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const connections = Object.fromEntries(
    addresses.map((a) => [a, canaryConnections(a, since).length]),
  );
  return { result, connections };
}

/**
 * A network block, proven: agentsh's rule, and (on the local test network) zero connections at
 * each stand-in target, whose canary listener would have accepted them. Against a remote
 * deployment only the rule can be checked.
 */
export async function expectNetworkBlocked(command: string, rule: string, targets: string[]) {
  if (REMOTE) {
    expectBlocked(await execute(command), rule, "network");
    return;
  }
  const { result, connections } = await executeWatching(command, targets);
  expectBlocked(result, rule, "network");
  for (const target of targets) expect(connections[target], `connections to ${target}`).toBe(0);
}

/** Polls `check` every 100 ms until it holds; throws after `deadlineMs`. Returns the wait. */
export async function waitFor(
  what: string,
  deadlineMs: number,
  check: () => boolean | Promise<boolean>,
): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > deadlineMs) throw new Error(`${what}: not within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** One server-sent event of a streamed `POST /execute`, with when it arrived (ms epoch). */
export interface StreamedEvent {
  event: string;
  data: unknown;
  at: number;
}

/**
 * `POST /execute` with `Accept: text/event-stream`: the events as they arrive. `onEvent` sees
 * each one (return true to hang up there); every stream has a deadline.
 */
export async function streamExecute(
  body: Record<string, unknown>,
  options: {
    onEvent?: (event: StreamedEvent) => boolean | undefined;
    deadlineMs?: number;
    apiKey?: string;
  } = {},
): Promise<{
  status: number;
  contentType: string | null;
  events: StreamedEvent[];
  json?: unknown;
}> {
  const hangUp = new AbortController();
  const res = await http("/execute", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "text/event-stream",
      ...(options.apiKey ? { "X-API-Key": options.apiKey } : {}),
    },
    body: JSON.stringify(body),
    signal: AbortSignal.any([hangUp.signal, AbortSignal.timeout(options.deadlineMs ?? 60_000)]),
  });
  const contentType = res.headers.get("content-type");
  if (!contentType?.startsWith("text/event-stream")) {
    return { status: res.status, contentType, events: [], json: await res.json() };
  }
  const events: StreamedEvent[] = [];
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for await (const piece of res.body ?? []) {
      buffered += decoder.decode(piece as Uint8Array, { stream: true });
      for (;;) {
        const end = buffered.indexOf("\n\n");
        if (end === -1) break;
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const event = /^event: ?(.*)$/m.exec(block)?.[1] ?? "message";
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        const parsed: StreamedEvent = {
          event,
          data: data ? JSON.parse(data) : null,
          at: Date.now(),
        };
        events.push(parsed);
        if (options.onEvent?.(parsed)) {
          hangUp.abort();
          return { status: res.status, contentType, events };
        }
      }
    }
  } catch (error) {
    if (!hangUp.signal.aborted) throw error;
  }
  return { status: res.status, contentType, events };
}

/**
 * Where the e2e suite keeps what a person looks at (the console screenshot, the MCP client
 * transcript): test/artifacts/ by default (the committed copies), or E2E_ARTIFACTS_DIR, which
 * scripts/test points at .test-logs/ so that a test run leaves the working tree unchanged.
 */
export const ARTIFACTS_DIR =
  process.env.E2E_ARTIFACTS_DIR ?? new URL("../artifacts/", import.meta.url).pathname;

/** A second API key the stack accepts (API_KEYS): its sessions are not the first key's. */
export const OTHER_API_KEY = process.env.E2E_API_KEY_2;

/** Processes on this machine whose environment holds `M=<marker>` (a test's own commands). */
export function pidsWithMarker(marker: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, "utf8").split("\0").includes(`M=${marker}`)) {
        pids.push(Number(name));
      }
    } catch {}
  }
  return pids;
}

/** The approvers' key the suite's stacks run with (APPROVER_KEYS; scripts/test sets it). */
export const APPROVER_KEY = process.env.E2E_APPROVER_KEY ?? "";

interface ApprovalAnswer {
  status?: string;
  decidedBy?: string;
  error?: { code: string };
}

/** `POST /approvals/:id` with a reason, as an approver (or as `key`, to be refused). */
export async function decideApproval(
  id: string,
  decision: "approve" | "deny",
  key = APPROVER_KEY,
): Promise<{ status: number; body: ApprovalAnswer }> {
  const res = await http(`/approvals/${id}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-API-Key": key },
    body: JSON.stringify({ decision, reason: `e2e ${decision}` }),
  });
  return { status: res.status, body: (await res.json()) as ApprovalAnswer };
}
