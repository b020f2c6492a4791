#!/usr/bin/env -S node --import tsx
// with-stack: run a command against the governed-executor stack inside a private, sealed
// network namespace (how and why: test-network.ts).
//
// Usage (from the repository root):
//   test/net/with-stack.ts [--] CMD [ARG...]   boot the stack, run CMD in the namespace, tear down
// The harness's own tests: npx vitest run --project net
//
// Environment (all optional):
//   STACK_CMD            shell command line that starts the stack in the foreground (default:
//                        scripts/boot), run by bash from the repository root with TEST_NETNS set
//                        to the namespace's name, so a container can join it explicitly
//                        (tools/container/test-image: podman run --network ns:/run/netns/...)
//   STACK_IN_NETNS       1 (default): STACK_CMD runs under 'ip netns exec'. 0: it runs in the
//                        host's namespaces and must join $TEST_NETNS itself - for a container
//                        runtime, which needs the host's /sys/fs/cgroup (that 'ip netns exec'
//                        remounts /sys without) and refuses namespaced sysctls when started
//                        inside the netns it attaches to. The /health gate still passes only
//                        if the stack listens in the namespace.
//   PORT                 port the stack listens on inside the namespace (default 10000)
//   STACK_BOOT_TIMEOUT   seconds to wait for GET /health to answer 200 (default 90)
//   STACK_STOP_TIMEOUT   seconds between TERM and KILL for the stack (default 10)
//   STACK_LOG            file for the stack's stdout+stderr (default: in the temp dir)
//   KEEP_STACK_LOGS=1    keep the temp dir (logs, certificate) and print where it is
//
// CMD runs in the caller's working directory with these variables added:
//   BASE_URL     http://127.0.0.1:$PORT, the stack as seen from inside the namespace
//   SERVICE_URL  the same URL (vitest overwrites BASE_URL with Vite's own "/")
//   CANARY_LOG   the canary's JSON-lines log (format: test/net/canary.ts)
//   CANARY_CERT  the canary's self-signed certificate (a CA file for clients)
//   TEST_NETNS   the namespace's name
//   PORT         as above
// The exit code is CMD's (128 + N if a signal N ended it), or 1 if the stack did not boot;
// 130 / 143 after INT / TERM, once everything is torn down.

import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { fileURLToPath } from "node:url";
import {
  HarnessError,
  missingPrerequisites,
  parseStackOptions,
  type StackOptions,
  TestNetwork,
} from "./test-network.js";

const log = (message: string) => process.stderr.write(`with-stack: ${message}\n`);

function usage(): string {
  const header = readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n");
  const end = header.findIndex((line) => !line.startsWith("#") && !line.startsWith("//"));
  return header
    .slice(1, end)
    .map((line) => line.replace(/^\/\/ ?/, ""))
    .join("\n");
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === "-h" || argv[0] === "--help") {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  const command = argv[0] === "--" ? argv.slice(1) : argv;
  if (command.length === 0) {
    process.stderr.write(`${usage()}\n`);
    process.exit(2);
  }

  // dnsmasq and ip live in sbin, which a non-login root shell may lack.
  process.env.PATH = `${process.env.PATH ?? ""}:/usr/sbin:/sbin`;
  let options: StackOptions;
  try {
    options = parseStackOptions(process.env);
  } catch (error) {
    log(`error: ${(error as Error).message}`);
    process.exit(1);
  }
  const missing = missingPrerequisites();
  if (missing.length > 0) {
    log(`error: missing ${missing.join("; ")}`);
    log("scripts/setup-test-host installs the Debian packages");
    process.exit(1);
  }

  // Created before anything else, so every exit path below tears down what exists.
  let network: TestNetwork;
  try {
    network = new TestNetwork(options, log);
  } catch (error) {
    log(`error: ${(error as Error).message}`);
    process.exit(1);
  }
  const finish = async (code: number): Promise<never> => {
    await network.teardown().catch((error: unknown) => log(`error in teardown: ${String(error)}`));
    process.exit(code);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      // A second Ctrl-C must not cut teardown short and leave the namespace.
      if (network.tearingDown) return;
      log(`caught ${signal}, tearing down`);
      void finish(128 + constants.signals[signal]);
    });
  }

  try {
    await network.create();
    await network.startHelpers();
    try {
      await network.startStack();
    } catch (error) {
      if (!network.tearingDown) network.printStackTail();
      throw error;
    }
  } catch (error) {
    // After a signal, teardown is already under way and the failure is its consequence.
    if (network.tearingDown) return;
    log(`error: ${error instanceof HarnessError ? error.message : String(error)}`);
    await finish(1);
  }

  const code = await network.runCommand(command);
  if (network.tearingDown) return;
  if (code !== 0) {
    log(`command exited with code ${code}`);
    // Most e2e failures are explained by the stack's side; CI keeps no files.
    network.printStackTail();
  }
  if (!network.stackRunning())
    log("warning: the stack had already exited when the command finished");
  await finish(code);
}

await main(process.argv.slice(2));
