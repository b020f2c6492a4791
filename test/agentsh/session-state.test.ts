import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, link, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { LauncherSettings } from "../../src/agentsh/launcher.js";
import { readSessionState } from "../../src/agentsh/session-state.js";
import { TEST_ISOLATION } from "../support/isolation.js";
import { skipWhen } from "../support/skip-when.js";

/** What the session wrapper writes: `<cwd>\0` + `env -0`, and `env -0` alone for `.initial`. */
const record = (cwd: string, env: Record<string, string>) =>
  `${cwd}\0${Object.entries(env)
    .map(([name, value]) => `${name}=${value}\0`)
    .join("")}`;
const envOnly = (env: Record<string, string>) =>
  Object.entries(env)
    .map(([name, value]) => `${name}=${value}\0`)
    .join("");

const launcher: LauncherSettings = {
  path: "/opt/bin/agentsh-launch",
  bestEffort: false,
  uidDrop: true,
  fsRules: [],
  isolation: TEST_ISOLATION,
};

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gexec-state-"));
  file = path.join(dir, ".governed-session-test");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Both record files are always removed, whatever was found in them. */
function expectRemoved() {
  expect(existsSync(file)).toBe(false);
  expect(existsSync(`${file}.initial`)).toBe(false);
}

describe("readSessionState (the session wrapper's record, untrusted)", () => {
  it("parses the cwd and both NUL-separated environments, then removes the files", async () => {
    await writeFile(
      file,
      record("/workspace/sessions/s-x/src", {
        FOO: "bar",
        WITH_EQUALS: "a=b=c",
        MULTILINE: "line 1\nline 2",
        EMPTY: "",
        PATH: "/usr/bin",
      }),
    );
    await writeFile(`${file}.initial`, envOnly({ PATH: "/usr/bin", LANG: "C.UTF-8" }));
    expect(await readSessionState(file, undefined, 0)).toEqual({
      cwd: "/workspace/sessions/s-x/src",
      exported: {
        FOO: "bar",
        WITH_EQUALS: "a=b=c",
        MULTILINE: "line 1\nline 2",
        EMPTY: "",
        PATH: "/usr/bin",
      },
      initial: { PATH: "/usr/bin", LANG: "C.UTF-8" },
    });
    expectRemoved();
  });

  it("skips entries that are not NAME=value with a shell variable name", async () => {
    await writeFile(
      file,
      `/w\0OK=1\0=nameless\0noequals\x001BAD=x\0BASH_FUNC_f%%=() { id; }\0has space=x\0_UNDER=2\0`,
    );
    await writeFile(`${file}.initial`, "");
    expect(await readSessionState(file, undefined, 0)).toEqual({
      cwd: "/w",
      exported: { OK: "1", _UNDER: "2" },
      initial: {},
    });
  });

  it("gives null when either file is missing (the command replaced the shell or set its own trap)", async () => {
    await writeFile(`${file}.initial`, envOnly({ A: "1" }));
    expect(await readSessionState(file, undefined, 0)).toBeNull();
    expectRemoved();
    await writeFile(file, record("/w", {}));
    expect(await readSessionState(file, undefined, 0)).toBeNull();
    expectRemoved();
  });

  it("refuses a cwd that is not absolute", async () => {
    await writeFile(file, record("relative/dir", { A: "1" }));
    await writeFile(`${file}.initial`, "");
    expect(await readSessionState(file, undefined, 0)).toBeNull();
    expectRemoved();
  });

  it("refuses a symlink (not followed), removing the link but not its target", async () => {
    const target = path.join(dir, "target");
    await writeFile(target, record("/w", { SECRET_FROM_TARGET: "1" }));
    await symlink(target, file);
    await writeFile(`${file}.initial`, "");
    expect(await readSessionState(file, undefined, 0)).toBeNull();
    expectRemoved();
    expect(await readFile(target, "utf8")).toContain("SECRET_FROM_TARGET");
  });

  it("refuses a symlinked .initial file as well", async () => {
    const target = path.join(dir, "target");
    await writeFile(target, envOnly({ A: "1" }));
    await writeFile(file, record("/w", { A: "1" }));
    await symlink(target, `${file}.initial`);
    expect(await readSessionState(file, undefined, 0)).toBeNull();
    expectRemoved();
    expect(existsSync(target)).toBe(true);
  });

  it("refuses a hard link to another file (two links), leaving that file alone", async () => {
    const other = path.join(dir, "other");
    await writeFile(other, record("/w", { FROM_OTHER: "1" }));
    await link(other, file);
    await writeFile(`${file}.initial`, "");
    expect(await readSessionState(file, undefined, 0)).toBeNull();
    expectRemoved();
    expect(await readFile(other, "utf8")).toContain("FROM_OTHER");
  });

  it("refuses a FIFO without hanging on it", async () => {
    execFileSync("mkfifo", [file]);
    await writeFile(`${file}.initial`, "");
    const started = Date.now();
    expect(await readSessionState(file, undefined, 0)).toBeNull();
    expect(Date.now() - started).toBeLessThan(2_000);
    expectRemoved();
  });

  it("refuses a directory in place of either file, without throwing (a throw would lose the run)", async () => {
    await mkdir(file);
    await writeFile(`${file}.initial`, "");
    await expect(readSessionState(file, undefined, 0)).resolves.toBeNull();
    await rm(file, { recursive: true });
    await writeFile(file, record("/w", {}));
    await mkdir(`${file}.initial`);
    await expect(readSessionState(file, undefined, 0)).resolves.toBeNull();
    expect(existsSync(file)).toBe(false);
  });

  it("refuses a record over 256 KiB", async () => {
    await writeFile(file, record("/w", { BIG: "x".repeat(256 * 1024) }));
    await writeFile(`${file}.initial`, "");
    expect(await readSessionState(file, undefined, 0)).toBeNull();
    expectRemoved();
    await writeFile(file, record("/w", {}));
    await writeFile(`${file}.initial`, `BIG=${"x".repeat(256 * 1024)}\0`);
    expect(await readSessionState(file, undefined, 0)).toBeNull();
    expectRemoved();
  });

  it("with the uid drop, reads only files owned by the slot's uid", async () => {
    await writeFile(file, record("/w", { A: "1" }));
    await writeFile(`${file}.initial`, "");
    // Owned by us, not by slot 1's uid (47002).
    expect(await readSessionState(file, launcher, 1)).toBeNull();
    expectRemoved();
  });

  it(
    "with the uid drop, reads the slot uid's own files (needs root to chown)",
    skipWhen("not-root"),
    async () => {
      await writeFile(file, record("/w", { A: "1" }));
      await writeFile(`${file}.initial`, "");
      await chown(file, 47002, 47000);
      await chown(`${file}.initial`, 47002, 47000);
      expect(await readSessionState(file, launcher, 1)).toEqual({
        cwd: "/w",
        exported: { A: "1" },
        initial: {},
      });
      // Another slot's files are not this slot's record.
      await writeFile(file, record("/w", { A: "1" }));
      await writeFile(`${file}.initial`, "");
      await chown(file, 47001, 47000);
      await chown(`${file}.initial`, 47001, 47000);
      expect(await readSessionState(file, launcher, 1)).toBeNull();
      expectRemoved();
    },
  );
});
