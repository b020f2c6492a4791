import { readFileSync } from "node:fs";
import type { RouteConfig } from "@hono/zod-openapi";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { openSqliteAuditStore } from "../../src/audit/sqlite-store.js";
import { createRedactor } from "../../src/bundle/redactor.js";
import type { Execution, GovernedCommand } from "../../src/executor.js";
import { API_VERSION, honoPath, routeDeclarations } from "../../src/openapi/route-docs.js";
import { blockedResult, FakeExecutor, notRun, okResult } from "../support/fake-executor.js";
import { buildTestApp, postJson, readJson, type TestAppOptions } from "../support/test-app.js";

const KEY = "o".repeat(24);
const WITH_KEY = { env: { API_KEY: KEY } };
const APPROVER = "a".repeat(24);
const AS_APPROVER = { "X-API-Key": APPROVER };
const APPROVERS = { env: { API_KEY: KEY, APPROVER_KEYS: APPROVER } };
const UNKNOWN_APPROVAL = `apr-${"0".repeat(24)}`;
/** agentsh blocks the command on an approval-class rule. */
const pushBlocked = () =>
  new FakeExecutor().respond(() => blockedResult({ rule: "approval-git-push" }));
const SSE = { Accept: "text/event-stream" };

type JsonSchema = Record<string, unknown>;
/** The parts of the served document these tests read. */
interface OpenApiDocument {
  openapi: string;
  paths: Record<
    string,
    Record<
      string,
      {
        responses: Record<
          string,
          { content?: Record<string, { schema?: JsonSchema; "x-events"?: Record<string, object> }> }
        >;
      }
    >
  >;
  components: { schemas: Record<string, JsonSchema> };
}

const { app, config } = buildTestApp();
/** The route declarations (`createRoute`) the document is generated from, in registration order. */
const routes: RouteConfig[] = routeDeclarations(app);
const document = (await readJson(await app.request("/openapi.json"))) as OpenApiDocument;

/** Well-formed session ids: one this instance never issued, one of another instance. */
const UNKNOWN_SESSION = `s-${config.sessions.instanceTag}-${"0".repeat(24)}`;
const OTHER_INSTANCE_SESSION = `s-elsewhere-${"0".repeat(24)}`;

type App = ReturnType<typeof buildTestApp>["app"];
/** A request that must get one documented answer. */
interface Probe {
  options?: TestAppOptions;
  send: (app: App) => Response | Promise<Response>;
}

const request =
  (method: string, path: string, headers: Record<string, string> = {}) =>
  (app: App) =>
    app.request(path, { method, headers });
const get = (path: string, headers: Record<string, string> = {}) => request("GET", path, headers);
const post =
  (path: string, body?: unknown, headers: Record<string, string> = {}) =>
  (app: App) =>
    app.request(path, body === undefined ? { method: "POST", headers } : postJson(body, headers));
/** The second of two identical requests (with a limit of 1). */
const twice = (send: Probe["send"]) => async (app: App) => {
  await send(app);
  return send(app);
};
const rateLimited = (variable: string, send: Probe["send"], env = {}): Probe => ({
  options: { env: { ...env, [variable]: "1" } },
  send: twice(send),
});
const createSession = async (app: App): Promise<string> =>
  (await readJson(await app.request("/sessions", { method: "POST" }))).session.id;
const inSession =
  (send: (app: App, id: string) => Response | Promise<Response>) => async (app: App) =>
    send(app, await createSession(app));

/**
 * agentsh at the process boundary, with what the fake lacks for these requests: output
 * streamed as it arrives, a command (`hold`) that runs until released, and sessions that
 * agentsh refuses to open.
 */
class ScriptedExecutor extends FakeExecutor {
  release: () => void = () => {};
  private readonly released = new Promise<void>((resolve) => {
    this.release = resolve;
  });
  constructor(private readonly script: { refuseSessions?: boolean } = {}) {
    super();
  }
  override async openSession(id: string, workspace: string): Promise<void> {
    if (this.script.refuseSessions) throw new Error("agentsh refused the session");
    return super.openSession(id, workspace);
  }
  override async run(command: GovernedCommand): Promise<Execution> {
    command.onOutput?.("stdout", "first line\n");
    command.onOutput?.("stderr", "a warning\n");
    const execution = super.run(command);
    if (command.command === "hold") await this.released;
    return execution;
  }
}

/** A second command in a session whose first command is still running. */
const busySession = (): Probe => {
  const executor = new ScriptedExecutor();
  return {
    options: { executor },
    send: inSession(async (app, sessionId) => {
      const first = app.request("/execute", postJson({ command: "hold", sessionId }));
      for (const deadline = Date.now() + 5_000; executor.commands.length === 0; ) {
        if (Date.now() > deadline) throw new Error("the first command never started");
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const second = await app.request("/execute", postJson({ command: "id", sessionId }));
      executor.release();
      await first;
      return second;
    }),
  };
};
const unsandboxed = () => new FakeExecutor().respond(() => okResult("", { sandboxed: false }));
const degraded: TestAppOptions = {
  enforcement: { mode: "degraded", checks: { "canary: sudo denied": false }, problems: ["x"] },
};
const ID = { command: "id" };
/** A JSON-RPC message to /mcp as an MCP client sends it. */
const mcp =
  (message: unknown, headers: Record<string, string> = {}) =>
  (app: App) =>
    app.request("/mcp", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json, text/event-stream",
        ...headers,
      },
      body: typeof message === "string" ? message : JSON.stringify(message),
    });
const MCP_CLIENT = {
  protocolVersion: "2025-06-18",
  capabilities: {},
  clientInfo: { name: "openapi-test", version: "1" },
};
const RUN_ID = { name: "run_command", arguments: ID };
const TOO_LARGE = { command: "x".repeat(20_000) };
/** An audit store whose database is gone (closed): reads answer 503 audit_unavailable. */
const closedAudit = openSqliteAuditStore(":memory:");
void closedAudit.close();

/**
 * For every answer the document lists ("METHOD /path status", plus the media type when it is
 * not JSON), the requests that get it. A documented answer without a request here fails, and
 * so does a request whose answer has another status or a body its documented schema rejects.
 * Several requests for one answer: each must get it; for a stream, together they must show
 * every documented event but `heartbeat` (sent after 10 s of quiet).
 */
const PROBES: Record<string, Probe | Probe[]> = {
  "GET / 200": { send: get("/") },
  "GET / 303": { send: get("/", { Accept: "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8" }) },
  "GET /console 200 text/html": { send: get("/console") },
  "GET /openapi.json 200": { send: get("/openapi.json") },
  "GET /docs 200 text/html": { send: get("/docs") },
  "GET /docs/assets/:file 200 text/javascript": [
    { send: get("/docs/assets/swagger-ui-bundle.js") },
    { send: get("/docs/assets/purify.min.js?v=1") },
  ],
  "GET /docs/assets/:file 200 text/css": { send: get("/docs/assets/swagger-ui.css") },
  "GET /docs/assets/:file 404": { send: get("/docs/assets/swagger-initializer.js") },
  "GET /health 200": { send: get("/health") },
  "GET /health 503": { options: { agentshProblem: "connection refused" }, send: get("/health") },
  "GET /demo 200": { send: get("/demo") },
  "GET /demo 429": rateLimited("RATE_LIMIT_DEMO", get("/demo")),
  "GET /demo/:name 200": { send: get("/demo/allowed") },
  "GET /demo/:name 404": { send: get("/demo/no-such-demo") },
  "GET /demo/:name 429": rateLimited("RATE_LIMIT_DEMO", get("/demo/allowed")),
  "GET /demo/:name 500": { options: { executor: unsandboxed() }, send: get("/demo/allowed") },
  "GET /demo/:name 503": { options: degraded, send: get("/demo/allowed") },
  "POST /execute 200": [
    { send: post("/execute", ID) },
    { send: inSession((app, sessionId) => post("/execute", { ...ID, sessionId })(app)) },
  ],
  "POST /execute 200 text/event-stream": [
    { options: { executor: new ScriptedExecutor() }, send: post("/execute", ID, SSE) },
    { send: post("/execute", { ...ID, sessionId: UNKNOWN_SESSION }, SSE) },
    { options: { executor: pushBlocked() }, send: post("/execute", { command: "git push" }, SSE) },
  ],
  "POST /execute 400": { send: post("/execute", { command: "" }) },
  "POST /execute 401": { options: WITH_KEY, send: post("/execute", ID) },
  "POST /execute 404": { send: post("/execute", { ...ID, sessionId: UNKNOWN_SESSION }) },
  "POST /execute 409": busySession(),
  "POST /execute 413": { send: post("/execute", TOO_LARGE) },
  "POST /execute 415": { send: post("/execute", undefined, { "Content-Type": "text/plain" }) },
  "POST /execute 421": { send: post("/execute", { ...ID, sessionId: OTHER_INSTANCE_SESSION }) },
  "POST /execute 429": rateLimited("RATE_LIMIT_EXECUTE", post("/execute", ID)),
  "POST /execute 500": { options: { executor: unsandboxed() }, send: post("/execute", ID) },
  "POST /execute 503": {
    options: { executor: new FakeExecutor().respond(() => notRun("busy")) },
    send: post("/execute", ID),
  },
  "POST /execute 403": { send: post("/execute", { ...ID, approvalId: `apr-${"0".repeat(24)}` }) },
  "GET /approvals 200": { options: APPROVERS, send: get("/approvals", { "X-API-Key": APPROVER }) },
  "GET /approvals 401": { options: APPROVERS, send: get("/approvals") },
  "GET /approvals 403": [
    { send: get("/approvals") },
    { options: APPROVERS, send: get("/approvals", { "X-API-Key": KEY }) },
  ],
  "POST /approvals/:id 200": {
    options: { ...APPROVERS, executor: pushBlocked() },
    send: async (app) => {
      const blocked = await readJson(
        await app.request("/execute", postJson({ command: "git push" }, { "X-API-Key": KEY })),
      );
      return post(`/approvals/${blocked.approval.id}`, { decision: "approve" }, AS_APPROVER)(app);
    },
  },
  "POST /approvals/:id 400": {
    options: APPROVERS,
    send: post(`/approvals/${UNKNOWN_APPROVAL}`, { decision: "maybe" }, AS_APPROVER),
  },
  "POST /approvals/:id 401": {
    options: APPROVERS,
    send: post(`/approvals/${UNKNOWN_APPROVAL}`, { decision: "approve" }),
  },
  "POST /approvals/:id 403": {
    send: post(`/approvals/${UNKNOWN_APPROVAL}`, { decision: "approve" }),
  },
  "POST /approvals/:id 404": {
    options: APPROVERS,
    send: post(`/approvals/${UNKNOWN_APPROVAL}`, { decision: "approve" }, AS_APPROVER),
  },
  "POST /approvals/:id 413": {
    options: APPROVERS,
    send: post(`/approvals/${UNKNOWN_APPROVAL}`, TOO_LARGE, AS_APPROVER),
  },
  "POST /approvals/:id 415": {
    options: APPROVERS,
    send: post(`/approvals/${UNKNOWN_APPROVAL}`, undefined, {
      ...AS_APPROVER,
      "Content-Type": "text/plain",
    }),
  },
  "POST /sessions 201": { send: post("/sessions") },
  "POST /sessions 400": { send: post("/sessions", { workspace: "/etc" }) },
  "POST /sessions 401": { options: WITH_KEY, send: post("/sessions") },
  "POST /sessions 413": { send: post("/sessions", TOO_LARGE) },
  "POST /sessions 429": [
    { options: { env: { MAX_SESSIONS_PER_KEY: "1" } }, send: twice(post("/sessions")) },
    rateLimited("RATE_LIMIT_EXECUTE", post("/sessions")),
  ],
  "POST /sessions 503": {
    options: { executor: new ScriptedExecutor({ refuseSessions: true }) },
    send: post("/sessions"),
  },
  "GET /sessions 200": { send: inSession((app) => get("/sessions")(app)) },
  "GET /sessions 401": { options: WITH_KEY, send: get("/sessions") },
  "GET /sessions 429": rateLimited("RATE_LIMIT_EXECUTE", get("/sessions")),
  "GET /sessions/:id 200": { send: inSession((app, id) => get(`/sessions/${id}`)(app)) },
  "GET /sessions/:id 401": { options: WITH_KEY, send: get(`/sessions/${UNKNOWN_SESSION}`) },
  "GET /sessions/:id 404": { send: get(`/sessions/${UNKNOWN_SESSION}`) },
  "GET /sessions/:id 421": { send: get(`/sessions/${OTHER_INSTANCE_SESSION}`) },
  "GET /sessions/:id 429": rateLimited("RATE_LIMIT_EXECUTE", get(`/sessions/${UNKNOWN_SESSION}`)),
  "DELETE /sessions/:id 200": {
    send: inSession((app, id) => request("DELETE", `/sessions/${id}`)(app)),
  },
  "DELETE /sessions/:id 401": {
    options: WITH_KEY,
    send: request("DELETE", `/sessions/${UNKNOWN_SESSION}`),
  },
  "DELETE /sessions/:id 404": { send: request("DELETE", `/sessions/${UNKNOWN_SESSION}`) },
  "DELETE /sessions/:id 421": { send: request("DELETE", `/sessions/${OTHER_INSTANCE_SESSION}`) },
  "DELETE /sessions/:id 429": rateLimited(
    "RATE_LIMIT_EXECUTE",
    request("DELETE", `/sessions/${UNKNOWN_SESSION}`),
  ),
  "POST /mcp 200": [
    { send: mcp({ jsonrpc: "2.0", id: 1, method: "initialize", params: MCP_CLIENT }) },
    { send: mcp({ jsonrpc: "2.0", id: 2, method: "tools/call", params: RUN_ID }) },
  ],
  "POST /mcp 202": { send: mcp({ jsonrpc: "2.0", method: "notifications/initialized" }) },
  "POST /mcp 400": { send: mcp("not json") },
  "POST /mcp 401": {
    options: WITH_KEY,
    send: mcp({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  },
  "POST /mcp 406": {
    send: mcp({ jsonrpc: "2.0", id: 1, method: "tools/list" }, { Accept: "application/json" }),
  },
  "POST /mcp 413": { send: mcp({ jsonrpc: "2.0", id: 1, method: "ping", params: TOO_LARGE }) },
  "POST /mcp 415": {
    send: mcp({ jsonrpc: "2.0", id: 1, method: "tools/list" }, { "Content-Type": "text/plain" }),
  },
  "POST /mcp 429": rateLimited(
    "RATE_LIMIT_EXECUTE",
    mcp({ jsonrpc: "2.0", id: 1, method: "tools/call", params: RUN_ID }),
  ),
  "GET /mcp 405": { send: get("/mcp") },
  "DELETE /mcp 405": { send: request("DELETE", "/mcp") },
  "GET /audit 200": { options: WITH_KEY, send: get("/audit", { "X-API-Key": KEY }) },
  "GET /audit 400": { options: WITH_KEY, send: get("/audit?limit=0", { "X-API-Key": KEY }) },
  "GET /audit 401": { options: WITH_KEY, send: get("/audit") },
  "GET /audit 403": { send: get("/audit") },
  "GET /audit 503": {
    options: { ...WITH_KEY, audit: closedAudit },
    send: get("/audit", { "X-API-Key": KEY }),
  },
  "GET /metrics 200 text/plain": { options: WITH_KEY, send: get("/metrics", { "X-API-Key": KEY }) },
  "GET /metrics 401": { options: WITH_KEY, send: get("/metrics") },
  "GET /metrics 403": { send: get("/metrics") },
  "POST /explain 200": { send: post("/explain", { command: "sudo id" }) },
  "POST /explain 400": { send: post("/explain", { command: "id", extra: 1 }) },
  "POST /explain 401": { options: WITH_KEY, send: post("/explain", ID) },
  "POST /explain 413": { send: post("/explain", TOO_LARGE) },
  "POST /explain 415": { send: post("/explain", undefined, { "Content-Type": "text/plain" }) },
  "POST /explain 429": rateLimited("RATE_LIMIT_EXECUTE", post("/explain", ID)),
  "POST /selftest 200": {
    options: WITH_KEY,
    send: post("/selftest", undefined, { "X-API-Key": KEY }),
  },
  "POST /selftest 401": { options: WITH_KEY, send: post("/selftest") },
  "POST /selftest 403": { send: post("/selftest") },
  "POST /selftest 429": rateLimited(
    "RATE_LIMIT_SELFTEST",
    post("/selftest", undefined, { "X-API-Key": KEY }),
    { API_KEY: KEY },
  ),
  "POST /selftest 503": {
    options: { ...WITH_KEY, canaryError: "agentsh is not answering" },
    send: post("/selftest", undefined, { "X-API-Key": KEY }),
  },
};

/** `none`: no body (a redirect). */
type MediaType =
  | "application/json"
  | "text/event-stream"
  | "text/html"
  | "text/plain"
  | "text/javascript"
  | "text/css"
  | "none";
/** One answer the document promises: a route's status in one media type. */
interface Answer {
  key: string;
  route: RouteConfig;
  status: number;
  mediaType: MediaType;
  /** JSON: the zod schema the route declares (and its handler is typed with). */
  schema?: z.ZodType | undefined;
  /** An event stream: the names of its events. */
  events?: string[];
  redirect?: string;
}

/** Every answer the routes declare, but `default` (any other error, in the envelope). */
const documentedAnswers: Answer[] = routes.flatMap((route) =>
  Object.entries(route.responses).flatMap(([code, response]): Answer[] => {
    if (code === "default" || "$ref" in response) return [];
    const status = Number(code);
    const answer = (mediaType: MediaType, described: Partial<Answer> = {}): Answer => ({
      key: `${route.method.toUpperCase()} ${honoPath(route.path)} ${status}${["application/json", "none"].includes(mediaType) ? "" : ` ${mediaType}`}`,
      route,
      status,
      mediaType,
      ...described,
    });
    const content = Object.entries(response.content ?? {});
    if (content.length === 0) {
      const location = (response.headers as { Location?: { schema: { const: string } } })?.Location;
      return [answer("none", location ? { redirect: location.schema.const } : {})];
    }
    return content.map(([mediaType, media]) => {
      const { schema, "x-events": events } = media as { schema?: unknown; "x-events"?: object };
      return answer(mediaType as MediaType, {
        ...(schema instanceof z.ZodType ? { schema } : {}),
        ...(events ? { events: Object.keys(events) } : {}),
      });
    });
  }),
);

/** The document's own JSON Schema for an answer (or a stream event), as a validator. */
const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
function documentSchemaFor(
  route: RouteConfig,
  status: number,
  mediaType: MediaType = "application/json",
  event?: string,
) {
  const content =
    document.paths[route.path]?.[route.method]?.responses[String(status)]?.content?.[mediaType];
  const schema = event ? content?.["x-events"]?.[event] : content?.schema;
  if (!schema) {
    throw new Error(`no schema for ${route.method} ${route.path} ${status} ${event ?? ""}`);
  }
  const validate = ajv.compile({ ...schema, components: document.components });
  return (body: unknown) => (validate(body) ? [] : validate.errors);
}

/** A text/event-stream body as its events (`event:` name and parsed `data:`). */
function parseEvents(text: string): Array<{ event: string; data: unknown }> {
  return text
    .split(/\n\n+/)
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const lines = block.split("\n");
      const field = (name: string) =>
        lines
          .filter((line) => line.startsWith(`${name}:`))
          .map((line) => line.slice(name.length + 1).replace(/^ /, ""))
          .join("\n");
      return { event: field("event") || "message", data: JSON.parse(field("data")) };
    });
}

describe("GET /openapi.json", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    const result = await new Validator().validate(
      structuredClone(document) as unknown as Record<string, unknown>,
    );
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(document.openapi).toBe("3.1.0");
    const ids = routes.map((route) => route.operationId);
    expect(ids.every((id) => typeof id === "string")).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("documents every route the app registers, and no other", () => {
    const registered = new Set(
      app.routes
        .filter((route) => route.method !== "ALL")
        .map((route) => `${route.method} ${route.path}`),
    );
    const documented = routes.map(
      (route) => `${route.method.toUpperCase()} ${honoPath(route.path)}`,
    );
    expect(new Set(documented)).toEqual(registered);
    expect(documented).toHaveLength(registered.size);
    const served = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(served.sort()).toEqual(
      routes.map((route) => `${route.method.toUpperCase()} ${route.path}`).sort(),
    );
  });

  it("has a request for every documented answer, and none for an answer it does not list", () => {
    const documented = documentedAnswers.map(({ key }) => key);
    expect(documented.filter((key) => !(key in PROBES))).toEqual([]);
    expect(Object.keys(PROBES).filter((key) => !documented.includes(key))).toEqual([]);
  });

  it.each(documentedAnswers.map((documented) => [documented.key, documented] as const))(
    "%s: the requests get it, with the documented body",
    async (key, documented) => {
      const probes = [PROBES[key] ?? []].flat();
      const eventsSeen = new Set<string>();
      for (const probe of probes) {
        const res = await probe.send(buildTestApp(probe.options).app);
        expect(res.status).toBe(documented.status);
        if (documented.mediaType === "none") {
          expect(await res.text()).toBe("");
          if (documented.redirect) expect(res.headers.get("location")).toBe(documented.redirect);
          continue;
        }
        expect(res.headers.get("content-type")).toContain(documented.mediaType);
        if (documented.mediaType === "application/json") {
          const body = await res.json();
          expect(documented.schema, "a zod schema").toBeDefined();
          expect(documented.schema?.safeParse(body).error).toBeUndefined();
          expect(documentSchemaFor(documented.route, documented.status)(body)).toEqual([]);
        } else if (documented.mediaType === "text/event-stream") {
          const events = parseEvents(await res.text());
          expect(["result", "error"]).toContain(events.at(-1)?.event);
          for (const { event, data } of events) {
            expect(documented.events, `event ${event} is documented`).toContain(event);
            const validate = documentSchemaFor(
              documented.route,
              documented.status,
              documented.mediaType,
              event,
            );
            expect(validate(data), event).toEqual([]);
            eventsSeen.add(event);
          }
        } else {
          expect((await res.text()).length).toBeGreaterThan(0);
        }
      }
      if (documented.events) {
        const expected = documented.events.filter((event) => event !== "heartbeat");
        expect([...eventsSeen].sort()).toEqual(expected.sort());
      }
    },
  );

  it("describes every kind of command result /execute sends", async () => {
    const secret = { name: "api_key", display: "api_key", regex: /sk-[a-z0-9]{8}/g };
    const first = blockedResult();
    const second = blockedResult({ rule: "deny-shadow", kind: "file", target: "/etc/shadow" });
    const results: Record<string, Parameters<typeof okResult>[1]> = {
      blocked: { ...first, denials: [...first.denials, ...second.denials] },
      launcher: blockedResult({ layer: "launcher", rule: null }),
      failed: { outcome: "failed", exitCode: 2 },
      "timed-out": { outcome: "timed_out", exitCode: null, problem: "killed after 1000 ms" },
      truncated: { stdout: { text: "x", truncated: true, totalBytes: 9_000_000 } },
      leaky: { stdout: { text: "key sk-abcdefgh\n", truncated: false, totalBytes: 16 } },
    };
    const executor = new FakeExecutor().respond((request) =>
      okResult("", results[request.command] ?? {}),
    );
    const { app } = buildTestApp({ executor, redact: createRedactor([secret]) });
    const execute = documentedAnswers.find((answer) => answer.key === "POST /execute 200");
    if (!execute?.schema) throw new Error("POST /execute is not documented");
    const validate = documentSchemaFor(execute.route, 200);
    const fieldsSeen = new Set<string>();
    for (const command of Object.keys(results)) {
      const body = await readJson(await app.request("/execute", postJson({ command })));
      expect(execute.schema.safeParse(body).error, command).toBeUndefined();
      expect(validate(body), command).toEqual([]);
      for (const field of Object.keys(body.result)) fieldsSeen.add(field);
    }
    // Every field of the result appeared at least once above.
    const documented = document.components.schemas.CommandResult?.properties as object;
    expect(fieldsSeen).toEqual(new Set(Object.keys(documented)));
  });

  it("takes the request schemas from the routes' validators, with this instance's limits", async () => {
    const limited = buildTestApp({
      env: { MAX_COMMAND_TIMEOUT_MS: "5000", COMMAND_TIMEOUT_MS: "1000" },
    }).app;
    const doc = await readJson(await limited.request("/openapi.json"));
    expect(doc.components.schemas.ExecuteRequest.properties.timeoutMs.maximum).toBe(5000);
    expect(doc.paths["/explain"].post.requestBody.content["application/json"].schema).toEqual({
      $ref: "#/components/schemas/ExecuteRequest",
    });
    const auditLimit = doc.paths["/audit"].get.parameters.find(
      (parameter: { name: string }) => parameter.name === "limit",
    );
    expect(auditLimit.schema).toMatchObject({ type: "integer", minimum: 1, maximum: 200 });
  });

  it("carries the package's version and is listed by GET /", async () => {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
    expect(API_VERSION).toBe(pkg.version);
    const index = await readJson(await app.request("/"));
    expect(index.endpoints["GET /openapi.json"]).toEqual(expect.any(String));
    // Those that only refuse (GET and DELETE /mcp: 405) are in the document, not in the list.
    const serving = routes.filter((route) =>
      Object.keys(route.responses).some((status) => /^[23]/.test(status)),
    );
    expect(serving.length).toBe(routes.length - 2);
    expect(Object.entries(index.endpoints)).toEqual(
      serving.map((route) => [
        `${route.method.toUpperCase()} ${honoPath(route.path)}`,
        route.summary,
      ]),
    );
  });
});
