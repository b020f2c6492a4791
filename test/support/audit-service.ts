/**
 * A service process for the audit trail's process-level tests (crash-restart, two instances):
 * the real app, the real audit back end chosen from the environment exactly as the Node entry
 * chooses it (DATABASE_URL or SQLite in AGENTSH_STATE_DIR), on a loopback port; only agentsh is
 * a stand-in (it takes a few ms per command and blocks `sudo …`). Prints `{"port":N}` once it
 * listens. Run: node --import tsx test/support/audit-service.ts
 */
import { startServiceAudit } from "../../src/audit/service-audit.js";
import { parseConfig } from "../../src/config.js";
import { listen } from "../../src/listen.js";
import { blockedResult, FakeExecutor, okResult } from "./fake-executor.js";
import { buildTestApp } from "./test-app.js";

const env = Object.fromEntries(
  Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined),
);
const config = parseConfig(env);
const stateDir = env.AGENTSH_STATE_DIR;
if (!stateDir) throw new Error("set AGENTSH_STATE_DIR");
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const audit = await startServiceAudit({
  config: config.audit,
  logger: silent,
  stateDir,
  idle: () => true,
});
const executor = new FakeExecutor().respond(async (request) => {
  await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 10));
  return request.command.startsWith("sudo") ? blockedResult() : okResult(`${request.command}\n`);
});
const { app } = buildTestApp({ env, executor, audit: audit.store });
listen(app, { port: 0, hostname: "127.0.0.1" }, (port) => {
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
process.once("SIGTERM", () => {
  void audit.stop().finally(() => process.exit(0));
});
