import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { tenantPolicies } from "./policy-servers.js";

/**
 * `node dist/tenants/policy-servers-cli.js TENANTS_FILE CONFIG_YAML` prints, for scripts/boot,
 * the policies the tenants file names besides the server default (config.yaml policies.default),
 * one per line: each gets an agentsh server of its own (src/tenants/policy-servers.ts).
 */
async function main(file: string | undefined, configFile: string | undefined): Promise<void> {
  if (!file || !configFile) throw new Error("usage: policy-servers-cli TENANTS_FILE CONFIG_YAML");
  const config = parseYaml(await readFile(configFile, "utf8")) as {
    policies?: { default?: unknown };
  } | null;
  const defaultPolicy =
    typeof config?.policies?.default === "string" ? config.policies.default : "default";
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new Error(`tenants file ${file}: ${(error as Error).message}`);
  }
  try {
    const policies = tenantPolicies(text, defaultPolicy);
    process.stdout.write(policies.map((p) => `${p}\n`).join(""));
  } catch (error) {
    throw new Error(`tenants file ${file}: ${(error as Error).message}`);
  }
}

main(process.argv[2], process.argv[3]).catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
