import { html, raw } from "hono/html";
import { AUDIT_OUTCOMES } from "../audit/audit-log.js";

/**
 * The browser console's page: markup, style and a small vanilla script, with no build step.
 * Everything it shows comes from the JSON API and is inserted as text (textContent, append):
 * command output is untrusted, and the page's CSP requires Trusted Types to make that binding.
 */
export function consolePage(nonce: string) {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>governed-executor console</title>
<link rel="icon" href="data:,">
<style nonce="${nonce}">${raw(STYLE)}</style>
</head>
<body>
<header>
  <h1>governed-executor <span class="muted">console</span></h1>
  <span id="health" class="pill">checking…</span>
</header>
<main>
<section class="card">
  <form id="key-form" class="row">
    <label for="key"><strong>API key</strong></label>
    <input id="key" type="password" autocomplete="off" spellcheck="false" placeholder="sent as X-API-Key; kept in this tab only">
    <button type="submit">Use key</button>
    <button type="button" id="key-forget" class="secondary">Forget</button>
    <span id="key-state" class="muted small"></span>
  </form>
</section>
<section class="card">
  <h2>Run a command</h2>
  <form id="run-form">
    <div class="row">
      <code id="prompt" class="prompt">$</code>
      <input id="command" maxlength="1024" autocomplete="off" spellcheck="false" placeholder="echo hello" required>
      <button type="submit" id="run">Run</button>
      <button type="button" id="stop" class="danger" hidden>Stop</button>
    </div>
    <div class="row small">
      <label><input type="checkbox" id="stream" checked> stream output</label>
      <label><input type="checkbox" id="use-session"> run in a session</label>
      <span id="session-state" class="muted"></span>
      <button type="button" id="session-end" class="secondary" hidden>End session</button>
    </div>
    <div class="row small examples">
      <span class="muted">Try:</span>
      <button type="button" class="example" data-example="echo hello">echo hello</button>
      <button type="button" class="example" data-example="sudo whoami">sudo whoami</button>
      <button type="button" class="example" data-example="cat /etc/shadow">cat /etc/shadow</button>
      <button type="button" class="example" data-example="curl -sS -m 5 http://169.254.169.254/">cloud metadata</button>
      <button type="button" class="example" data-example="for i in 1 2 3; do echo tick $i; sleep 1; done">a slow loop</button>
      <button type="button" class="example" data-example="mkdir -p demo && cd demo && pwd">cd (a session keeps it)</button>
    </div>
  </form>
  <div id="run-output" aria-live="polite"></div>
</section>
<section class="card" id="approvals">
  <h2>Approvals <span class="muted small">commands and connections held for a person's decision (GET /approvals; needs an approver key)</span></h2>
  <form id="approvals-form" class="row small">
    <label>reason <input id="approval-reason" class="filter" autocomplete="off" spellcheck="false" placeholder="why (kept in the trail)"></label>
    <button type="submit" id="approvals-refresh">Refresh</button>
  </form>
  <div id="approvals-output" aria-live="polite"><span class="muted small">Set an approver key to see pending approvals.</span></div>
</section>
<section class="card" id="activity">
  <h2>Recent activity <span class="muted small">the audit trail (GET /audit), newest first; blocks highlighted</span></h2>
  <form id="activity-form" class="row small">
    <label>outcome <select id="activity-outcome"><option value="">any</option></select></label>
    <label>rule <input id="activity-rule" class="filter" autocomplete="off" spellcheck="false" placeholder="deny-…"></label>
    <label>caller <input id="activity-caller" class="filter" autocomplete="off" spellcheck="false" placeholder="key-…"></label>
    <label>session <input id="activity-session" class="filter" autocomplete="off" spellcheck="false" placeholder="s-…"></label>
    <button type="submit" id="activity-refresh">Refresh</button>
  </form>
  <div id="activity-output" aria-live="polite"><span class="muted small">Set the API key to see the trail.</span></div>
</section>
<section class="card">
  <h2>Demos</h2>
  <p class="muted small">Each demo runs a table of commands through agentsh and checks every verdict against what the policy should decide.</p>
  <div id="demo-list" class="demo-list"><span class="muted small">loading…</span></div>
  <div id="demo-output" aria-live="polite"></div>
</section>
</main>
<footer class="muted small">API clients: <code>GET /</code> lists the endpoints as JSON · <a href="/health">/health</a> · <a href="/demo">/demo</a></footer>
<script nonce="${nonce}">${raw(SCRIPT)}</script>
</body>
</html>
`;
}

const STYLE = `
:root { --fg: #1d2330; --muted: #667085; --line: #d9dee7; --bg: #f5f7fa; --card: #fff;
  --ok: #1a7f37; --warn: #9a6700; --bad: #c2261b; --code: #0f172a; --code-fg: #e2e8f0; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header, main, footer { max-width: 1100px; margin: 0 auto; padding: 0 16px; }
header { display: flex; align-items: center; justify-content: space-between; padding-top: 14px; }
h1 { font-size: 20px; margin: 0; } h2 { font-size: 16px; margin: 0 0 10px; } h3 { font-size: 15px; margin: 14px 0 4px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin: 12px 0; }
.row { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; margin: 6px 0; }
.muted { color: var(--muted); } .small { font-size: 12.5px; }
input[type=password], input#command { flex: 1; min-width: 220px; padding: 7px 9px; border: 1px solid var(--line); border-radius: 6px; font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; }
button { padding: 6px 12px; border: 1px solid #2f5bd3; border-radius: 6px; background: #2f5bd3; color: #fff; cursor: pointer; font: inherit; }
button.secondary, button.example { background: #fff; color: var(--fg); border-color: var(--line); }
button.example { padding: 2px 8px; font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
button.danger { background: var(--bad); border-color: var(--bad); }
button:disabled { opacity: .55; cursor: default; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
.prompt { color: var(--muted); white-space: nowrap; }
pre { background: var(--code); color: var(--code-fg); padding: 8px 10px; border-radius: 6px; margin: 6px 0; max-height: 320px; overflow: auto; white-space: pre-wrap; word-break: break-word; }
pre.stderr, .err { color: #fca5a5; }
pre.live { border-left: 3px solid #60a5fa; }
.label { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin-top: 6px; }
.pill, .badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; border: 1px solid currentColor; white-space: nowrap; }
.pill.ok, .badge.ok { color: var(--ok); } .pill.bad, .badge.blocked { color: var(--bad); }
.badge.failed, .badge.timed_out { color: var(--warn); }
.facts { display: flex; flex-wrap: wrap; gap: 6px 16px; align-items: center; margin-top: 10px; }
.message { margin-top: 4px; }
.run-status { color: var(--muted); margin-top: 10px; }
.error { border: 1px solid #f3b7b1; background: #fff4f2; color: #7a1a12; border-radius: 6px; padding: 8px 10px; margin-top: 10px; }
.error .hint { color: #5c3b00; margin-top: 2px; }
.demo-list { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 8px; }
.demo-list button { text-align: left; background: #fff; color: var(--fg); border-color: var(--line); }
.demo-list button:hover, button.example:hover { border-color: #2f5bd3; }
.demo-list .desc { display: block; font-size: 12px; color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin-top: 6px; }
th, td { text-align: left; vertical-align: top; padding: 5px 6px; border-bottom: 1px solid var(--line); font-size: 13px; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.mark { font-weight: 700; } td.mark.good { color: var(--ok); } td.mark.bad { color: var(--bad); }
details summary { cursor: pointer; color: #2f5bd3; }
input.filter, select { padding: 4px 6px; border: 1px solid var(--line); border-radius: 6px; font: 12.5px ui-monospace, SFMono-Regular, Menlo, monospace; width: 150px; }
#activity tr.blocked td { background: #fff1f0; }
#activity tr.blocked td:first-child { box-shadow: inset 3px 0 0 var(--bad); }
#activity tr.refused td { background: #fffaeb; }
#activity td code { word-break: break-all; }
footer { padding-bottom: 20px; }
`;

// Plain browser JavaScript (no build step). String.raw keeps its escapes (\n in regexes) as
// written; it must not contain a backtick or a dollar-brace.
const SCRIPT = String.raw`
"use strict";
(() => {
  const KEY_STORAGE = "governed-executor:api-key";
  const SESSION_STORAGE = "governed-executor:session-id";
  const OUTCOME_LABEL = { ok: "allowed", failed: "allowed · failed", blocked: "blocked", timed_out: "timed out" };
  const AUDIT_OUTCOMES = __AUDIT_OUTCOMES__;
  const $ = (id) => document.getElementById(id);

  // Builds an element; strings become text nodes, never markup.
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "text") node.textContent = String(value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child !== undefined && child !== null && child !== false) node.append(child);
    }
    return node;
  }

  const apiKey = () => sessionStorage.getItem(KEY_STORAGE) || "";
  function requestHeaders(extra) {
    const headers = new Headers(extra || {});
    if (apiKey()) headers.set("X-API-Key", apiKey());
    return headers;
  }
  async function readBody(res) {
    const text = await res.text();
    try {
      return JSON.parse(text);
    } catch {
      return { error: { code: "unexpected_response", message: text.slice(0, 500) || res.statusText } };
    }
  }
  async function api(method, path, body) {
    const init = { method, headers: requestHeaders(body === undefined ? {} : { "Content-Type": "application/json" }) };
    if (body !== undefined) init.body = JSON.stringify(body);
    const res = await fetch(path, init);
    return { ok: res.ok, status: res.status, body: await readBody(res) };
  }
  const networkError = (error) => ({
    error: { code: "network_error", message: String((error && error.message) || error), hint: "Is the service reachable?" },
  });

  // --- rendering ---------------------------------------------------------------------------
  function errorView(body, status) {
    const error = (body && body.error) || { code: "unexpected_response", message: String(JSON.stringify(body)).slice(0, 300) };
    const details = Array.isArray(error.details)
      ? el("ul", {}, error.details.map((d) => el("li", { text: (d.path ? d.path + ": " : "") + (d.message || JSON.stringify(d)) })))
      : null;
    return el("div", { class: "error", role: "alert", "data-code": error.code },
      el("div", {}, el("strong", { class: "code", text: error.code }), status ? el("span", { text: " · HTTP " + status }) : null),
      el("div", { class: "message", text: error.message }),
      error.hint ? el("div", { class: "hint", text: "Hint: " + error.hint }) : null,
      details,
      body && body.requestId ? el("div", { class: "small", text: "request " + body.requestId }) : null);
  }
  const badge = (outcome) => el("span", { class: "badge " + outcome, text: OUTCOME_LABEL[outcome] || outcome });
  function decisionDetail(decision) {
    const what = [decision.operation || decision.kind, decision.target].filter(Boolean).join(" ");
    return [what, decision.layer ? "(" + decision.layer + ")" : ""].filter(Boolean).join(" ");
  }
  const exitText = (result) => (result.exitCode === null ? "none" : String(result.exitCode));
  function outputView(result) {
    const parts = [];
    if (result.stdout) parts.push(el("div", { class: "label", text: "stdout" }), el("pre", { class: "stdout" }, result.stdout));
    if (result.stderr) parts.push(el("div", { class: "label", text: "stderr" }), el("pre", { class: "stderr" }, result.stderr));
    if (parts.length === 0) parts.push(el("div", { class: "muted small", text: "(no output)" }));
    return parts;
  }
  function resultView(result) {
    const d = result.decision;
    const facts = el("div", { class: "facts" },
      badge(result.outcome),
      d ? el("span", {}, "rule ", el("code", { class: "rule", text: d.rule || "(unnamed)" }), " ", el("span", { class: "muted", text: decisionDetail(d) })) : null,
      el("span", {}, "exit code ", el("code", { class: "exit-code", text: exitText(result) })),
      el("span", { class: "muted", text: result.durationMs + " ms" }),
      result.redactions ? el("span", { class: "muted", text: "redacted: " + Object.entries(result.redactions).map(([k, n]) => k + " ×" + n).join(", ") }) : null,
      result.truncated ? el("span", { class: "muted", text: "output truncated" }) : null);
    return el("div", { class: "result", "data-outcome": result.outcome },
      facts,
      result.message ? el("div", { class: "message", text: result.message }) : null,
      result.denials ? el("div", { class: "muted small", text: "all denials: " + result.denials.map((x) => (x.rule || "(unnamed)") + " " + decisionDetail(x)).join("; ") }) : null,
      outputView(result));
  }

  // --- API key -------------------------------------------------------------------------------
  function showKeyState() {
    $("key-state").textContent = apiKey() ? "key set for this tab" : "no key set: endpoints that need one answer 401";
  }
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key").value.trim();
    if (key === apiKey()) return showKeyState();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
    forgetSession(); // sessions belong to the key that created them
    showKeyState();
    loadActivity(false);
    loadApprovals();
  });
  $("key-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    $("key").value = "";
    forgetSession();
    showKeyState();
    loadActivity(false);
  });

  // --- sessions ------------------------------------------------------------------------------
  const storedSession = () => sessionStorage.getItem(SESSION_STORAGE);
  function showSession(id, cwd) {
    $("session-state").replaceChildren(id
      ? el("span", {}, "session ", el("code", { class: "session-id", text: id }), " · cwd ", el("code", { class: "cwd", text: cwd || "?" }))
      : "");
    $("prompt").textContent = id && cwd ? cwd + " $" : "$";
    $("session-end").hidden = !id;
  }
  function forgetSession() {
    sessionStorage.removeItem(SESSION_STORAGE);
    showSession(null);
  }
  async function ensureSession(output) {
    const existing = storedSession();
    if (existing) return existing;
    const res = await api("POST", "/sessions", {});
    if (!res.ok) {
      output.append(errorView(res.body, res.status));
      return null;
    }
    sessionStorage.setItem(SESSION_STORAGE, res.body.session.id);
    showSession(res.body.session.id, res.body.session.cwd);
    return res.body.session.id;
  }
  function afterError(body, output) {
    const code = body && body.error && body.error.code;
    if (code === "session_not_found" || code === "session_on_other_instance") {
      forgetSession();
      output.append(el("div", { class: "muted small", text: "The console forgot this session; the next command starts a new one." }));
    }
  }
  $("session-end").addEventListener("click", async () => {
    const id = storedSession();
    if (!id) return;
    try {
      const res = await api("DELETE", "/sessions/" + encodeURIComponent(id));
      if (!res.ok && res.status !== 404) return $("run-output").replaceChildren(errorView(res.body, res.status));
    } catch (error) {
      return $("run-output").replaceChildren(errorView(networkError(error)));
    }
    forgetSession();
    $("use-session").checked = false;
  });

  // --- one command, buffered or streamed -----------------------------------------------------
  // Server-sent events from a fetch body (EventSource cannot POST): calls onEvent(name, data)
  // per event, by the line rules of the SSE format.
  async function readEvents(res, onEvent) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let name = "message";
    let data = [];
    const line = (text) => {
      if (text === "") {
        if (data.length > 0) onEvent(name, data.join("\n"));
        name = "message";
        data = [];
      } else if (!text.startsWith(":")) {
        const colon = text.indexOf(":");
        const field = colon < 0 ? text : text.slice(0, colon);
        let value = colon < 0 ? "" : text.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
      }
    };
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      for (let m = /\r\n|\r|\n/.exec(buffer); m; m = /\r\n|\r|\n/.exec(buffer)) {
        // A lone CR at the end may be the first half of a CRLF.
        if (!done && m[0] === "\r" && m.index === buffer.length - 1) break;
        line(buffer.slice(0, m.index));
        buffer = buffer.slice(m.index + m[0].length);
      }
      if (done) {
        if (buffer) line(buffer);
        line("");
        return;
      }
    }
  }
  const parseData = (data) => {
    try { return JSON.parse(data); } catch { return {}; }
  };

  let running = null;
  function setRunning(controller) {
    running = controller;
    $("run").disabled = Boolean(controller);
    $("stop").hidden = !controller;
  }
  function showExecuteBody(body, output) {
    output.append(resultView(body.result));
    if (body.session) {
      showSession(body.session.id, body.session.cwd);
      if (body.session.envNotCarried && body.session.envNotCarried.length > 0) {
        output.append(el("div", { class: "muted small", text: "not carried to the next command (env policy): " + body.session.envNotCarried.join(", ") }));
      }
    }
  }
  async function runCommand(command) {
    if (running) return;
    const controller = new AbortController();
    setRunning(controller);
    const output = $("run-output");
    const started = Date.now();
    const status = el("div", { class: "run-status", text: "running…" });
    output.replaceChildren(el("div", {}, el("code", { class: "ran", text: "$ " + command })), status);
    const ticker = setInterval(() => {
      status.textContent = "running… " + Math.round((Date.now() - started) / 1000) + " s";
    }, 1000);
    try {
      const body = { command };
      if ($("use-session").checked) {
        const sessionId = await ensureSession(output);
        if (!sessionId) return;
        body.sessionId = sessionId;
      }
      const res = await fetch("/execute", {
        method: "POST",
        headers: requestHeaders({ "Content-Type": "application/json", Accept: $("stream").checked ? "text/event-stream" : "application/json" }),
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (!(res.headers.get("Content-Type") || "").startsWith("text/event-stream")) {
        const payload = await readBody(res);
        if (res.ok) showExecuteBody(payload, output);
        else {
          output.append(errorView(payload, res.status));
          afterError(payload, output);
        }
        return;
      }
      const live = el("pre", { class: "live" });
      output.append(live);
      let ended = false;
      await readEvents(res, (event, data) => {
        const payload = parseData(data);
        if (event === "started") status.setAttribute("data-request-id", payload.requestId || "");
        else if (event === "stdout" || event === "stderr") {
          live.append(event === "stderr" ? el("span", { class: "err" }, payload.text) : payload.text);
          live.scrollTop = live.scrollHeight;
        } else if (event === "result") {
          ended = true;
          live.remove(); // the result carries the whole (bounded) output
          showExecuteBody(payload, output);
        } else if (event === "error") {
          ended = true;
          output.append(errorView(payload));
          afterError(payload, output);
        }
      });
      if (!ended) {
        output.append(errorView({ error: { code: "stream_ended", message: "The stream ended before the command's result.", hint: "Run the command again." } }));
      }
    } catch (error) {
      if (controller.signal.aborted) {
        output.append(el("div", { class: "error", role: "alert", text: "Stopped: the console closed the connection, so the service killed the command." }));
      } else {
        output.append(errorView(networkError(error)));
      }
    } finally {
      clearInterval(ticker);
      status.remove();
      setRunning(null);
      loadActivity(false);
    }
  }
  $("run-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const command = $("command").value;
    if (command.trim()) runCommand(command);
  });
  $("stop").addEventListener("click", () => running && running.abort());
  for (const button of document.querySelectorAll("[data-example]")) {
    button.addEventListener("click", () => {
      $("command").value = button.getAttribute("data-example");
      $("command").focus();
    });
  }

  // --- demos ---------------------------------------------------------------------------------
  function outputDetails(result) {
    if (!result.stdout && !result.stderr && !result.message) return "—";
    return el("details", {}, el("summary", { text: "output" }),
      result.message ? el("div", { class: "message small", text: result.message }) : null,
      outputView(result));
  }
  function demoRow(entry) {
    const r = entry.result;
    const known = typeof entry.asExpected === "boolean";
    return el("tr", { "data-outcome": r.outcome, "data-as-expected": known ? String(entry.asExpected) : "" },
      el("td", { class: "mark " + (entry.asExpected === false ? "bad" : "good"), text: known ? (entry.asExpected ? "✓" : "✗") : "", title: known ? (entry.asExpected ? "as expected" : "NOT as expected") : "" }),
      el("td", {}, el("code", { text: entry.command })),
      el("td", { class: "muted", text: entry.ranBy === "service" ? "ran by the service" : entry.expected || "" }),
      el("td", {}, badge(r.outcome)),
      el("td", {}, r.decision ? [el("code", { class: "rule", text: r.decision.rule || "(unnamed)" }), el("div", { class: "muted small", text: decisionDetail(r.decision) })] : ""),
      el("td", { class: "exit-code", text: exitText(r) }),
      el("td", {}, outputDetails(r)));
  }
  let demoRunning = false;
  async function runDemo(name, description) {
    if (demoRunning) return;
    demoRunning = true;
    const output = $("demo-output");
    for (const b of document.querySelectorAll("[data-demo]")) b.disabled = true;
    output.replaceChildren(el("div", { class: "run-status", text: "running /demo/" + name + "…" }));
    try {
      const res = await api("GET", "/demo/" + encodeURIComponent(name));
      if (!res.ok) return output.replaceChildren(errorView(res.body, res.status));
      const entries = Array.isArray(res.body) ? res.body : res.body.results || [];
      const checked = entries.filter((e) => typeof e.asExpected === "boolean");
      const good = checked.filter((e) => e.asExpected).length;
      const parts = [
        el("h3", {}, "/demo/" + name + " ", el("span", { class: "muted small", text: good + " of " + checked.length + " as expected" })),
        el("div", { class: "muted small", text: description }),
        res.body.note ? el("p", { class: "small", text: res.body.note }) : null,
        el("table", { id: "demo-results", "data-demo": name },
          el("thead", {}, el("tr", {}, ["", "command", "expected", "result", "rule", "exit", ""].map((h) => el("th", { text: h })))),
          el("tbody", {}, entries.map(demoRow))),
      ];
      output.replaceChildren(...parts.filter(Boolean));
    } catch (error) {
      output.replaceChildren(errorView(networkError(error)));
    } finally {
      demoRunning = false;
      for (const b of document.querySelectorAll("[data-demo]")) b.disabled = false;
      loadActivity(false);
    }
  }
  async function loadDemos() {
    const list = $("demo-list");
    try {
      const res = await api("GET", "/demo");
      if (!res.ok) return list.replaceChildren(errorView(res.body, res.status));
      list.replaceChildren(...res.body.demos.map((demo) => {
        const name = demo.path.replace(/^\/demo\//, "");
        const button = el("button", { type: "button", "data-demo": name },
          el("strong", { text: name }), el("span", { class: "muted", text: " · " + demo.commands }),
          el("span", { class: "desc", text: demo.description }));
        button.addEventListener("click", () => runDemo(name, demo.description));
        return button;
      }));
    } catch (error) {
      list.replaceChildren(errorView(networkError(error)));
    }
  }

  async function loadHealth() {
    const pill = $("health");
    try {
      const res = await api("GET", "/health");
      const ok = res.body.status === "ok";
      pill.className = "pill " + (ok ? "ok" : "bad");
      pill.textContent = ok
        ? "service ok · enforcement " + ((res.body.enforcement && res.body.enforcement.mode) || "?")
        : "unavailable: " + (res.body.reason || "HTTP " + res.status);
    } catch {
      pill.className = "pill bad";
      pill.textContent = "service unreachable";
    }
  }
  async function refreshSession() {
    const id = storedSession();
    if (!id) return;
    $("use-session").checked = true;
    try {
      const res = await api("GET", "/sessions/" + encodeURIComponent(id));
      if (res.ok) showSession(res.body.session.id, res.body.session.cwd);
      else forgetSession();
    } catch {
      showSession(id, null);
    }
  }

  // --- recent activity (GET /audit) ------------------------------------------------------------
  for (const outcome of AUDIT_OUTCOMES) $("activity-outcome").append(el("option", { value: outcome, text: outcome }));
  const NOT_RUN = ["degraded", "busy", "canceled", "unavailable", "unenforced", "rejected"];
  function activityRow(entry) {
    const kind = entry.outcome === "blocked" ? "blocked" : NOT_RUN.includes(entry.outcome) ? "refused" : "";
    const time = new Date(entry.time);
    return el("tr", { class: kind, "data-outcome": entry.outcome, "data-request-id": entry.requestId || "" },
      el("td", { class: "muted", title: entry.time, text: time.toLocaleTimeString() }),
      el("td", {}, badge(entry.outcome), entry.errorCode ? el("div", { class: "muted small", text: entry.errorCode }) : null),
      el("td", {}, el("code", { class: "command", text: entry.command })),
      el("td", {}, entry.rule ? el("code", { class: "rule", text: entry.rule }) : (entry.layer ? el("span", { class: "muted", text: entry.layer }) : "")),
      el("td", { class: "small" }, el("code", { class: "caller", text: entry.caller || "—" })),
      el("td", { class: "small" }, el("code", { class: "session", text: entry.session || "—" })),
      el("td", { class: "muted small", text: entry.instance }));
  }
  let activityCursor = null;
  async function loadActivity(more) {
    const output = $("activity-output");
    if (!apiKey()) return output.replaceChildren(el("span", { class: "muted small", text: "Set the API key to see the trail." }));
    const query = new URLSearchParams({ limit: "20" });
    const filters = { outcome: "activity-outcome", rule: "activity-rule", caller: "activity-caller", session: "activity-session" };
    for (const [name, id] of Object.entries(filters)) {
      const value = $(id).value.trim();
      if (value) query.set(name, value);
    }
    if (more && activityCursor) query.set("cursor", activityCursor);
    try {
      const res = await api("GET", "/audit" + "?" + query.toString());
      if (!res.ok) return output.replaceChildren(errorView(res.body, res.status));
      activityCursor = res.body.nextCursor;
      let body = more ? output.querySelector("tbody") : null;
      if (!body) {
        body = el("tbody");
        output.replaceChildren(el("table", { id: "activity-table" },
          el("thead", {}, el("tr", {}, ["time", "outcome", "command", "rule", "caller", "session", "instance"].map((h) => el("th", { text: h })))),
          body));
      }
      body.append(...res.body.entries.map(activityRow));
      const older = output.querySelector("#activity-older");
      if (older) older.remove();
      if (res.body.entries.length === 0 && !more) output.append(el("div", { class: "muted small", id: "activity-empty", text: "No entries match." }));
      if (activityCursor) {
        const button = el("button", { type: "button", id: "activity-older", class: "secondary", text: "Older" });
        button.addEventListener("click", () => loadActivity(true));
        output.append(button);
      }
    } catch (error) {
      output.replaceChildren(errorView(networkError(error)));
    }
  }
  $("activity-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadActivity(false);
  });
  $("activity-outcome").addEventListener("change", () => loadActivity(false));

  // --- approvals (GET /approvals, POST /approvals/:id) ------------------------------------------
  function approvalRow(approval) {
    const decide = (decision) => {
      const button = el("button", { type: "button", class: decision === "approve" ? "" : "secondary", "data-decision": decision, text: decision === "approve" ? "Approve" : "Deny" });
      button.addEventListener("click", async () => {
        const reason = $("approval-reason").value.trim();
        const res = await api("POST", "/approvals/" + encodeURIComponent(approval.id), reason ? { decision, reason } : { decision });
        if (!res.ok) return $("approvals-output").replaceChildren(errorView(res.body, res.status));
        loadApprovals();
        loadActivity(false);
      });
      return button;
    };
    return el("tr", { "data-approval-id": approval.id },
      el("td", {}, el("code", { class: "command", text: approval.command }),
        approval.kind === "network" ? el("div", { class: "muted small", text: "connection held: " + approval.target }) : null),
      el("td", {}, el("code", { class: "rule", text: approval.rule })),
      el("td", { class: "small" }, el("code", { text: approval.requester.key }), approval.requester.session ? el("div", { class: "muted", text: approval.requester.session }) : null),
      el("td", { class: "muted small", text: Math.round(approval.ageMs / 1000) + " s" }),
      el("td", {}, decide("approve"), " ", decide("deny")));
  }
  async function loadApprovals() {
    const output = $("approvals-output");
    if (!apiKey()) return output.replaceChildren(el("span", { class: "muted small", text: "Set an approver key to see pending approvals." }));
    try {
      const res = await api("GET", "/approvals");
      if (!res.ok) return output.replaceChildren(errorView(res.body, res.status));
      if (res.body.approvals.length === 0) return output.replaceChildren(el("div", { class: "muted small", id: "approvals-empty", text: "Nothing is waiting." }));
      output.replaceChildren(el("table", { id: "approvals-table" },
        el("thead", {}, el("tr", {}, ["command", "rule", "asked by", "age", ""].map((h) => el("th", { text: h })))),
        el("tbody", {}, res.body.approvals.map(approvalRow))));
    } catch (error) {
      output.replaceChildren(errorView(networkError(error)));
    }
  }
  $("approvals-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadApprovals();
  });

  $("key").value = apiKey();
  showKeyState();
  loadApprovals();
  loadHealth();
  loadDemos();
  refreshSession();
  loadActivity(false);
})();
`.replace("__AUDIT_OUTCOMES__", JSON.stringify(AUDIT_OUTCOMES));
