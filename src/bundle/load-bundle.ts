import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { parseDocument } from "yaml";
import type { z } from "zod";
import {
  type AgentshConfig,
  agentshConfigSchema,
  IGNORED_CONFIG_KEYS,
  KNOWN_CONFIG_KEYS,
} from "./config-schema.js";
import { type IsolationSettings, isolationSchema } from "./isolation-schema.js";
import { type Policy, policySchema } from "./policy-schema.js";
import { compileRedactionPatterns, type RedactionPattern } from "./redactor.js";

/**
 * The policy bundle in `agentsh/`, read and validated once at boot. A broken bundle stops boot
 * with every problem named by file and path; keys agentsh would silently ignore are warnings.
 */

export interface EnforcementSettings {
  /** Top-level `landlock.enabled`. */
  landlock: boolean;
  /** `sandbox.unix_sockets.enabled`: routes commands through agentsh-unixwrap (seccomp + Landlock). */
  seccompHelper: boolean;
  /** `sandbox.seccomp.execve.enabled`: nested execve calls go through the command rules. */
  execveInterception: boolean;
  /** `sandbox.seccomp.file_monitor.enabled`: file syscalls go through the file rules. */
  fileMonitor: boolean;
  ptrace: boolean;
}

export interface PolicyBundle {
  dir: string;
  /** sha256 over every file's relative path and content, in path order. */
  digest: string;
  files: string[];
  config: AgentshConfig;
  policy: Policy;
  policyFile: string;
  /** `isolation.yaml`: what agentsh-launch enforces on every command. */
  isolation: IsolationSettings;
  enforcement: EnforcementSettings;
  redactionPatterns: RedactionPattern[];
  warnings: string[];
}

export class BundleError extends Error {
  constructor(
    readonly dir: string,
    readonly problems: string[],
  ) {
    super(`Policy bundle ${dir} is not usable:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "BundleError";
  }
}

/**
 * @param expandVars values for `${VAR}` in config.yaml, as the agentsh server will see them
 *   (agentsh expands them from its environment before parsing).
 */
export async function loadPolicyBundle(
  bundleDir: string,
  expandVars: Record<string, string>,
): Promise<PolicyBundle> {
  const dir = path.resolve(bundleDir);
  const problems: string[] = [];
  const warnings: string[] = [];
  const files = await listFiles(dir).catch((error: Error) => {
    throw new BundleError(dir, [`cannot read the bundle directory: ${error.message}`]);
  });

  const configName = "config.yaml";
  const configRaw = await readText(dir, configName, problems);
  const configText = expandEnv(configRaw ?? "", expandVars, (name) =>
    warnings.push(`${configName}: \${${name}} is not set; agentsh will read it as empty`),
  );
  const configJson = parseYaml(configName, configText, problems);
  if (configJson !== undefined) reportIgnoredKeys(configJson, configName, warnings);
  const config = validate(agentshConfigSchema, configJson ?? {}, configName, problems);

  const policyDir = config?.policies?.dir ?? path.join(dir, "policies");
  const policyFile = path.join(
    path.resolve(dir, policyDir),
    `${config?.policies?.default ?? "default"}.yaml`,
  );
  const policyName = path.relative(dir, policyFile);
  const policyRaw = await readText(dir, policyName, problems);
  const policyJson =
    policyRaw === undefined ? undefined : parseYaml(policyName, policyRaw, problems);
  const policy =
    policyJson === undefined ? undefined : validate(policySchema, policyJson, policyName, problems);

  for (const [name, value] of Object.entries(config?.sandbox?.env_inject ?? {})) {
    if (
      path.isAbsolute(value) &&
      value.startsWith(dir) &&
      !files.some((file) => {
        // A file of the bundle, or a directory holding some (CURL_HOME).
        const rel = path.relative(dir, value);
        return file === rel || file.startsWith(`${rel}/`);
      })
    ) {
      problems.push(
        `${configName}: sandbox.env_inject.${name} points at ${value}, which is not in the bundle`,
      );
    }
  }

  const isolationName = "isolation.yaml";
  const isolationRaw = await readText(dir, isolationName, problems);
  const isolationJson =
    isolationRaw === undefined ? undefined : parseYaml(isolationName, isolationRaw, problems);
  const isolation =
    isolationJson === undefined
      ? undefined
      : validate(isolationSchema, isolationJson, isolationName, problems);

  const { patterns, problems: patternProblems } = compileRedactionPatterns(config?.dlp);
  problems.push(...patternProblems.map((p) => `${configName}: ${p}`));

  if (problems.length > 0 || !config || !policy || !isolation) {
    throw new BundleError(dir, problems);
  }

  return {
    dir,
    digest: await digestFiles(dir, files),
    files,
    config,
    policy,
    policyFile,
    isolation,
    enforcement: {
      landlock: config.landlock?.enabled === true,
      seccompHelper: config.sandbox?.unix_sockets?.enabled === true,
      execveInterception: config.sandbox?.seccomp?.execve?.enabled === true,
      fileMonitor: config.sandbox?.seccomp?.file_monitor?.enabled === true,
      ptrace: config.sandbox?.ptrace?.enabled === true,
    },
    redactionPatterns: patterns,
    warnings,
  };
}

/** Same rule as Go's os.ExpandEnv: `$NAME` and `${NAME}`; unset names become empty. */
export function expandEnv(
  text: string,
  vars: Record<string, string>,
  onUnset: (name: string) => void = () => {},
): string {
  return text.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (_m, braced, bare) => {
      const name = (braced ?? bare) as string;
      const value = vars[name];
      if (value === undefined) onUnset(name);
      return value ?? "";
    },
  );
}

function reportIgnoredKeys(json: unknown, file: string, warnings: string[]): void {
  if (!isRecord(json)) return;
  for (const key of Object.keys(json)) {
    if (!KNOWN_CONFIG_KEYS.has(key))
      warnings.push(`${file}: top-level key '${key}' is unknown to agentsh and ignored`);
  }
  for (const [dotted, why] of Object.entries(IGNORED_CONFIG_KEYS)) {
    if (hasPath(json, dotted.split(".")))
      warnings.push(`${file}: '${dotted}' has no effect (${why})`);
  }
}

function validate<T>(
  schema: z.ZodType<T>,
  value: unknown,
  file: string,
  problems: string[],
): T | undefined {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) {
    problems.push(`${file}: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  return undefined;
}

function parseYaml(file: string, text: string, problems: string[]): unknown {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const error of doc.errors) problems.push(`${file}: ${error.message.split("\n")[0]}`);
    return undefined;
  }
  return doc.toJS() ?? {};
}

async function readText(
  dir: string,
  name: string,
  problems: string[],
): Promise<string | undefined> {
  try {
    return await readFile(path.join(dir, name), "utf8");
  } catch (error) {
    problems.push(`${name}: cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`);
    return undefined;
  }
}

async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const entries = await readdir(path.join(dir, prefix), { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries) {
    const rel = path.join(prefix, entry.name);
    if (entry.isDirectory()) files.push(...(await listFiles(dir, rel)));
    else if (entry.isFile()) files.push(rel);
  }
  return files.sort();
}

async function digestFiles(dir: string, files: string[]): Promise<string> {
  const hash = createHash("sha256");
  for (const file of files) {
    const full = path.join(dir, file);
    hash.update(`${file}\0${(await stat(full)).size}\0`);
    hash.update(await readFile(full));
  }
  return `sha256:${hash.digest("hex")}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function hasPath(value: unknown, keys: string[]): boolean {
  let current = value;
  for (const key of keys) {
    if (!isRecord(current) || !(key in current)) return false;
    current = current[key];
  }
  return true;
}
