import path from "node:path";
import type { NetworkHit, PolicyMatcher, RuleHit } from "./rules.js";
import { analyzeShell } from "./shell.js";

/**
 * `POST /explain`: what the loaded policy would do with a command, decided from its text alone.
 * Nothing is executed: the command is parsed (mvdan/sh), each program, path and URL it names
 * is matched against agentsh's rules (./rules.ts), and whatever only the run can decide is
 * listed instead of guessed.
 */

export type Verdict = "allowed" | "blocked" | "undecidable";

export interface ProgramExplanation {
  command: string;
  program: string;
  /** The executable agentsh's execve check sees (PATH lookup, symlinks resolved), when known. */
  executable: string | null;
  /** `builtin`: bash runs it itself, no execve, no command rule applies. */
  rule: string | null;
  decision: string;
  conditional: boolean;
}

export interface FileExplanation {
  path: string;
  operation: string;
  via: string;
  rule: string;
  decision: string;
  conditional: boolean;
}

export interface NetworkExplanation {
  url: string;
  host: string;
  port: number;
  via: string;
  rule: string | null;
  decision: string;
  conditional: boolean;
}

export interface Explanation {
  command: string;
  verdict: Verdict;
  /** For `blocked`: the rule that stops it (the first one reached). */
  rule: string | null;
  reasons: string[];
  programs: ProgramExplanation[];
  files: FileExplanation[];
  network: NetworkExplanation[];
  /** What only the run decides. */
  runtime: string[];
  /**
   * The same lookups asked of agentsh's own engine (its policy-test API), when available:
   * how many were asked, and any where agentsh names a different rule.
   */
  agentsh: { checked: number; disagreements: string[] } | null;
  executed: false;
}

export interface ExplainerOptions {
  matcher: PolicyMatcher;
  /** Where commands start (the session workspace). */
  workspace: string;
  /** The top-level program the service runs every command through (pre-check), e.g. agentsh-launch. */
  wrapper: string;
  /** Finds a program on the command's PATH, symlinks resolved; null = not found. */
  resolveProgram: (name: string) => string | null;
  /** A host's addresses, as agentsh's resolver would answer; null = not resolved. */
  resolveHost: (host: string) => Promise<string[] | null>;
  /** agentsh's policy-test API (`exec`, `file_<op>`, `connect`); null answers are skipped. */
  policyTest?: (operation: string, target: string) => Promise<{ rule: string } | null>;
}

/** agentsh names its command default after the check that applied it; the rule is the same. */
const DEFAULT_COMMAND_RULES = new Set(["default-deny-commands", "default-deny-execve"]);
const sameRule = (a: string, b: string) =>
  a === b || (DEFAULT_COMMAND_RULES.has(a) && DEFAULT_COMMAND_RULES.has(b));

type Decided = { effect: RuleHit["effect"]; rule: string; what: string; conditional: boolean };

export function createExplainer(options: ExplainerOptions) {
  const { matcher } = options;

  return async function explain(command: string): Promise<Explanation> {
    const out: Explanation = {
      command,
      verdict: "allowed",
      rule: null,
      reasons: [],
      programs: [],
      files: [],
      network: [],
      runtime: [],
      agentsh: null,
      executed: false,
    };
    // Everything decided, in execution order, and what only the run can decide before it.
    const order: Array<Decided | { runtime: string; conditional: boolean }> = [];
    const wrapper = matcher.command(options.wrapper);
    order.push({
      effect: wrapper.effect,
      rule: wrapper.rule,
      what: options.wrapper,
      conditional: false,
    });

    const analysis = analyzeShell(command);
    if (!analysis.ok) {
      out.verdict = "undecidable";
      out.reasons.push(
        `bash cannot parse it (${analysis.error}); bash would refuse it before running anything`,
      );
      out.runtime.push(analysis.error);
      return out;
    }
    let cwd: string | null = options.workspace;
    const symlinks = new Map<string, string>();
    const absolute = (p: string) =>
      p.startsWith("/") ? path.posix.normalize(p) : cwd ? path.posix.join(cwd, p) : null;

    for (const step of analysis.steps) {
      const conditional = step.conditional;
      switch (step.type) {
        case "builtin": {
          out.programs.push({
            command: step.text,
            program: step.name,
            executable: null,
            rule: null,
            decision: "builtin",
            conditional,
          });
          if (step.name === "cd") {
            const dest = step.text.split(/\s+/)[1];
            cwd = dest && !/[$`*?~"']/.test(dest) ? absolute(dest) : null;
          }
          break;
        }
        case "exec": {
          const name = step.argv[0] as string;
          let executable: string | null;
          if (name.includes("/")) {
            executable = absolute(name);
          } else {
            executable = options.resolveProgram(name);
          }
          if (executable === null) {
            const reason = name.includes("/")
              ? `${name}: relative to a working directory decided at run time`
              : `${name}: not found on the PATH commands get; bash would answer 127 before any rule (if it exists at run time, ${matcher.command(name).rule} decides)`;
            out.programs.push({
              command: step.text,
              program: name,
              executable: null,
              rule: null,
              decision: "unknown",
              conditional,
            });
            order.push({ runtime: reason, conditional });
            break;
          }
          // Literal words only: a dynamic argument leaves args_patterns to agentsh at run time.
          const literal = step.argv.every((word): word is string => word !== null);
          const hit = matcher.command(executable, literal ? (step.argv as string[]) : undefined);
          out.programs.push({
            command: step.text,
            program: name,
            executable,
            rule: hit.rule,
            decision: hit.decision,
            conditional,
          });
          order.push({ effect: hit.effect, rule: hit.rule, what: name, conditional });
          break;
        }
        case "file": {
          const abs = absolute(step.path);
          if (abs === null) {
            order.push({
              runtime: `${step.path}: relative to a working directory decided at run time`,
              conditional,
            });
            break;
          }
          const link = [...symlinks.keys()].find((l) => abs === l || abs.startsWith(`${l}/`));
          const operations = step.operations.length > 0 ? step.operations : ["open", "write"];
          const hits = operations.map((op) => ({ op, hit: matcher.file(abs, op) }));
          for (const { op, hit } of hits) {
            out.files.push({
              path: abs,
              operation: op,
              via: step.via,
              rule: hit.rule,
              decision: hit.decision,
              conditional,
            });
          }
          if (link !== undefined) {
            order.push({
              runtime: `${abs} is a symlink the command creates (to ${symlinks.get(link)}): agentsh's file rules see the link path, the kernel (Landlock) judges the target`,
              conditional,
            });
            break;
          }
          const effects = new Set(hits.map((h) => h.hit.effect));
          const first = hits[0]?.hit;
          if (!first) break;
          if (effects.size === 1) {
            // Unknown operation (a program explain has no table for): only an access denied
            // whatever the operation is a likely block, and even that needs the program to open it.
            if (step.operations.length === 0) {
              if (first.effect === "deny") {
                order.push({
                  runtime: `${step.via} may open ${abs}, which ${first.rule} denies`,
                  conditional,
                });
              }
              break;
            }
            order.push({
              effect: first.effect,
              rule: first.rule,
              what: `${operations.join("/")} ${abs}`,
              conditional,
            });
          } else if (step.operations.length > 0) {
            order.push({
              runtime: `${abs}: ${hits.map((h) => `${h.op} → ${h.hit.rule}`).join(", ")}; which operation happens depends on the run`,
              conditional,
            });
          }
          break;
        }
        case "symlink": {
          const abs = absolute(step.link);
          if (abs) symlinks.set(abs, step.target);
          break;
        }
        case "url": {
          const entry = await explainUrl(step.url, step.via, conditional);
          out.network.push(entry.explanation);
          order.push(entry.decided);
          break;
        }
        case "runtime":
          order.push({ runtime: step.reason, conditional });
          break;
      }
    }

    async function explainUrl(url: string, via: string, conditional: boolean) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        const reason = `${url} is not a URL explain can read`;
        return {
          explanation: {
            url,
            host: "",
            port: 0,
            via,
            rule: null,
            decision: "unknown",
            conditional,
          },
          decided: { runtime: reason, conditional },
        };
      }
      const host = parsed.hostname.replace(/^\[|\]$/g, "");
      const defaultPort = parsed.protocol === "https:" ? 443 : 80;
      // curl tunnels plain HTTP through CONNECT (our .curlrc), so agentsh sees the real port;
      // other clients send plain-HTTP proxy requests, which agentsh 0.16.9 judges as port 80.
      const port =
        parsed.protocol === "http:" && via !== "curl"
          ? 80
          : parsed.port
            ? Number(parsed.port)
            : defaultPort;
      const addresses = await options.resolveHost(host);
      const result: NetworkHit = matcher.network({ host, port, addresses });
      if ("undecided" in result) {
        return {
          explanation: { url, host, port, via, rule: null, decision: "unknown", conditional },
          decided: { runtime: result.undecided, conditional },
        };
      }
      return {
        explanation: {
          url,
          host,
          port,
          via,
          rule: result.rule,
          decision: result.decision,
          conditional,
        },
        decided: { effect: result.effect, rule: result.rule, what: `${host}:${port}`, conditional },
      };
    }

    // The verdict: the first denial reached decides, unless something before it (or its own
    // position) can only be decided at run time.
    const unknowns: string[] = [];
    for (const item of order) {
      if ("runtime" in item) {
        unknowns.push(item.runtime);
        continue;
      }
      if (item.effect === "allow") continue;
      if (item.effect !== "deny") {
        unknowns.push(`${item.what}: rule ${item.rule} decides ${item.effect} at run time`);
        continue;
      }
      if (unknowns.length === 0 && !item.conditional) {
        out.verdict = "blocked";
        out.rule = item.rule;
        out.reasons.push(`${item.what}: denied by ${item.rule}`);
      } else {
        unknowns.push(`${item.what}: denied by ${item.rule} if the run gets there`);
      }
      break;
    }
    out.runtime = [...new Set(unknowns)];
    if (options.policyTest) out.agentsh = await crossCheck(out, options.policyTest);
    if (out.verdict !== "blocked") {
      if (out.runtime.length > 0) {
        out.verdict = "undecidable";
        out.reasons.push(...out.runtime);
      } else {
        out.reasons.push("every program, path and URL it names is allowed by the policy");
      }
    }
    return out;
  };
}

/** Asks agentsh's engine the same questions explain answered, and lists where it differs. */
async function crossCheck(
  out: Explanation,
  policyTest: NonNullable<ExplainerOptions["policyTest"]>,
): Promise<Explanation["agentsh"]> {
  const questions: Array<[string, string, string | null, string]> = [
    ...out.programs
      .filter((p) => p.executable !== null && p.rule !== null)
      .map((p): [string, string, string | null, string] => [
        "exec",
        p.executable ?? "",
        p.rule,
        p.program,
      ]),
    ...out.files.map((f): [string, string, string | null, string] => [
      `file_${f.operation}`,
      f.path,
      f.rule,
      `${f.operation} ${f.path}`,
    ]),
    ...out.network
      .filter((n) => n.rule !== null)
      .map((n): [string, string, string | null, string] => [
        "connect",
        `${n.host.includes(":") ? `[${n.host}]` : n.host}:${n.port}`,
        n.rule,
        `${n.host}:${n.port}`,
      ]),
  ];
  const answers = await Promise.all(questions.map(([op, target]) => policyTest(op, target)));
  let checked = 0;
  const disagreements: string[] = [];
  answers.forEach((answer, i) => {
    const [, , ours, what] = questions[i] ?? [];
    if (!answer || !ours) return;
    checked++;
    if (!sameRule(answer.rule, ours))
      disagreements.push(`${what}: explain ${ours}, agentsh ${answer.rule}`);
  });
  return checked === 0 ? null : { checked, disagreements };
}

export type Explainer = ReturnType<typeof createExplainer>;
