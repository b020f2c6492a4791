import { access, constants } from "node:fs/promises";
import path from "node:path";

/** The absolute path of an executable (a path, or a name searched on PATH), if it exists. */
export async function locateExecutable(
  name: string,
  searchPath = process.env.PATH ?? "",
): Promise<string | undefined> {
  const candidates = name.includes("/")
    ? [path.resolve(name)]
    : searchPath
        .split(":")
        .filter(Boolean)
        .map((dir) => path.join(dir, name));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}
