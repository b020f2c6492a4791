import { constants } from "node:fs";
import { open, rm } from "node:fs/promises";
import type { SessionState } from "../executor.js";
import { type LauncherSettings, slotUid } from "./launcher.js";

/**
 * Reads what the session wrapper (SESSION_WRAPPER) recorded: `<file>` holds the cwd and the
 * exported environment at exit, `<file>.initial` the environment at start, both NUL-separated
 * (`env -0`). The files are written by the governed command, so they are untrusted input to a
 * root process: opened without following links, only regular files with one link (no hard link
 * to a file the command could not read itself), owned by the slot's uid when it has one, and
 * bounded in size. Both files are removed. Any doubt gives null: the session keeps its state.
 */

/** agentsh's env_policy max_bytes; the exported environment is never larger than this. */
const MAX_STATE_BYTES = 256 * 1024;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export async function readSessionState(
  file: string,
  launcher: LauncherSettings | undefined,
  identity: number,
): Promise<SessionState | null> {
  const owner = launcher?.uidDrop ? slotUid(launcher.isolation, identity) : undefined;
  try {
    const final = await readUntrusted(file, owner);
    const initial = await readUntrusted(`${file}.initial`, owner);
    if (final === null || initial === null) return null;
    const [cwd, ...entries] = final.split("\0");
    if (!cwd?.startsWith("/")) return null;
    return { cwd, exported: parseEnv(entries), initial: parseEnv(initial.split("\0")) };
  } catch {
    return null;
  } finally {
    // Never fails the run: the command may have left a directory there (rm refuses it), and a
    // throw would lose the command's result and its audit record. Its name is never reused.
    await Promise.all(
      [file, `${file}.initial`].map((name) => rm(name, { force: true }).catch(() => {})),
    );
  }
}

async function readUntrusted(file: string, owner: number | undefined): Promise<string | null> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile() || stat.nlink !== 1 || stat.size > MAX_STATE_BYTES) return null;
    if (owner !== undefined && stat.uid !== owner) return null;
    const buffer = Buffer.alloc(stat.size);
    const { bytesRead } = await handle.read(buffer, 0, stat.size, 0);
    return buffer.subarray(0, bytesRead).toString("utf8");
  } finally {
    await handle.close();
  }
}

function parseEnv(entries: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of entries) {
    const equals = entry.indexOf("=");
    if (equals <= 0) continue;
    const name = entry.slice(0, equals);
    if (NAME.test(name)) env[name] = entry.slice(equals + 1);
  }
  return env;
}
