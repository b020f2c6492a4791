import { readFile } from "node:fs/promises";
import { parseDocument } from "yaml";
import { isolationSchema } from "./isolation-schema.js";

/**
 * `node dist/bundle/isolation-accounts.js agentsh/isolation.yaml` prints, for scripts/boot, the
 * accounts the launcher's identities need, validated by the same schema the service uses:
 *   GROUP GID USER_PREFIX FIRST_UID COUNT SCRATCH_ROOT SESSIONS_ROOT
 */
async function main(file: string | undefined): Promise<void> {
  if (!file) throw new Error("usage: isolation-accounts ISOLATION_YAML");
  const parsed = isolationSchema.safeParse(parseDocument(await readFile(file, "utf8")).toJS());
  if (!parsed.success) {
    throw new Error(
      `${file} is not valid:\n${parsed.error.issues.map((i) => `  - ${i.path.join(".")}: ${i.message}`).join("\n")}`,
    );
  }
  const { group, gid, user_prefix, first_uid, count, scratch_root } = parsed.data.identities;
  const { sessions_root } = parsed.data.filesystem;
  process.stdout.write(
    `${group} ${gid} ${user_prefix} ${first_uid} ${count} ${scratch_root} ${sessions_root}\n`,
  );
}

main(process.argv[2]).catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
