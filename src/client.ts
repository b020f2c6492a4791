import { EventSourceParserStream } from "eventsource-parser/stream";
import {
  type ClientResponse,
  hc,
  type InferRequestType,
  type InferResponseType,
} from "hono/client";
import type { StatusCode, SuccessStatusCode } from "hono/utils/http-status";
import type { AppType } from "./app.js";
import type { ErrorEnvelope } from "./openapi/response-schemas.js";
import type { ExecuteStreamEvent } from "./routes/execute.js";

/**
 * `governed-executor/client`: a typed client of the service on Hono's RPC client (`hono/client`).
 * Every request and answer type comes from the route declarations (`AppType`), so a change to a
 * route that breaks a caller fails the caller's type check. `api` is the whole API as `hc` makes
 * it; the methods are the common calls: they answer the 2xx body, or throw
 * `GovernedExecutorError` carrying the service's error envelope. Only types are imported from the
 * service: at run time this module needs `hono/client` and `eventsource-parser`.
 */

export type Api = ReturnType<typeof hc<AppType>>;

/** The JSON of a call's answer with status `S` (a stream is not JSON: left out). */
type Answer<Call extends (...args: never[]) => unknown, S extends StatusCode = 200> = Exclude<
  InferResponseType<Call, S>,
  Response
>;

export type ExecuteRequest = InferRequestType<Api["execute"]["$post"]>["json"];
export type ExecuteAnswer = Answer<Api["execute"]["$post"]>;
export type Explanation = Answer<Api["explain"]["$post"]>;
export type SessionAnswer = Answer<Api["sessions"]["$post"], 201>;
export type SessionList = Answer<Api["sessions"]["$get"]>;
export type SessionDeleted = Answer<Api["sessions"][":id"]["$delete"]>;
export type HealthReport = Answer<Api["health"]["$get"], 200 | 503>;
export type AuditQuery = InferRequestType<Api["audit"]["$get"]>["query"];
export type AuditPage = Answer<Api["audit"]["$get"]>;
export type { ErrorEnvelope, ExecuteStreamEvent };

export interface ClientOptions {
  /** The API key, sent as X-API-Key. */
  apiKey?: string;
  /** Used instead of the global fetch (e.g. an app's `request`, in tests). */
  fetch?: typeof fetch;
  /** Sent with every request. */
  headers?: Record<string, string>;
}

/** Per call: e.g. a signal that ends the request (and, for a command, stops it). */
export type CallOptions = Pick<RequestInit, "signal">;

/** An answer other than 2xx. */
export class GovernedExecutorError extends Error {
  override readonly name = "GovernedExecutorError";
  constructor(
    readonly status: number,
    /** The service's error envelope; undefined when the answer is not one (e.g. a proxy's page). */
    readonly envelope: ErrorEnvelope | undefined,
    /** Seconds to wait before retrying (Retry-After), when the service said. */
    readonly retryAfter: number | undefined,
  ) {
    super(
      envelope
        ? `${envelope.error.code}: ${envelope.error.message}${envelope.error.hint ? ` (${envelope.error.hint})` : ""}`
        : `HTTP ${status}`,
    );
  }

  /** The envelope's error code, e.g. `session_busy`. */
  get code(): ErrorEnvelope["error"]["code"] | undefined {
    return this.envelope?.error.code;
  }
}

export type Client = ReturnType<typeof createClient>;

export function createClient(baseUrl: string, options: ClientOptions = {}) {
  const api = hc<AppType>(baseUrl, {
    ...(options.fetch ? { fetch: options.fetch } : {}),
    headers: { ...options.headers, ...(options.apiKey ? { "X-API-Key": options.apiKey } : {}) },
  });
  const init = (call: CallOptions) => ({ init: call.signal ? { signal: call.signal } : {} });
  return {
    api,
    /** `POST /execute`: runs a command (a blocked one is an answer: `result.blocked`). */
    execute: async (body: ExecuteRequest, call: CallOptions = {}) =>
      answer(await api.execute.$post({ json: body }, init(call))),
    /** `POST /execute` with `Accept: text/event-stream`: the events as they arrive. */
    stream: (body: ExecuteRequest, call: CallOptions = {}) => streamExecute(api, body, call),
    /** `POST /explain`: the policy's verdict, nothing run. */
    explain: async (body: ExecuteRequest, call: CallOptions = {}) =>
      answer(await api.explain.$post({ json: body }, init(call))),
    sessions: {
      create: async (call: CallOptions = {}) => answer(await api.sessions.$post({}, init(call))),
      list: async (call: CallOptions = {}) => answer(await api.sessions.$get({}, init(call))),
      get: async (id: string, call: CallOptions = {}) =>
        answer(await api.sessions[":id"].$get({ param: { id } }, init(call))),
      delete: async (id: string, call: CallOptions = {}) =>
        answer(await api.sessions[":id"].$delete({ param: { id } }, init(call))),
    },
    /** `GET /health`: the report, also when it is 503 (commands refused now: `reason`). */
    health: async (call: CallOptions = {}): Promise<HealthReport> => {
      const res = await api.health.$get({}, init(call));
      if (res.status === 200 || res.status === 503) return (await res.json()) as HealthReport;
      throw await failure(res);
    },
    /** `GET /audit`: one page, newest first (needs the API key). */
    audit: async (query: AuditQuery = {}, call: CallOptions = {}) =>
      answer(await api.audit.$get({ query }, init(call))),
  };
}

/** The JSON of a 2xx answer (typed by the route), or the answer as a GovernedExecutorError. */
async function answer<R extends ClientResponse<unknown, number, string>>(
  res: R,
): Promise<SuccessBody<R>> {
  if (!res.ok) throw await failure(res);
  return (await res.json()) as SuccessBody<R>;
}
/** Of each declared answer, the JSON of those whose statuses are all 2xx (not `default`). */
type SuccessBody<R> =
  R extends ClientResponse<infer T, infer S, "json">
    ? [S] extends [SuccessStatusCode]
      ? Exclude<T, Response>
      : never
    : never;

async function failure(res: Response): Promise<GovernedExecutorError> {
  const retryAfter = Number(res.headers.get("retry-after") ?? Number.NaN);
  let envelope: ErrorEnvelope | undefined;
  try {
    const body = (await res.json()) as Partial<ErrorEnvelope>;
    if (typeof body.error?.code === "string") envelope = body as ErrorEnvelope;
  } catch {
    // Not JSON: not the service's envelope.
  }
  return new GovernedExecutorError(
    res.status,
    envelope,
    Number.isFinite(retryAfter) ? retryAfter : undefined,
  );
}

const STREAM_EVENTS = new Set<string>([
  "started",
  "stdout",
  "stderr",
  "heartbeat",
  "approval_required",
  "result",
  "error",
] satisfies ExecuteStreamEvent["event"][]);

/**
 * The events of a streamed command, in order; the last is `result` or `error` (a refusal after
 * the stream opened). A refusal before it opened (auth, validation, busy) is thrown.
 */
async function* streamExecute(
  api: Api,
  body: ExecuteRequest,
  call: CallOptions,
): AsyncGenerator<ExecuteStreamEvent, void, undefined> {
  const res = await api.execute.$post(
    { json: body },
    { headers: { Accept: "text/event-stream" }, init: call.signal ? { signal: call.signal } : {} },
  );
  if (!res.ok) throw await failure(res);
  if (!res.body || !res.headers.get("content-type")?.startsWith("text/event-stream")) {
    throw new Error(`expected an event stream, got ${res.headers.get("content-type")}`);
  }
  const events = res.body
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream());
  for await (const { event, data } of events) {
    if (event === undefined || !STREAM_EVENTS.has(event)) continue;
    yield { event, data: JSON.parse(data) } as ExecuteStreamEvent;
  }
}
