import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { createRedactor } from "../../src/bundle/redactor.js";
import { API_VERSION, byStatus, type OpenApiDocument } from "../../src/openapi/document.js";
import {
  describeOperations,
  errorCodesOf,
  type OperationDoc,
} from "../../src/openapi/operations.js";
import { errorEnvelopeSchema } from "../../src/openapi/response-schemas.js";
import { blockedResult, FakeExecutor, notRun, okResult } from "../support/fake-executor.js";
import { buildTestApp, postJson, readJson, type TestAppOptions } from "../support/test-app.js";

const KEY = "o".repeat(24);
const WITH_KEY = { env: { API_KEY: KEY } };

type App = ReturnType<typeof buildTestApp>["app"];
/** One request that must get one documented status. */
interface Probe {
  options?: TestAppOptions;
  send: (app: App) => Response | Promise<Response>;
}

const get =
  (path: string, headers: Record<string, string> = {}) =>
  (app: App) =>
    app.request(path, { headers });
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
const unsandboxed = () => new FakeExecutor().respond(() => okResult("", { sandboxed: false }));
const degraded: TestAppOptions = {
  enforcement: { mode: "degraded", checks: { "canary: sudo denied": false }, problems: ["x"] },
};
const ID = { command: "id" };

/**
 * For every status the document lists for an operation ("METHOD /path status"), a request
 * that gets it. A documented status without a request here fails, and so does a request
 * whose answer has another status or a body its documented schema rejects.
 */
const PROBES: Record<string, Probe> = {
  "GET / 200": { send: get("/") },
  "GET /openapi.json 200": { send: get("/openapi.json") },
  "GET /health 200": { send: get("/health") },
  "GET /health 503": { options: { agentshProblem: "connection refused" }, send: get("/health") },
  "GET /demo 200": { send: get("/demo") },
  "GET /demo 429": rateLimited("RATE_LIMIT_DEMO", get("/demo")),
  "GET /demo/:name 200": { send: get("/demo/allowed") },
  "GET /demo/:name 404": { send: get("/demo/no-such-demo") },
  "GET /demo/:name 429": rateLimited("RATE_LIMIT_DEMO", get("/demo/allowed")),
  "GET /demo/:name 500": { options: { executor: unsandboxed() }, send: get("/demo/allowed") },
  "GET /demo/:name 503": { options: degraded, send: get("/demo/allowed") },
  "POST /execute 200": { send: post("/execute", ID) },
  "POST /execute 400": { send: post("/execute", { command: "" }) },
  "POST /execute 401": { options: WITH_KEY, send: post("/execute", ID) },
  "POST /execute 413": { send: post("/execute", { command: "x".repeat(20_000) }) },
  "POST /execute 415": { send: post("/execute", undefined, { "Content-Type": "text/plain" }) },
  "POST /execute 429": rateLimited("RATE_LIMIT_EXECUTE", post("/execute", ID)),
  "POST /execute 500": { options: { executor: unsandboxed() }, send: post("/execute", ID) },
  "POST /execute 503": {
    options: { executor: new FakeExecutor().respond(() => notRun("busy")) },
    send: post("/execute", ID),
  },
  "GET /audit 200": { options: WITH_KEY, send: get("/audit", { "X-API-Key": KEY }) },
  "GET /audit 400": { options: WITH_KEY, send: get("/audit?limit=0", { "X-API-Key": KEY }) },
  "GET /audit 401": { options: WITH_KEY, send: get("/audit") },
  "GET /audit 403": { send: get("/audit") },
  "POST /explain 200": { send: post("/explain", { command: "sudo id" }) },
  "POST /explain 400": { send: post("/explain", { command: "id", extra: 1 }) },
  "POST /explain 401": { options: WITH_KEY, send: post("/explain", ID) },
  "POST /explain 413": { send: post("/explain", { command: "x".repeat(20_000) }) },
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

const { app, config } = buildTestApp();
const operations = describeOperations(config.limits);
const document = (await readJson(await app.request("/openapi.json"))) as OpenApiDocument;

/** Every (operation, status) the document promises, with the zod schema of that answer. */
const documentedAnswers = operations.flatMap((operation) => [
  ...Object.entries(operation.responses).map(([status, response]) => ({
    operation,
    status: Number(status),
    schema: response.json,
  })),
  ...[...byStatus(errorCodesOf(operation))].map(([status, codes]) => ({
    operation,
    status,
    schema: errorEnvelopeSchema(codes),
  })),
]);
const probeKey = (operation: OperationDoc, status: number) =>
  `${operation.method} ${operation.path} ${status}`;

/** The document's own JSON Schema for an answer, checked with a JSON Schema validator. */
const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
function documentSchemaFor(operation: OperationDoc, status: number) {
  const path = operation.path.replace(/:(\w+)/g, "{$1}");
  const answer = document.paths[path]?.[operation.method.toLowerCase()]?.responses as
    | Record<string, { content: Record<string, { schema: object }> }>
    | undefined;
  const schema = answer?.[String(status)]?.content["application/json"]?.schema;
  if (!schema) throw new Error(`no JSON schema for ${probeKey(operation, status)}`);
  return ajv.compile({ ...schema, components: document.components });
}

describe("GET /openapi.json", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    const result = await new Validator().validate(structuredClone(document));
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(document.openapi).toBe("3.1.0");
    const ids = operations.map((operation) => operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("documents every route the app registers, and no other", () => {
    const registered = new Set(
      app.routes
        .filter((route) => route.method !== "ALL")
        .map((route) => `${route.method} ${route.path}`),
    );
    const documented = operations.map((operation) => `${operation.method} ${operation.path}`);
    expect(new Set(documented)).toEqual(registered);
    expect(documented).toHaveLength(registered.size);
    const served = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(served.sort()).toEqual(
      documented.map((entry) => entry.replace(/:(\w+)/g, "{$1}")).sort(),
    );
  });

  it("has a request for every documented status, and none for a status it does not list", () => {
    const documented = documentedAnswers.map(({ operation, status }) =>
      probeKey(operation, status),
    );
    expect(documented.filter((key) => !(key in PROBES))).toEqual([]);
    expect(Object.keys(PROBES).filter((key) => !documented.includes(key))).toEqual([]);
  });

  it.each(
    documentedAnswers.map((answer) => [probeKey(answer.operation, answer.status), answer] as const),
  )("%s: the request gets it, with the documented body", async (key, answer) => {
    const probe = PROBES[key];
    if (!probe) return; // reported by the test above
    const res = await probe.send(buildTestApp(probe.options).app);
    expect(res.status).toBe(answer.status);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = await res.json();
    expect(answer.schema?.safeParse(body).error).toBeUndefined();
    const validate = documentSchemaFor(answer.operation, answer.status);
    expect(validate(body) ? [] : validate.errors).toEqual([]);
  });

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
    const execute = operations.find((operation) => operation.operationId === "execute");
    if (!execute) throw new Error("POST /execute is not documented");
    const validate = documentSchemaFor(execute, 200);
    const fieldsSeen = new Set<string>();
    for (const command of Object.keys(results)) {
      const body = await readJson(await app.request("/execute", postJson({ command })));
      expect(execute.responses[200]?.json?.safeParse(body).error, command).toBeUndefined();
      expect(validate(body) ? [] : validate.errors, command).toEqual([]);
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
    expect(Object.keys(index.endpoints)).toHaveLength(operations.length);
  });
});
