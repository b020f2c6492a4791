import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARTIFACTS_DIR, BASE_URL, http } from "./harness.js";

/**
 * The browser console (`/console`) in real headless Chromium (Debian's `chromium` package,
 * driven by playwright-core) against the real governed stack: the page's own script talks to
 * the API exactly as a person's browser would, under the page's real CSP.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const API_KEY = process.env.E2E_API_KEY ?? "";
const SCREENSHOT = join(ARTIFACTS_DIR, "console.png");
/** Default deadline of every Playwright wait and action that names none. */
const STEP_MS = 30_000;

let browser: Browser;
let page: Page;
/** What the page itself reported: uncaught errors, and CSP / Trusted Types refusals. */
const pageProblems: string[] = [];

beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // The suite runs as root (inside the test's network namespace), and Chromium refuses to
    // start its setuid/user-namespace sandbox as root; the page under test is our own.
    args: ["--no-sandbox"],
    timeout: STEP_MS,
  });
  page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.setDefaultTimeout(STEP_MS);
  page.setDefaultNavigationTimeout(STEP_MS);
  page.on("pageerror", (error) => pageProblems.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (/Content Security Policy|Trusted Type/i.test(message.text())) {
      pageProblems.push(`console: ${message.text()}`);
    }
  });
});

afterAll(async () => {
  await browser?.close();
});

/** Types a command into the console and runs it; returns the result panel once it is shown. */
async function run(command: string, options: { stream: boolean; deadlineMs?: number }) {
  await page.setChecked("#stream", options.stream);
  await page.fill("#command", command);
  await page.click("#run");
  const result = page.locator("#run-output .result");
  await result.waitFor({ timeout: options.deadlineMs ?? STEP_MS });
  return result;
}

describe("browser console", () => {
  it("a browser opening / is redirected to the console", async () => {
    await page.goto(`${BASE_URL}/`);
    expect(new URL(page.url()).pathname).toBe("/console");
    expect(await page.title()).toBe("governed-executor console");
    await page.locator("#health.ok").waitFor({ timeout: STEP_MS });
    expect(await page.textContent("#health")).toBe("service ok · enforcement enforced");
  });

  it("shows the error envelope (code, message, hint) when the key is missing", async () => {
    expect(API_KEY, "E2E_API_KEY (the stack's API key)").not.toBe("");
    await page.fill("#command", "echo hello");
    await page.click("#run");
    const error = page.locator("#run-output .error");
    await error.waitFor({ timeout: STEP_MS });
    expect(await error.getAttribute("data-code")).toBe("api_key_missing");
    expect(await error.locator(".message").textContent()).toBe(
      "This endpoint requires an API key.",
    );
    expect(await error.locator(".hint").textContent()).toContain("X-API-Key");
  });

  it("takes the API key and keeps it for this tab only", async () => {
    await page.fill("#key", API_KEY);
    await page.click("#key-form button[type=submit]");
    expect(await page.textContent("#key-state")).toBe("key set for this tab");
    // Page functions run in the browser; their DOM types are not in this project's lib.
    const stored = await page.evaluate("sessionStorage.getItem('governed-executor:api-key')");
    expect(stored).toBe(API_KEY);
  });

  it("runs the privilege-escalation demo: every row blocked with its rule", async () => {
    await page.click("[data-demo=privilege-escalation]");
    const table = page.locator("#demo-results[data-demo=privilege-escalation]");
    await table.waitFor({ timeout: 60_000 });
    const rows = table.locator("tbody tr");
    expect(await rows.count()).toBe(6);
    expect(await table.locator("tbody tr[data-as-expected=true]").count()).toBe(6);
    const sudo = table.locator("tbody tr", { hasText: "sudo whoami" });
    expect(await sudo.getAttribute("data-outcome")).toBe("blocked");
    expect(await sudo.locator(".rule").textContent()).toBe("deny-privilege-escalation");
    expect(await sudo.locator(".badge").textContent()).toBe("blocked");
  });

  it("runs a command and shows allowed, exit code 0 and its output", async () => {
    const result = await run("echo hello", { stream: false });
    expect(await result.getAttribute("data-outcome")).toBe("ok");
    expect(await result.locator(".badge").textContent()).toBe("allowed");
    expect(await result.locator(".exit-code").textContent()).toBe("0");
    expect(await result.locator("pre.stdout").textContent()).toBe("hello\n");
    expect(await result.locator(".rule").count()).toBe(0);
  });

  it("shows a blocked command with the rule that blocked it", async () => {
    const result = await run("sudo whoami", { stream: false });
    expect(await result.getAttribute("data-outcome")).toBe("blocked");
    expect(await result.locator(".rule").textContent()).toBe("deny-privilege-escalation");
    expect(await result.locator(".message").textContent()).toContain("deny-privilege-escalation");
  });

  it("lists the trail under Recent activity: newest first, the block highlighted, filters", async () => {
    // The panel reloads after each command: the block just run is its first row.
    // (The demo above ran `sudo whoami` too, without a caller: this one carries the key's.)
    const first = page.locator("#activity-table tbody tr:first-child", {
      hasText: "sudo whoami",
      has: page.locator(".caller", { hasText: /^key-/ }),
    });
    await first.waitFor({ timeout: STEP_MS });
    expect(await first.getAttribute("data-outcome")).toBe("blocked");
    expect(await first.getAttribute("class")).toBe("blocked");
    expect(await first.locator(".command").textContent()).toBe("sudo whoami");
    expect(await first.locator(".rule").textContent()).toBe("deny-privilege-escalation");
    expect(await first.locator(".caller").textContent()).toMatch(/^key-[0-9a-f]{12}$/);
    const before = page.locator("#activity-table tbody tr", { hasText: "echo hello" }).first();
    expect(await before.getAttribute("data-outcome")).toBe("ok");
    expect(await before.getAttribute("class")).toBe("");

    // Filters: blocked only, then a rule nothing matched.
    await page.selectOption("#activity-outcome", "blocked");
    await page
      .locator("#activity-table tbody tr:not([data-outcome=blocked])")
      .first()
      .waitFor({ state: "detached", timeout: STEP_MS });
    const rows = page.locator("#activity-table tbody tr");
    expect(await rows.count()).toBeGreaterThan(0);
    expect(await page.locator("#activity-table tbody tr.blocked").count()).toBe(await rows.count());
    await page.fill("#activity-rule", "no-such-rule");
    await page.click("#activity-refresh");
    await page.locator("#activity-empty").waitFor({ timeout: STEP_MS });
    await page.fill("#activity-rule", "");
    await page.selectOption("#activity-outcome", "");
    await page
      .locator("#activity-table tbody tr[data-outcome=ok]")
      .first()
      .waitFor({ timeout: STEP_MS });
  });

  it("runs commands in a session: the working directory carries over", async () => {
    await page.setChecked("#use-session", true);
    const first = await run("mkdir -p console-e2e && cd console-e2e && pwd", { stream: false });
    expect(await first.getAttribute("data-outcome")).toBe("ok");
    const sessionId = await page.textContent("#session-state .session-id");
    expect(sessionId).toMatch(/^s-[a-z0-9]{1,16}-[0-9a-f]{24}$/);
    const second = await run("pwd", { stream: false });
    expect(await second.locator("pre.stdout").textContent()).toMatch(/\/console-e2e\n$/);
    expect(await page.textContent("#session-state .cwd")).toMatch(/\/console-e2e$/);
    expect(await page.textContent("#prompt")).toMatch(/\/console-e2e \$$/);
    // Ending it leaves the next commands sessionless again.
    await page.click("#session-end");
    await page.locator("#session-end").waitFor({ state: "hidden", timeout: STEP_MS });
    expect(await page.isChecked("#use-session")).toBe(false);
  });

  it("Stop closes the stream and the console is ready for the next command", async () => {
    await page.setChecked("#stream", true);
    await page.fill("#command", "echo waiting; sleep 30");
    await page.click("#run");
    await page.locator("#run-output pre.live", { hasText: "waiting" }).waitFor({ timeout: 10_000 });
    await page.click("#stop");
    const stopped = page.locator("#run-output .error", { hasText: "Stopped" });
    await stopped.waitFor({ timeout: 5_000 });
    expect(await page.isEnabled("#run")).toBe(true);
    expect(await page.isHidden("#stop")).toBe(true);
  });

  it("streams a long command: the first line shows before the command ends", async () => {
    await page.setChecked("#stream", true);
    await page.fill("#command", "for i in 1 2 3; do echo tick $i; sleep 1; done");
    await page.click("#run");
    const live = page.locator("#run-output pre.live", { hasText: "tick 1" });
    await live.waitFor({ timeout: 10_000 });
    const firstTickAt = Date.now();
    // Still running: no later tick yet, no result, the Stop button offered.
    expect(await live.textContent()).not.toContain("tick 3");
    expect(await page.locator("#run-output .result").count()).toBe(0);
    expect(await page.isVisible("#stop")).toBe(true);
    const result = page.locator("#run-output .result");
    await result.waitFor({ timeout: 30_000 });
    expect(Date.now() - firstTickAt).toBeGreaterThan(1000);
    expect(await result.getAttribute("data-outcome")).toBe("ok");
    expect(await result.locator(".exit-code").textContent()).toBe("0");
    expect(await result.locator("pre.stdout").textContent()).toBe("tick 1\ntick 2\ntick 3\n");
  });

  it("keeps a full-page screenshot of the live console as the test artifact", async () => {
    // What it shows is the console after the runs above, not an error page.
    expect(await page.textContent("#health")).toBe("service ok · enforcement enforced");
    expect(await page.locator("#run-output .result pre.stdout").textContent()).toBe(
      "tick 1\ntick 2\ntick 3\n",
    );
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    // A file left by an earlier run would pass the checks below.
    rmSync(SCREENSHOT, { force: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true, timeout: STEP_MS });
    const png = readFileSync(SCREENSHOT);
    expect(png.subarray(0, 8).toString("hex")).toBe("89504e470d0a1a0a");
    // IHDR: the viewport's width, and at least its height (the full page).
    expect(png.readUInt32BE(16)).toBe(1200);
    expect(png.readUInt32BE(20)).toBeGreaterThanOrEqual(900);
  });

  it("the page reported no script error and no CSP or Trusted Types refusal", async () => {
    // Only meaningful on the live console: a page that never loaded reports nothing either.
    expect(new URL(page.url()).pathname).toBe("/console");
    expect(await page.textContent("#health")).toBe("service ok · enforcement enforced");
    expect(pageProblems).toEqual([]);
    // And the watchers do hear a refusal and an uncaught error when there is one: an image from
    // another origin (img-src allows data: only; loopback, never fetched), a Trusted Types
    // policy (trusted-types 'none') and a throw outside any handler.
    await page.evaluate(`(() => {
      const probe = new Image();
      probe.src = "http://127.0.0.1:9/csp-probe.png";
      document.body.append(probe);
      try { trustedTypes.createPolicy("probe", {}); } catch {}
      setTimeout(() => { throw new Error("watcher probe"); }, 0);
    })()`);
    // Matched on what each names (Chromium has worded these messages differently over time).
    const heard = [
      /^console: .*csp-probe\.png.*"img-src data:"/,
      /^console: .*TrustedTypePolicy named 'probe'.*"trusted-types 'none'"/,
      /^pageerror: watcher probe$/,
    ];
    const missing = () => heard.filter((report) => !pageProblems.some((p) => report.test(p)));
    const deadline = Date.now() + 5_000;
    while (missing().length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(missing(), `heard: ${JSON.stringify(pageProblems)}`).toEqual([]);
    expect(pageProblems.filter((p) => !heard.some((report) => report.test(p)))).toEqual([]);
  });
});

describe("API reference (/docs)", () => {
  /** What the reference page reported: uncaught errors, CSP and Trusted Types refusals. */
  const docsProblems: string[] = [];
  let docs: Page;

  beforeAll(async () => {
    docs = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    docs.setDefaultTimeout(STEP_MS);
    docs.on("pageerror", (error) => docsProblems.push(`pageerror: ${error.message}`));
    docs.on("console", (message) => {
      if (
        message.type() === "error" ||
        /Content Security Policy|Trusted Type/i.test(message.text())
      ) {
        docsProblems.push(`console: ${message.text()}`);
      }
    });
  });

  it("renders every operation of the served document, its Markdown included", async () => {
    const res = await docs.goto(`${BASE_URL}/docs`);
    expect(res?.status()).toBe(200);
    expect(await docs.title()).toBe("governed-executor API reference");
    await docs.locator(".opblock").first().waitFor({ timeout: STEP_MS });
    const served = (await (await fetch(`${BASE_URL}/openapi.json`)).json()) as {
      paths: Record<string, object>;
    };
    const operations = Object.values(served.paths).flatMap((item) => Object.keys(item)).length;
    expect(await docs.locator(".opblock").count()).toBe(operations);
    const execute = docs.locator("#operations-commands-execute");
    await execute.locator(".opblock-summary").click();
    // Descriptions are Markdown, written into the page through the Trusted Types default policy.
    const rendered = execute.locator(".opblock-description .renderedMarkdown code").first();
    await rendered.waitFor({ timeout: STEP_MS });
    expect(await rendered.textContent()).toBe("sessionId");
  });

  it("tries an operation against the service itself (GET /health)", async () => {
    const health = docs.locator("#operations-service-health");
    await health.locator(".opblock-summary").click();
    await health.locator("button.try-out__btn").click();
    await health.locator("button.execute").click();
    const status = health.locator(".live-responses-table .response .response-col_status");
    await status.waitFor({ timeout: STEP_MS });
    expect((await status.textContent())?.trim()).toBe("200");
  });

  it("reported no script error and no CSP or Trusted Types refusal; HTML is sanitized", async () => {
    expect(new URL(docs.url()).pathname).toBe("/docs");
    expect(await docs.locator(".opblock").count()).toBeGreaterThan(10);
    expect(docsProblems).toEqual([]);
    // HTML written into the page goes through the default policy, DOMPurify: the handler is
    // stripped (and, in the parse, refused by the CSP as well). No script may create a policy of
    // its own. The watchers hear both refusals.
    const kept = await docs.evaluate(`(() => {
      const probe = document.createElement("div");
      probe.innerHTML = '<b onclick="window.docsProbe = 1">probe</b>';
      probe.firstChild.click?.();
      try { trustedTypes.createPolicy("probe", {}); } catch {}
      return [probe.innerHTML, window.docsProbe === undefined];
    })()`);
    expect(kept).toEqual(["<b>probe</b>", true]);
    const heard = [/^console: .*TrustedTypePolicy named 'probe'.*"trusted-types default dompurify/];
    const expected = [...heard, /^console: Executing inline event handler violates/];
    const missing = () => heard.filter((report) => !docsProblems.some((p) => report.test(p)));
    const deadline = Date.now() + 5_000;
    while (missing().length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(missing(), `heard: ${JSON.stringify(docsProblems)}`).toEqual([]);
    expect(docsProblems.filter((p) => !expected.some((report) => report.test(p)))).toEqual([]);
  });
});

describe("approvals panel", () => {
  const APPROVER_KEY = process.env.E2E_APPROVER_KEY ?? "";
  // Base 36: a run of 13 digits would be redacted as a card number in listings.
  const dir = `/workspace/console-approvals-${Date.now().toString(36)}`;
  const push = `cd ${dir}/w && git push -q origin HEAD:main && echo pushed`;
  const execute = async (body: Record<string, unknown>) => {
    const res = await http("/execute", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    // biome-ignore lint/suspicious/noExplicitAny: asserted field by field
    return (await res.json()) as any;
  };

  it("an agent's command is held, approved in the panel, and then completes", async () => {
    expect(APPROVER_KEY, "E2E_APPROVER_KEY must be set (scripts/test sets it)").not.toBe("");
    // Earlier tests provoke refusals on purpose: only what this one causes counts.
    const problemsBefore = pageProblems.length;
    const setup = await execute({
      command: `mkdir -p ${dir} && cd ${dir} && git init -q --bare remote.git && git init -q w && cd w && git -c user.email=a@b.c -c user.name=a commit -q --allow-empty -m one && git remote add origin ../remote.git && echo ready`,
    });
    expect(setup.result.stdout).toBe("ready\n");
    // The agent (API key) pushes: agentsh blocks it on the approval-class rule.
    const held = await execute({ command: push });
    expect(held.result.decision?.rule).toBe("approval-git-push");
    const id: string = held.approval.id;

    // A person with an approver key sees it in the panel and approves it.
    await page.fill("#key", APPROVER_KEY);
    await page.click("#key-form button[type=submit]");
    await page.click("#approvals-refresh");
    const row = page.locator(`#approvals-table tr[data-approval-id="${id}"]`);
    await row.waitFor({ timeout: STEP_MS });
    expect(await row.locator(".command").textContent()).toBe(push);
    expect(await row.locator(".rule").textContent()).toBe("approval-git-push");
    await page.fill("#approval-reason", "console e2e");
    await row.locator("button[data-decision=approve]").click();
    await row.waitFor({ state: "detached", timeout: STEP_MS });
    await page.screenshot({ path: join(ARTIFACTS_DIR, "console-approvals.png"), fullPage: true });

    // The agent resubmits with the approval: it runs once and pushes.
    const ran = await execute({ command: push, approvalId: id });
    expect(ran.result.outcome, JSON.stringify(ran)).toBe("ok");
    expect(ran.result.stdout).toBe("pushed\n");
    expect(ran.approvedBy.reason).toBe("console e2e");
    expect(pageProblems.slice(problemsBefore)).toEqual([]);
  });
});
