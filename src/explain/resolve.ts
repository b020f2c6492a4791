import { lookup } from "node:dns/promises";
import { accessSync, constants, realpathSync, statSync } from "node:fs";
import path from "node:path";

/**
 * The two lookups explain makes on the service's own host, where governed commands run: which
 * file a program name is (agentsh's execve check sees it with symlinks resolved, e.g. python3 →
 * python3.11) and which addresses a host name has (agentsh's CIDR rules match names by
 * resolving them). Neither runs the command.
 */
export function programResolver(searchPath: string): (name: string) => string | null {
  const dirs = searchPath.split(":").filter((d) => d.startsWith("/"));
  return (name) => {
    for (const dir of dirs) {
      const candidate = path.join(dir, name);
      try {
        if (!statSync(candidate).isFile()) continue;
        accessSync(candidate, constants.X_OK);
        return realpathSync(candidate);
      } catch {}
    }
    return null;
  };
}

/** DNS as the host resolves it, bounded (agentsh gives up after 2 s too). */
export function hostResolver(timeoutMs = 2_000): (host: string) => Promise<string[] | null> {
  return async (host) => {
    const deadline = new Promise<null>((resolve) => setTimeout(resolve, timeoutMs, null).unref());
    const answer = lookup(host, { all: true, verbatim: true })
      .then((addresses) => addresses.map((a) => a.address))
      .catch(() => [] as string[]);
    return Promise.race([answer, deadline]);
  };
}
