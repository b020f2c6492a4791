// The isolated test network: a network namespace with no link and no route to the host, the
// stand-in addresses on its own lo, a DNS stub and a canary listener in it, and the stack
// booted into it. with-stack.ts is the command line around this module.
//
// Why: end-to-end tests must show that agentsh blocks 10.0.0.1, the cloud metadata addresses,
// evil.com, ... The workplace rules allow such traffic only to loopback or to addresses inside
// a namespace the test built itself. Everything else fails at once with "Network is
// unreachable", so nothing can leave even if enforcement fails, and a failure shows up in the
// canary log instead of being masked.

import { type ChildProcess, spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { delimiter, join } from "node:path";
import {
  exitDescription,
  hasExited,
  isAlive,
  run,
  sessionMembers,
  shellExitCode,
  startDetached,
  stopProcesses,
  waitUntil,
} from "./processes.js";
import { NET_DIR, readStandIns, type StandIns } from "./stand-ins.js";

export const REPO_DIR = join(NET_DIR, "..", "..");

/** What the caller chooses, from the environment variables with-stack.ts documents. */
export interface StackOptions {
  /** Shell command line that starts the stack in the foreground, run by bash from REPO_DIR. */
  command: string;
  /** Start the command under `ip netns exec` (true) or in the host's namespaces (false). */
  inNetns: boolean;
  port: number;
  bootTimeoutMs: number;
  stopTimeoutMs: number;
  /** The stack's stdout+stderr; undefined: stack.log in the work dir. */
  logFile: string | undefined;
  /** Keep the work dir (logs, certificate) after teardown. */
  keepLogs: boolean;
}

/** Reads the options from `env`; throws one error naming every bad variable. */
export function parseStackOptions(env: NodeJS.ProcessEnv): StackOptions {
  const problems: string[] = [];
  const whole = (key: string, fallback: number): number => {
    const value = env[key] ?? String(fallback);
    if (/^\d+$/.test(value)) return Number(value);
    problems.push(`${key} must be a whole number, got '${value}'`);
    return fallback;
  };
  const port = whole("PORT", 10_000);
  const bootTimeout = whole("STACK_BOOT_TIMEOUT", 90);
  const stopTimeout = whole("STACK_STOP_TIMEOUT", 10);
  const inNetns = env.STACK_IN_NETNS ?? "1";
  if (inNetns !== "0" && inNetns !== "1") {
    problems.push(`STACK_IN_NETNS must be 0 or 1, got '${inNetns}'`);
  }
  if (problems.length > 0) throw new Error(problems.join("; "));
  return {
    command: env.STACK_CMD || "scripts/boot",
    inNetns: inNetns === "1",
    port,
    bootTimeoutMs: bootTimeout * 1000,
    stopTimeoutMs: stopTimeout * 1000,
    logFile: env.STACK_LOG || undefined,
    keepLogs: env.KEEP_STACK_LOGS === "1",
  };
}

/** What is missing to run the harness, each with what to do about it; empty when all is there. */
export function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) {
    missing.push("root: the harness creates a network namespace and writes /etc/netns");
  }
  const onPath = (tool: string) =>
    (process.env.PATH ?? "").split(delimiter).some((dir) => dir && existsSync(join(dir, tool)));
  if (!onPath("ip")) missing.push("'ip' (Debian package iproute2)");
  // dnsmasq-base is the bare binary; the 'dnsmasq' package would also start a system-wide DNS
  // service on the host, which we must not do.
  if (!onPath("dnsmasq")) missing.push("'dnsmasq' (Debian package dnsmasq-base)");
  if (!onPath("openssl")) missing.push("'openssl' (Debian package openssl)");
  if (!onPath("curl")) missing.push("'curl' (Debian package curl)");
  if (!existsSync(join(REPO_DIR, "node_modules", "tsx"))) {
    missing.push(`tsx in node_modules: run 'npm ci' in ${REPO_DIR}`);
  }
  return missing;
}

/** A failure the harness explains itself (no stack trace needed). */
export class HarnessError extends Error {}

// Deadlines for our own helpers.
const CANARY_START_MS = 30_000; // node + tsx start-up on a busy 2-core machine
const DNS_START_MS = 10_000;
const HELPER_STOP_MS = 3_000;
const COMMAND_STOP_MS = 10_000;
const PROBE_MS = 5_000;

/** Constant arguments written as one string (none of them contains a space). */
const flags = (text: string) => text.split(" ");

/** The contents of a helper's output file, for error messages. */
function outputOf(file: string): string {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return "";
  }
}

/**
 * One run: the namespace, its helpers, the stack and the command. Every step records what it
 * created before it can fail, so `teardown()` (safe to call at any point, and more than once)
 * removes exactly that.
 */
export class TestNetwork {
  readonly standIns: StandIns = readStandIns();
  /** The namespace's name, once it exists. */
  namespace: string | undefined;
  workDir: string | undefined;
  stackLog = "";
  canaryLog = "";
  canaryCert = "";
  private helpers: ChildProcess[] = [];
  private stack: ChildProcess | undefined;
  private command: ChildProcess | undefined;
  private teardownDone: Promise<void> | undefined;
  private readonly setupStarted = Date.now();

  constructor(
    private readonly options: StackOptions,
    private readonly log: (message: string) => void,
  ) {}

  get tearingDown(): boolean {
    return this.teardownDone !== undefined;
  }

  /** `ip netns exec` argv prefix for this namespace. */
  private inside(...argv: string[]): string[] {
    if (this.namespace === undefined) throw new Error("no namespace yet");
    return ["ip", "netns", "exec", this.namespace, ...argv];
  }

  /** Creates the namespace with its addresses and /etc/netns files. */
  async create(): Promise<void> {
    this.workDir = mkdtempSync("/tmp/with-stack.");
    this.stackLog = this.options.logFile ?? join(this.workDir, "stack.log");
    this.canaryLog = join(this.workDir, "canary.jsonl");
    this.canaryCert = join(this.workDir, "canary-cert.pem");
    writeFileSync(this.canaryLog, "");

    // Unique per run so concurrent runs never share a namespace or /etc/netns dir; the suffix
    // only matters if a killed run left a namespace under a reused pid.
    let lastError = "";
    for (let attempt = 0; attempt < 5 && this.namespace === undefined; attempt++) {
      const suffix = attempt === 0 ? "" : `-${Math.floor(Math.random() * 32_768)}`;
      const candidate = `gexec-${process.pid}${suffix}`;
      const added = await run(["ip", "netns", "add", candidate], PROBE_MS);
      if (added.code === 0) this.namespace = candidate;
      else lastError = added.stderr.trim();
    }
    const ns = this.namespace;
    if (ns === undefined)
      throw new HarnessError(`could not create a network namespace: ${lastError}`);
    this.log(`namespace ${ns} created (work dir ${this.workDir})`);

    await this.ip(["link", "set", "lo", "up"]);
    for (const address of this.standIns.addresses) {
      await this.ip(["addr", "add", `${address}/32`, "dev", "lo"]);
    }
    // The whole safety argument rests on this: lo is the only link and there is no default
    // route. Refuse to go on if anything else showed up.
    const links = (JSON.parse(await this.ip(["-j", "link", "show"])) as Array<{ ifname: string }>)
      .map((link) => link.ifname)
      .join(" ");
    if (links !== "lo") throw new HarnessError(`namespace ${ns} has links other than lo: ${links}`);
    for (const family of ["-4", "-6"]) {
      const routes = (await this.ip(["-j", family, "route", "show", "default"])).trim();
      if (routes !== "" && routes !== "[]") {
        throw new HarnessError(`namespace ${ns} has a default route: ${routes}`);
      }
    }

    // 'ip netns exec' bind-mounts these over /etc/resolv.conf and /etc/hosts, so the host's
    // resolver and hosts entries do not leak in.
    const etc = `/etc/netns/${ns}`;
    mkdirSync(etc, { recursive: true });
    writeFileSync(`${etc}/resolv.conf`, "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n");
    writeFileSync(
      `${etc}/hosts`,
      "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
    );
  }

  /** `ip -n NS ARGS`; returns stdout, throws with ip's message on failure. */
  private async ip(args: string[]): Promise<string> {
    const ns = this.namespace ?? "";
    const result = await run(["ip", "-n", ns, ...args], PROBE_MS);
    if (result.code !== 0) {
      throw new HarnessError(`ip -n ${ns} ${args.join(" ")}: ${result.stderr.trim()}`);
    }
    return result.stdout;
  }

  /** Starts a helper in the namespace; its output goes to NAME.out in the work dir. */
  private startHelper(name: string, argv: string[]): { child: ChildProcess; output: string } {
    const output = join(this.workDir ?? "", `${name}.out`);
    const child = startDetached(this.inside(...argv), output, process.env, REPO_DIR);
    this.helpers.push(child);
    return { child, output };
  }

  /** Starts the DNS stub and the canary (with a fresh certificate) and waits for both. */
  async startHelpers(): Promise<void> {
    const workDir = this.workDir ?? "";
    const { addresses, names } = this.standIns;

    const dnsConfig = [
      "# generated by test/net/test-network.ts from test/net/names.tsv",
      "port=53",
      "listen-address=127.0.0.1",
      "bind-interfaces",
      // Answer only from this file: no upstream servers, no /etc/hosts.
      "no-resolv",
      "no-hosts",
      // Every name not listed below: NXDOMAIN.
      "address=/#/",
      // Per-run files, so concurrent runs don't share /run/dnsmasq.pid.
      `pid-file=${workDir}/dnsmasq.pid`,
      `log-facility=${workDir}/dnsmasq.log`,
      "log-queries",
      "user=nobody",
      ...names.map(
        ({ name, address }) =>
          name.startsWith("*.")
            ? `address=/${name.slice(2)}/${address}` // the domain and all its subdomains
            : `host-record=${name},${address}`, // exactly this name
      ),
    ];
    const dnsConfigFile = join(workDir, "dnsmasq.conf");
    writeFileSync(dnsConfigFile, `${dnsConfig.join("\n")}\n`);
    const dns = this.startHelper("dnsmasq", [
      "dnsmasq",
      "--keep-in-foreground",
      `--conf-file=${dnsConfigFile}`,
    ]);

    // Self-signed, valid for every test name and address, made fresh per run.
    const keyFile = join(workDir, "canary-key.pem");
    const subjectAltName = [
      ...names.map(({ name }) => `DNS:${name}`),
      ...addresses.map((address) => `IP:${address}`),
    ].join(",");
    const certificate = flags("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes");
    const subject = ["-days", "2", "-subj", "/CN=with-stack canary"];
    const files = ["-keyout", keyFile, "-out", this.canaryCert];
    const openssl = await run(
      [
        "openssl",
        ...certificate,
        ...subject,
        "-addext",
        `subjectAltName=${subjectAltName}`,
        ...files,
      ],
      PROBE_MS * 2,
    );
    if (openssl.code !== 0) {
      throw new HarnessError(`openssl could not make the canary certificate: ${openssl.stderr}`);
    }

    const readyFile = join(workDir, "canary.ready");
    const canary = this.startHelper("canary", [
      process.execPath,
      "--import",
      "tsx",
      join(NET_DIR, "canary.ts"),
      "--log",
      this.canaryLog,
      "--ready",
      readyFile,
      "--cert",
      this.canaryCert,
      "--key",
      keyFile,
    ]);

    // Both start in parallel; each has its own deadline.
    const probe = names.find(({ name }) => !name.startsWith("*."));
    if (probe === undefined) throw new HarnessError("names.tsv has no exact name to probe");
    const dnsAnswers = await waitUntil(async (remaining) => {
      if (hasExited(dns.child)) {
        throw new HarnessError(`dnsmasq exited: ${outputOf(dns.output)}`);
      }
      const lookup = await run(
        this.inside("getent", "ahostsv4", probe.name),
        Math.min(remaining, PROBE_MS),
      );
      return lookup.stdout.split(/\s/)[0] === probe.address;
    }, DNS_START_MS);
    if (!dnsAnswers) {
      throw new HarnessError(
        `dnsmasq did not answer within ${DNS_START_MS / 1000}s: ${outputOf(dns.output)}`,
      );
    }
    const canaryReady = await waitUntil(() => {
      if (hasExited(canary.child)) {
        throw new HarnessError(`canary exited: ${outputOf(canary.output)}`);
      }
      return existsSync(readyFile) && statSync(readyFile).size > 0;
    }, CANARY_START_MS);
    if (!canaryReady) {
      throw new HarnessError(
        `canary not ready within ${CANARY_START_MS / 1000}s: ${outputOf(canary.output)}`,
      );
    }
  }

  /** Starts the stack and waits for GET /health to answer 200 inside the namespace. */
  async startStack(): Promise<void> {
    const { command, inNetns, port, bootTimeoutMs } = this.options;
    const ns = this.namespace ?? "";
    this.log(`starting stack: ${command} (PORT=${port}, log ${this.stackLog})`);
    const shell = ["bash", "-c", command];
    const env = { ...process.env, TEST_NETNS: ns, PORT: String(port) };
    const stack = startDetached(
      inNetns ? this.inside(...shell) : shell,
      this.stackLog,
      env,
      REPO_DIR,
    );
    this.stack = stack;

    const started = Date.now();
    const curlStatus = flags("curl -s -o /dev/null -w %{http_code} --max-time 2");
    let lastAnswer = "none";
    const healthy = await waitUntil(
      async (remaining) => {
        if (hasExited(stack)) {
          throw new HarnessError(
            `the stack exited (${exitDescription(stack)}) before /health answered 200`,
          );
        }
        const answer = await run(
          this.inside(...curlStatus, `http://127.0.0.1:${port}/health`),
          Math.min(remaining, PROBE_MS),
        );
        lastAnswer = answer.stdout.trim() || "none";
        return lastAnswer === "200";
      },
      bootTimeoutMs,
      250,
    );
    if (!healthy) {
      throw new HarnessError(
        `the stack did not answer GET /health with 200 within ${bootTimeoutMs / 1000}s (last answer: ${lastAnswer})`,
      );
    }
    this.log(
      `stack healthy after ${Date.now() - started} ms; setup took ${Date.now() - this.setupStarted} ms`,
    );
  }

  /** The variables the command gets on top of the caller's environment. */
  commandEnv(): Record<string, string> {
    const url = `http://127.0.0.1:${this.options.port}`;
    return {
      BASE_URL: url,
      // vitest overwrites BASE_URL with Vite's own "/", so the e2e suite reads this.
      SERVICE_URL: url,
      CANARY_LOG: this.canaryLog,
      CANARY_CERT: this.canaryCert,
      TEST_NETNS: this.namespace ?? "",
      PORT: String(this.options.port),
    };
  }

  /**
   * Runs argv in the namespace from the caller's working directory, with the caller's stdio;
   * resolves to its exit code (128 + N when killed by signal N).
   */
  runCommand(argv: readonly string[]): Promise<number> {
    const [file = "", ...args] = this.inside(...argv);
    const command = spawn(file, args, {
      env: { ...process.env, ...this.commandEnv() },
      stdio: "inherit",
    });
    this.command = command;
    return new Promise((resolve) => {
      command.on("error", (error) => {
        this.log(`error: could not start the command: ${error.message}`);
        resolve(127);
      });
      command.on("exit", (code, signal) => resolve(shellExitCode(code, signal)));
    });
  }

  /** Whether the stack is still running (for a warning after the command). */
  stackRunning(): boolean {
    return this.stack !== undefined && !hasExited(this.stack);
  }

  /** Prints the end of the stack's log: most failures are explained by the stack's side. */
  printStackTail(): void {
    if (!existsSync(this.stackLog)) return;
    const lines = readFileSync(this.stackLog, "utf8").replace(/\n$/, "").split("\n").slice(-50);
    this.log(`last 50 lines of the stack log (${this.stackLog}):`);
    process.stderr.write(lines.map((line) => `  | ${line}\n`).join(""));
  }

  /** Stops everything this run started, deletes the namespace and the work dir. */
  teardown(): Promise<void> {
    this.teardownDone ??= this.stopAndRemove();
    return this.teardownDone;
  }

  private async stopAndRemove(): Promise<void> {
    const started = Date.now();
    const stop = async (label: string, pids: number[], timeoutMs: number) => {
      const killed = await stopProcesses(pids, timeoutMs);
      if (killed.length > 0) {
        this.log(
          `${label} did not stop within ${timeoutMs / 1000}s after TERM; sent KILL to ${killed.join(" ")}`,
        );
      }
    };
    const livePid = (child: ChildProcess | undefined) =>
      child?.pid !== undefined && !hasExited(child) ? [child.pid] : [];

    await stop("the command", livePid(this.command), COMMAND_STOP_MS);
    // The stack's session id is its pid; daemons that left the session are caught by the
    // namespace sweep below.
    if (this.stack?.pid !== undefined) {
      await stop("the stack", sessionMembers(this.stack.pid), this.options.stopTimeoutMs);
    }
    await stop("canary/dnsmasq", this.helpers.flatMap(livePid), HELPER_STOP_MS);

    const ns = this.namespace;
    if (ns !== undefined) {
      // Everything in this namespace was started by this run (it is ours and new): stop
      // whatever is left, e.g. daemons the stack or the command forked off.
      const listed = await run(["ip", "netns", "pids", ns], PROBE_MS);
      const leftovers = listed.stdout.split(/\s+/).filter(Boolean).map(Number).filter(isAlive);
      if (leftovers.length > 0) {
        this.log(`stopping processes left in ${ns}: ${leftovers.join(" ")}`);
        await stop(`processes left in ${ns}`, leftovers, HELPER_STOP_MS);
      }
      const deleted = await run(["ip", "netns", "del", ns], PROBE_MS);
      if (deleted.code !== 0) this.log(`warning: could not delete namespace ${ns}`);
      rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    }
    if (this.workDir !== undefined) {
      if (this.options.keepLogs) {
        this.log(
          `logs kept in ${this.workDir} (stack log: ${this.stackLog}, canary log: ${this.canaryLog})`,
        );
      } else {
        rmSync(this.workDir, { recursive: true, force: true });
      }
    }
    this.log(`teardown took ${Date.now() - started} ms`);
  }
}
