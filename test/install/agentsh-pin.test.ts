import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { skipWhen } from "../support/skip-when.js";

/**
 * agentsh/go.sum pins the module's checksum, so a module mirror (or proxy) that serves other
 * bytes fails the install instead of building them. Proved with a copy of the real module in a
 * file:// mirror, once untouched (accepted) and once with one file changed inside the zip
 * (refused), each with an empty module cache so nothing is answered from a previous download.
 */

const repo = path.resolve(import.meta.dirname, "../..");
const module = "github.com/agentsh/agentsh";
const version = readFileSync(path.join(repo, "agentsh/VERSION"), "utf8").trim();

let work = "";
/** The published module files (.info, .mod, .zip), taken from Go's download cache. */
let published = "";

function goEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/root",
    GOFLAGS: "-mod=readonly",
    GOTOOLCHAIN: "local",
    ...extra,
  };
}

/** A file:// mirror holding the published module; `tamper` changes one file inside its zip. */
function makeMirror(name: string, tamper: boolean): string {
  const dir = path.join(work, name, module, "@v");
  mkdirSync(dir, { recursive: true });
  for (const ext of ["info", "mod", "zip"]) {
    copyFileSync(path.join(published, `v${version}.${ext}`), path.join(dir, `v${version}.${ext}`));
  }
  execFileSync("sh", ["-c", `printf 'v%s\\n' "$1" > "$2"`, "sh", version, path.join(dir, "list")]);
  if (tamper) {
    // Rewrites the zip with README.md changed; the zip stays well-formed.
    execFileSync("python3", [
      "-c",
      `import sys, zipfile, shutil
src, dst = sys.argv[1], sys.argv[1] + ".new"
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
    for item in zin.infolist():
        data = zin.read(item.filename)
        if item.filename.endswith("/README.md"):
            data += b"\\ntampered\\n"
        zout.writestr(item, data)
shutil.move(dst, src)`,
      path.join(dir, `v${version}.zip`),
    ]);
  }
  return `file://${path.join(work, name)}`;
}

function download(goproxy: string) {
  const cache = mkdtempSync(path.join(work, "modcache-"));
  const result = spawnSync("go", ["mod", "download", `${module}@v${version}`], {
    cwd: path.join(repo, "agentsh"),
    env: goEnv({ GOPROXY: goproxy, GOMODCACHE: cache, GONOSUMDB: module }),
    encoding: "utf8",
    timeout: 60_000,
  });
  // Module caches are read-only by design; make this one removable.
  spawnSync("chmod", ["-R", "u+w", cache]);
  return result;
}

// Go is a prerequisite of every scripts/test mode that installs agentsh (CI's included, where
// this always runs); only `scripts/test --quick` may run on a machine without it.
describe("agentsh/go.sum verifies what a mirror serves", skipWhen("no-go"), () => {
  beforeAll(() => {
    work = mkdtempSync(path.join(tmpdir(), "agentsh-pin-"));
    const gomodcache = execFileSync("go", ["env", "GOMODCACHE"], { encoding: "utf8" }).trim();
    published = path.join(gomodcache, "cache/download", module, "@v");
    if (!existsSync(path.join(published, `v${version}.zip`))) {
      // Not downloaded on this machine yet: through the configured GOPROXY (mirror or proxy).
      execFileSync("go", ["mod", "download", `${module}@v${version}`], {
        cwd: path.join(repo, "agentsh"),
        env: { ...process.env, GOFLAGS: "-mod=readonly" },
        timeout: 120_000,
      });
    }
  }, 150_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("accepts the published module from a file:// mirror (positive control)", () => {
    const result = download(makeMirror("good", false));
    expect(result.stderr).not.toMatch(/checksum mismatch/);
    expect(result.status).toBe(0);
  }, 70_000);

  it("refuses a mirror whose zip differs from the pin, with Go's checksum error", () => {
    const result = download(makeMirror("tampered", true));
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/checksum mismatch/);
    expect(result.stderr).toMatch(/SECURITY ERROR/);
  }, 70_000);

  it("scripts/install-agentsh fails loudly on the tampered mirror and installs nothing", () => {
    const prefix = mkdtempSync(path.join(work, "prefix-"));
    const cache = mkdtempSync(path.join(work, "modcache-"));
    const result = spawnSync(path.join(repo, "scripts/install-agentsh"), [], {
      env: goEnv({
        GOPROXY: `${makeMirror("tampered-2", true)},off`,
        GOMODCACHE: cache,
        AGENTSH_PREFIX: prefix,
      }),
      encoding: "utf8",
      timeout: 60_000,
    });
    spawnSync("chmod", ["-R", "u+w", cache]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/checksum mismatch/);
    expect(result.stderr).toMatch(/could not be fetched and verified/);
    expect(existsSync(path.join(prefix, "bin/agentsh"))).toBe(false);
  }, 70_000);
});
