import { createRequire } from "node:module";
import type { ShNode } from "mvdan-sh";

/**
 * mvdan-sh (GopherJS) costs about 19 MiB of memory once loaded: loaded on the first explain,
 * not at boot, so a service that never explains does not carry it.
 */
let parserModule: typeof import("mvdan-sh").default | undefined;
function shParser(): typeof import("mvdan-sh").default {
  parserModule ??= createRequire(import.meta.url)("mvdan-sh") as typeof import("mvdan-sh").default;
  return parserModule;
}

/**
 * What a bash command line does that can be seen without running it, in execution order: the
 * programs it starts (with their literal argv), the files its redirections open, and every place
 * where only the run decides (variables, substitutions, globs, scripts, eval). Parsed by mvdan/sh
 * (the Go shell parser, as JS); nothing here runs anything.
 */

export type Step =
  | {
      type: "exec";
      /** argv[0] as bash will look it up; argv with dynamic words as null. */
      argv: Array<string | null>;
      text: string;
      /** Only runs on some paths (after `||`, in an if/loop/case body, in a function). */
      conditional: boolean;
    }
  | { type: "builtin"; name: string; text: string; conditional: boolean }
  | {
      type: "file";
      path: string;
      /** agentsh's operation names; more than one when which one happens depends on the run. */
      operations: string[];
      via: string;
      conditional: boolean;
    }
  | { type: "url"; url: string; via: string; conditional: boolean }
  | { type: "runtime"; reason: string; text: string; conditional: boolean }
  /** `ln -s target link`: later accesses to `link` reach `target`. */
  | { type: "symlink"; link: string; target: string; conditional: boolean };

export type ShellAnalysis = { ok: true; steps: Step[] } | { ok: false; error: string };

/** bash builtins: no execve, so command rules never see them. */
const BUILTINS = new Set(
  (
    ": . alias bg bind break caller cd compgen complete compopt continue declare dirs disown " +
    "echo eval exec exit export false fc fg getopts hash help history jobs let local logout " +
    "mapfile popd printf pushd pwd read readarray readonly return set shift shopt source " +
    "suspend test times trap true type typeset unalias unset wait ["
  ).split(" "),
);
// Disabled by our bash_startup.sh (enable -n kill ulimit umask builtin command enable): these
// names are looked up on PATH like any program, so `kill` meets deny-process-control.

const SHELLS = new Set(["bash", "sh", "dash"]);
const INTERPRETER = /^(python[\d.]*|node|nodejs|perl|ruby|php|deno|bun)$/;
const INFO_FLAGS = new Set(["--version", "-V", "-v", "--help", "-h", "-VV", "version"]);
/** Programs that run the rest of their argv as a program (after their own options). */
const PREFIX_PROGRAMS: Record<string, { valueOptions: Set<string>; leadingOperands: number }> = {
  env: { valueOptions: new Set(["-u", "--unset", "-C", "--chdir"]), leadingOperands: 0 },
  timeout: { valueOptions: new Set(["-s", "--signal", "-k", "--kill-after"]), leadingOperands: 1 },
  nice: { valueOptions: new Set(["-n", "--adjustment"]), leadingOperands: 0 },
  nohup: { valueOptions: new Set(), leadingOperands: 0 },
  stdbuf: { valueOptions: new Set(["-i", "-o", "-e"]), leadingOperands: 0 },
  xargs: {
    valueOptions: new Set(["-I", "-n", "-P", "-L", "-d", "-E", "-s", "-a"]),
    leadingOperands: 0,
  },
};

type FileUse = { ops: string[]; skipFirstOperand?: boolean; lastIs?: string[] };
const READ = ["open"];
/** What common programs do with their path operands (agentsh's operation names). */
const FILE_USE: Record<string, FileUse> = {
  ...Object.fromEntries(
    (
      "cat head tail less more wc sort uniq tac nl od xxd hexdump base64 md5sum sha1sum " +
      "sha256sum sha512sum cmp diff comm file stat ls du readlink realpath cut paste fold column"
    )
      .split(" ")
      .map((p) => [p, { ops: READ }]),
  ),
  grep: { ops: READ, skipFirstOperand: true },
  egrep: { ops: READ, skipFirstOperand: true },
  fgrep: { ops: READ, skipFirstOperand: true },
  sed: { ops: READ, skipFirstOperand: true },
  awk: { ops: READ, skipFirstOperand: true },
  jq: { ops: READ, skipFirstOperand: true },
  touch: { ops: ["create", "open"] },
  tee: { ops: ["write", "create"] },
  mkdir: { ops: ["mkdir"] },
  rmdir: { ops: ["rmdir"] },
  rm: { ops: ["delete"] },
  chmod: { ops: ["chmod"], skipFirstOperand: true },
  cp: { ops: READ, lastIs: ["create", "write"] },
  mv: { ops: ["rename"], lastIs: ["rename"] },
  ln: { ops: [], lastIs: ["link"] },
};

class Walker {
  readonly steps: Step[] = [];
  constructor(private readonly src: string) {}

  text(node: ShNode): string {
    return this.src.slice(node.Pos().Offset(), node.End().Offset());
  }

  runtime(reason: string, node: ShNode, conditional: boolean) {
    this.steps.push({ type: "runtime", reason, text: this.text(node), conditional });
  }

  stmts(list: ShNode[] | null | undefined, conditional: boolean) {
    for (const stmt of list ?? []) this.stmt(stmt, conditional);
  }

  stmt(stmt: ShNode, conditional: boolean) {
    // bash opens a statement's redirections before it runs the command.
    for (const redirect of stmt.Redirs ?? []) this.redirect(redirect, conditional);
    if (stmt.Cmd) this.command(stmt.Cmd, conditional);
  }

  redirect(redirect: ShNode, conditional: boolean) {
    const target = redirect.Word as ShNode | null;
    if (!target) return;
    const op = this.src.slice(redirect.OpPos.Offset(), target.Pos().Offset()).trim();
    if (redirect.Hdoc || op.startsWith("<<")) {
      this.word(target, conditional); // here-strings/docs: only substitutions inside matter
      return;
    }
    const value = this.word(target, conditional);
    if (value === null) {
      this.runtime(
        `the redirection target ${this.text(target)} is decided at run time`,
        redirect,
        conditional,
      );
      return;
    }
    // `2>&1`, `>&-`: duplicating a descriptor opens nothing.
    if ((op.endsWith(">&") || op.endsWith("<&")) && /^(\d+|-)$/.test(value)) return;
    const ops = op.includes(">") ? ["write", "create"] : READ;
    this.steps.push({
      type: "file",
      path: value,
      operations: ops,
      via: `redirect ${op}`,
      conditional,
    });
  }

  command(cmd: ShNode, conditional: boolean) {
    const type = shParser().syntax.NodeType(cmd);
    switch (type) {
      case "CallExpr":
        return this.call(cmd, conditional);
      case "BinaryCmd": {
        const op = this.src.slice(cmd.X.End().Offset(), cmd.Y.Pos().Offset()).trim();
        this.stmt(cmd.X, conditional);
        // After `&&` the right side runs when the left succeeds (assumed, and said); after `||`
        // only when it fails.
        this.stmt(cmd.Y, conditional || op === "||");
        return;
      }
      case "Subshell":
      case "Block":
        return this.stmts(cmd.Stmts, conditional);
      case "IfClause":
        this.stmts(cmd.Cond, conditional);
        this.stmts(cmd.Then, true);
        if (cmd.Else) this.command(cmd.Else, true);
        return;
      case "WhileClause":
        this.stmts(cmd.Cond, conditional);
        return this.stmts(cmd.Do, true);
      case "ForClause":
        this.nested(cmd.Loop, conditional);
        return this.stmts(cmd.Do, true);
      case "CaseClause":
        this.word(cmd.Word, conditional);
        for (const item of cmd.Items ?? []) this.stmts(item.Stmts, true);
        return;
      case "FuncDecl":
        return this.stmt(cmd.Body, true);
      case "TimeClause":
      case "CoprocClause":
        if (cmd.Stmt) this.stmt(cmd.Stmt, conditional);
        return;
      case "DeclClause":
        for (const assign of cmd.Args ?? []) this.assign(assign, conditional);
        return;
      default:
        // [[ ]], (( )), let: no program of their own; substitutions inside still run.
        return this.nested(cmd, conditional);
    }
  }

  /** Finds command substitutions anywhere under `node` (they run programs). */
  nested(node: ShNode | null | undefined, conditional: boolean) {
    if (!node) return;
    const found: ShNode[] = [];
    shParser().syntax.Walk(node, (n: ShNode | null) => {
      if (!n) return true;
      const t = shParser().syntax.NodeType(n);
      if (t === "CmdSubst" || t === "ProcSubst") {
        found.push(n);
        return false;
      }
      return true;
    });
    for (const sub of found) this.stmts(sub.Stmts, conditional);
  }

  assign(assign: ShNode, conditional: boolean) {
    if (assign.Value) this.word(assign.Value, conditional);
    if (assign.Array || assign.Index) this.nested(assign, conditional);
  }

  /**
   * A word's value when the parser can know it (literals and quotes), else null. Substitutions
   * inside are analysed as the programs they start.
   */
  word(word: ShNode, conditional: boolean): string | null {
    let value = "";
    let dynamic = false;
    for (const part of word.Parts ?? []) {
      const t = shParser().syntax.NodeType(part);
      if (t === "Lit") {
        const raw: string = part.Value;
        // Unquoted: globs and brace expansion are expanded by bash at run time; ~ is HOME.
        if (
          /[*?[]/.test(raw) ||
          /\{[^}]*(,|\.\.)[^}]*\}/.test(raw) ||
          (value === "" && raw.startsWith("~"))
        )
          dynamic = true;
        value += raw.replace(/\\\n/g, "").replace(/\\(.)/g, "$1");
      } else if (t === "SglQuoted") {
        if (part.Dollar) dynamic = true;
        value += part.Value;
      } else if (t === "DblQuoted") {
        for (const inner of part.Parts ?? []) {
          if (shParser().syntax.NodeType(inner) === "Lit") {
            value += (inner.Value as string).replace(/\\\n/g, "").replace(/\\([\\"$`])/g, "$1");
          } else {
            dynamic = true;
            this.nested(inner, conditional);
          }
        }
      } else {
        dynamic = true;
        this.nested(part, conditional);
      }
    }
    return dynamic ? null : value;
  }

  call(call: ShNode, conditional: boolean) {
    for (const assign of call.Assigns ?? []) this.assign(assign, conditional);
    const args: ShNode[] = call.Args ?? [];
    if (args.length === 0) return;
    const argv = args.map((a) => this.word(a, conditional));
    this.argv(argv, this.text(call), call, conditional);
  }

  argv(argv: Array<string | null>, text: string, node: ShNode, conditional: boolean) {
    const [name, ...rest] = argv;
    if (name === undefined) return;
    if (name === null) {
      this.runtime(
        `the program name ${text.split(/\s/)[0]} is decided at run time`,
        node,
        conditional,
      );
      return;
    }
    if (BUILTINS.has(name)) {
      this.steps.push({ type: "builtin", name, text, conditional });
      this.builtin(name, rest, node, conditional);
      return;
    }
    this.steps.push({ type: "exec", argv, text, conditional });
    const base = name.split("/").pop() ?? name;
    this.urls(rest, base, conditional);

    if (SHELLS.has(base)) return this.shell(base, rest, node, conditional);
    if (INTERPRETER.test(base)) {
      if (rest.some((a) => a === null || !INFO_FLAGS.has(a))) {
        this.runtime(
          `${base} runs code whose programs, files and connections explain cannot see`,
          node,
          conditional,
        );
      }
      return;
    }
    const prefix = PREFIX_PROGRAMS[base];
    if (prefix) return this.prefixed(base, prefix, rest, text, node, conditional);
    if (base === "find") return this.find(rest, text, node);
    this.paths(base, rest, node, conditional);
  }

  builtin(name: string, rest: Array<string | null>, node: ShNode, conditional: boolean) {
    if (name === "eval") {
      if (rest.some((a) => a === null)) {
        this.runtime("eval runs a string built at run time", node, conditional);
      } else {
        this.inner(rest.join(" "), node, conditional);
      }
    } else if (name === "source" || name === ".") {
      this.runtime(
        `${name} runs the script ${rest[0] ?? "(none)"}, which explain does not read`,
        node,
        conditional,
      );
    } else if (name === "exec" && rest.length > 0) {
      this.argv(rest, this.text(node), node, conditional);
    }
  }

  shell(base: string, rest: Array<string | null>, node: ShNode, conditional: boolean) {
    const c = rest.findIndex((a) => a !== null && /^-[a-z]*c[a-z]*$/.test(a));
    if (c === -1) {
      const script = rest.find((a) => a === null || !a.startsWith("-"));
      this.runtime(
        script === undefined
          ? `${base} reads commands from its input`
          : `${base} runs the script ${script ?? "named at run time"}, which explain does not read`,
        node,
        conditional,
      );
      return;
    }
    const code = rest[c + 1];
    if (code === null || code === undefined) {
      this.runtime(`${base} -c runs a string built at run time`, node, conditional);
      return;
    }
    this.inner(code, node, conditional);
  }

  /** A static string that a shell (bash -c, eval) parses again: analysed the same way. */
  inner(code: string, node: ShNode, conditional: boolean) {
    const analysis = analyzeShell(code);
    if (!analysis.ok) {
      this.runtime(`the inner command does not parse: ${analysis.error}`, node, conditional);
      return;
    }
    for (const step of analysis.steps) {
      this.steps.push({ ...step, conditional: step.conditional || conditional });
    }
  }

  prefixed(
    base: string,
    spec: { valueOptions: Set<string>; leadingOperands: number },
    rest: Array<string | null>,
    text: string,
    node: ShNode,
    conditional: boolean,
  ) {
    let i = 0;
    let operands = spec.leadingOperands;
    while (i < rest.length) {
      const a = rest[i];
      if (a === undefined) break;
      if (a === null) {
        this.runtime(`${base}'s arguments are decided at run time`, node, conditional);
        return;
      }
      if (a === "--") {
        i++;
        break;
      }
      if (spec.valueOptions.has(a)) i += 2;
      else if (a.startsWith("-") && a !== "-") i++;
      else if (base === "env" && /^[A-Za-z_][A-Za-z0-9_]*=/.test(a)) i++;
      else if (operands > 0) {
        operands--;
        i++;
      } else break;
    }
    const program = rest.slice(i);
    if (program.length === 0) return;
    if (base === "xargs") {
      this.runtime("xargs adds arguments read from its input", node, conditional);
    }
    this.argv(program, text, node, conditional);
  }

  find(rest: Array<string | null>, text: string, node: ShNode) {
    for (let i = 0; i < rest.length; i++) {
      const a = rest[i];
      if (a === "-exec" || a === "-execdir" || a === "-ok" || a === "-okdir") {
        const end = rest.findIndex((x, j) => j > i && (x === ";" || x === "+"));
        const program = rest.slice(i + 1, end === -1 ? undefined : end);
        // find runs it once per match: conditional on what it finds.
        this.argv(program, text, node, true);
        i = end === -1 ? rest.length : end;
      }
    }
  }

  urls(rest: Array<string | null>, program: string, conditional: boolean) {
    for (const a of rest) {
      if (a !== null && /^https?:\/\/\S+$/i.test(a)) {
        this.steps.push({ type: "url", url: a, via: program, conditional });
      }
    }
  }

  paths(base: string, rest: Array<string | null>, node: ShNode, conditional: boolean) {
    const use = FILE_USE[base];
    const operands: Array<string | null> = [];
    let afterDashDash = false;
    for (const a of rest) {
      if (!afterDashDash && a === "--") afterDashDash = true;
      else if (afterDashDash || a === null || !a.startsWith("-") || a === "-") operands.push(a);
    }
    if (!use) {
      // An unknown program: its absolute path operands, operation unknown.
      for (const a of rest) {
        if (a?.startsWith("/")) {
          this.steps.push({ type: "file", path: a, operations: [], via: base, conditional });
        }
      }
      return;
    }
    const list = use.skipFirstOperand ? operands.slice(1) : operands;
    const symbolic = base === "ln" && rest.some((a) => a !== null && /^-[a-zA-Z]*s/.test(a));
    list.forEach((operand, index) => {
      if (operand === null) {
        this.runtime(`${base} gets a path decided at run time`, node, conditional);
        return;
      }
      if (operand === "-" || /^https?:\/\//i.test(operand)) return;
      const isLast = index === list.length - 1 && list.length > 1;
      const ops = isLast && use.lastIs ? (symbolic ? ["symlink"] : use.lastIs) : use.ops;
      if (ops.length === 0) return; // ln's target: not opened by ln
      this.steps.push({ type: "file", path: operand, operations: ops, via: base, conditional });
      if (symbolic && isLast && list.length === 2 && list[0]) {
        this.steps.push({ type: "symlink", link: operand, target: list[0], conditional });
      }
    });
  }
}

/** Parses `command` as bash and lists what it does, in order; never runs anything. */
export function analyzeShell(command: string): ShellAnalysis {
  let file: ShNode;
  try {
    file = shParser()
      .syntax.NewParser(shParser().syntax.Variant(shParser().syntax.LangBash))
      .Parse(command, "command");
  } catch (error) {
    const e = error as { Error?: () => string };
    return { ok: false, error: typeof e?.Error === "function" ? e.Error() : String(error) };
  }
  const walker = new Walker(command);
  walker.stmts(file.Stmts, false);
  return { ok: true, steps: walker.steps };
}
