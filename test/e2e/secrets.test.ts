import { readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type SkipCondition, skipWhen } from "../support/skip-when.js";
import { execute } from "./harness.js";

/**
 * No governed command can read a secret of the service. The suite's stack runs with an API_KEY
 * it knows (E2E_API_KEY); each probe searches for it by a route an attacker would try. The key
 * is never written into the command itself (it would then sit in /proc/self/cmdline): the probe
 * joins it from two halves.
 */
/** How a probe rebuilds `key` in the command's shell (as `$k`) and counts it in `where`. */
function finder(key: string) {
  const half = Math.floor(key.length / 2);
  const rebuildKey = `a=${key.slice(0, half)}; b=${key.slice(half)}; k="$a$b"; [ \${#k} -eq ${key.length} ] || exit 99`;
  // The pattern reaches grep through a file descriptor (printf is a bash builtin): a `grep "$k"`
  // would carry the key in its own command line, where `cat /proc/[0-9]*/cmdline` in the same
  // pipeline could find it (seen: 1 run in 4).
  return (where: string) =>
    `${rebuildKey}; ${where} 2>/dev/null | grep -a -c -F -f <(printf '%s\\n' "$k") || true`;
}

/**
 * agentsh's keys, written per boot by scripts/boot into the state dir's api-keys.yaml: the
 * service's agent key and its approver key (it answers agentsh's network approvals with it).
 * Read from the host's state dir, so not against the image, whose state dir is its own.
 */
function agentshKey(id: string): string {
  const dir = process.env.E2E_AGENTSH_STATE_DIR;
  if (!dir) return "";
  try {
    const file = readFileSync(path.join(dir, "api-keys.yaml"), "utf8");
    return new RegExp(`id: ${id}\\n\\s+key: (\\S+)`).exec(file)?.[1] ?? "";
  } catch {
    return "";
  }
}

// The probes read the stack's processes and files, so only where the suite booted the stack.
// The agents' API key, the approvers' key (APPROVER_KEYS: who may let a held command run), and
// the service's own credentials towards agentsh.
const SECRETS: Array<[string, string, readonly SkipCondition[]]> = [
  ["API_KEY", process.env.E2E_API_KEY ?? "", ["remote"]],
  ["APPROVER_KEYS", process.env.E2E_APPROVER_KEY ?? "", ["remote"]],
  ["agentsh agent key", agentshKey("governed-executor"), ["remote", "container-stack"]],
  [
    "agentsh approver key",
    agentshKey("governed-executor-approvals"),
    ["remote", "container-stack"],
  ],
];

describe.each(SECRETS)(
  "the service's %s is out of reach of governed commands",
  (name, KEY, unless) => {
    const find = finder(KEY);
    describe("by every route an attacker would try", skipWhen(unless), () => {
      beforeAll(() => {
        // Without the key the probes would search for nothing and prove nothing.
        if (KEY.length < 16) {
          throw new Error(`the suite does not know the stack's ${name} (scripts/test passes it)`);
        }
      });

      it.each([
        ["its own environment", find("env")],
        ["every process environment", find("cat /proc/[0-9]*/environ")],
        ["every process command line", find("cat /proc/[0-9]*/cmdline")],
        [
          "the agentsh state (API keys file, audit database)",
          find("cat /var/lib/*/* /var/lib/*/*/*"),
        ],
        ["the app's files", find("grep -r -a . /app /work /opt /srv /root /home")],
        // Files written since the stack booted (a leak would be newer than that); bounded so that a
        // host's old caches in /tmp do not turn the probe into a timeout.
        [
          "the shared scratch space",
          find("find /tmp /workspace -xdev -type f -mmin -180 -size -20M -exec cat {} +"),
        ],
      ])("not in %s [local only]", async (_route, command) => {
        const result = await execute(command);
        expect(result.stdout.trim(), JSON.stringify(result)).toBe("0");
      });

      it("the probe itself works: it finds the key where a command puts it [local only]", async () => {
        // Guards against a probe that can never find anything (a test that cannot fail).
        const result = await execute(find('echo "x$k"'));
        expect(result.stdout.trim()).toBe("1");
        expect(result.exitCode).toBe(0);
      });
    });
  },
);
