import { z } from "zod";
import { ERROR_CODES, type ErrorCode } from "../http/errors.js";
import { errorCodesOf, type MediaResponse, type OperationDoc } from "./operations.js";
import { RESPONSE_COMPONENTS } from "./response-schemas.js";

/**
 * Builds the OpenAPI 3.1 document from the operation table with zod's own JSON Schema output
 * (OpenAPI 3.1 schemas are JSON Schema 2020-12). Request schemas are converted as input (what a
 * client sends: defaults optional, coercions and transforms as their input), responses as output.
 */

type JsonSchema = Record<string, unknown>;
export type OpenApiDocument = {
  openapi: "3.1.0";
  info: { title: string; version: string; description: string };
  tags: Array<{ name: string; description: string }>;
  paths: Record<string, Record<string, JsonSchema>>;
  components: { schemas: Record<string, JsonSchema>; securitySchemes: Record<string, JsonSchema> };
};

/** The service's version (package.json), also the document's. */
export const API_VERSION = "0.1.0";

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });

/** OpenAPI wants `{name}` where Hono has `:name`. */
export const openApiPath = (honoPath: string) => honoPath.replace(/:(\w+)/g, "{$1}");

export function buildOpenApiDocument(operations: readonly OperationDoc[]): OpenApiDocument {
  const requests = new NamedSchemas("input");
  const responses = new NamedSchemas("output");
  for (const [id, schema] of Object.entries(RESPONSE_COMPONENTS)) responses.name(schema, id);

  const paths: OpenApiDocument["paths"] = {};
  for (const operation of operations) {
    const name = capitalize(operation.operationId);
    const operationObject: JsonSchema = {
      operationId: operation.operationId,
      tags: [operation.tag],
      summary: operation.summary,
      ...(operation.description ? { description: operation.description } : {}),
      security: securityOf(operation),
    };
    const parameters = [
      ...Object.entries(operation.pathParams ?? {}).map(([param, schema]) => ({
        name: param,
        in: "path",
        required: true,
        schema: inline(schema, "input"),
      })),
      ...(operation.query ? queryParameters(operation.query) : []),
    ];
    if (parameters.length > 0) operationObject.parameters = parameters;
    const body = operation.jsonBody ?? operation.otherJsonBody;
    if (body) {
      operationObject.requestBody = {
        required: true,
        content: { "application/json": { schema: ref(requests.name(body, `${name}Request`)) } },
      };
    }
    const answers: Record<string, JsonSchema> = {};
    for (const [status, response] of Object.entries(operation.responses)) {
      const id = `${name}Response${status === "200" ? "" : status}`;
      answers[status] = mediaResponse(response, (schema, event = "") =>
        ref(responses.name(schema, `${id}${capitalize(event)}`)),
      );
    }
    for (const [status, codes] of byStatus(errorCodesOf(operation))) {
      if (String(status) in answers) {
        throw new Error(
          `OpenAPI: ${operation.operationId} lists ${status} as an answer and an error`,
        );
      }
      answers[String(status)] = {
        description: codes.map((code) => `\`${code}\``).join(", "),
        content: {
          "application/json": {
            schema: {
              allOf: [
                ref("ErrorEnvelope"),
                { properties: { error: { properties: { code: { enum: codes } } } } },
              ],
            },
          },
        },
      };
    }
    answers.default = {
      description:
        "Any other error in the envelope, e.g. 500 `internal_error`, 405 `method_not_allowed`.",
      content: { "application/json": { schema: ref("ErrorEnvelope") } },
    };
    operationObject.responses = answers;
    const path = openApiPath(operation.path);
    paths[path] = { ...paths[path], [operation.method.toLowerCase()]: operationObject };
  }

  return {
    openapi: "3.1.0",
    info: {
      title: "governed-executor",
      version: API_VERSION,
      description:
        "Runs AI agents' shell commands through agentsh policy enforcement. Every error is the JSON envelope `ErrorEnvelope`; each code goes with one status. Generated from the zod schemas the routes validate with.",
    },
    tags: [
      { name: "commands", description: "Run or explain a command." },
      { name: "sessions", description: "Working directory and variables kept between commands." },
      { name: "demo", description: "Scenario tables that show what is allowed and blocked." },
      { name: "service", description: "The service's own state." },
      { name: "audit", description: "What was run and decided." },
    ],
    paths,
    components: {
      schemas: mergeDistinct(requests.emit(), responses.emit()),
      securitySchemes: {
        apiKeyHeader: { type: "apiKey", in: "header", name: "X-API-Key" },
        bearer: { type: "http", scheme: "bearer", description: "The API key as a bearer token." },
        apiKeyQuery: {
          type: "apiKey",
          in: "query",
          name: "api_key",
          description: "v0 compatibility; prefer the header.",
        },
      },
    },
  };
}

/** Error codes grouped by the status each goes with, in status order. */
export function byStatus(codes: readonly ErrorCode[]): Map<number, ErrorCode[]> {
  const groups = new Map<number, ErrorCode[]>();
  for (const code of [...codes].sort((a, b) => ERROR_CODES[a] - ERROR_CODES[b])) {
    const status = ERROR_CODES[code];
    groups.set(status, [...(groups.get(status) ?? []), code]);
  }
  return groups;
}

function securityOf(operation: OperationDoc) {
  if (operation.access === "open") return [];
  const key = [{ apiKeyHeader: [] }, { bearer: [] }, { apiKeyQuery: [] }];
  // Without API_KEY the service runs open (v0 behaviour); `{}` says no credentials also work.
  return operation.access === "apiKey" ? [...key, {}] : key;
}

function mediaResponse(
  response: MediaResponse,
  schemaOf: (schema: z.ZodType, event?: string) => JsonSchema,
) {
  const content: Record<string, JsonSchema> = {};
  if (response.json) content["application/json"] = { schema: schemaOf(response.json) };
  if (response.html) content["text/html"] = { schema: { type: "string" } };
  if (response.text) {
    content["text/plain"] = { schema: { type: "string", description: response.text } };
  }
  if (response.events) {
    content["text/event-stream"] = {
      schema: {
        type: "string",
        description: Object.entries(response.events)
          .map(([event, { description }]) => `\`event: ${event}\`: ${description}`)
          .join("\n"),
      },
      // Not part of OpenAPI 3.1 (3.2 adds itemSchema): each event's `data`, as JSON Schema.
      "x-events": Object.fromEntries(
        Object.entries(response.events).map(([event, { data }]) => [event, schemaOf(data, event)]),
      ),
    };
  }
  if (response.redirect) {
    const location = { type: "string", const: response.redirect };
    return { description: response.description, headers: { Location: { schema: location } } };
  }
  return Object.keys(content).length > 0
    ? { description: response.description, content }
    : { description: response.description };
}

/** A query validator's fields as query parameters, each with its own schema. */
function queryParameters(query: z.ZodObject) {
  const schema = inline(query, "input") as {
    properties?: Record<string, JsonSchema>;
    required?: string[];
  };
  return Object.entries(schema.properties ?? {}).map(([name, { description, ...property }]) => ({
    name,
    in: "query",
    required: schema.required?.includes(name) ?? false,
    ...(description ? { description } : {}),
    schema: property,
  }));
}

function inline(schema: z.ZodType, io: "input" | "output"): JsonSchema {
  const { $schema: _, ...json } = z.toJSONSchema(schema, { io, override: tidy });
  return json;
}

/**
 * Drops what zod adds that says nothing to a reader: the date-time format spelled out as a long
 * regex as well, and JavaScript's safe-integer range on every `.int()`.
 */
function tidy(ctx: { jsonSchema: { format?: string; pattern?: string } & JsonSchema }) {
  const json = ctx.jsonSchema;
  if (json.format === "date-time") delete json.pattern;
  if (json.minimum === Number.MIN_SAFE_INTEGER) delete json.minimum;
  if (json.maximum === Number.MAX_SAFE_INTEGER) delete json.maximum;
}

/**
 * Schemas that become `components.schemas` entries, converted together so that one that is
 * part of another is a `$ref` to it.
 */
class NamedSchemas {
  private readonly registry = z.registry<{ id: string }>();
  private readonly ids = new Map<z.ZodType, string>();
  constructor(private readonly io: "input" | "output") {}

  /** The schema's component name: the one it already has, else `id`. */
  name(schema: z.ZodType, id: string): string {
    const existing = this.ids.get(schema);
    if (existing) return existing;
    this.ids.set(schema, id);
    this.registry.add(schema, { id });
    return id;
  }

  emit(): Record<string, JsonSchema> {
    const { schemas } = z.toJSONSchema(this.registry, {
      io: this.io,
      uri: (id) => `#/components/schemas/${id}`,
      override: tidy,
    });
    return Object.fromEntries(
      Object.entries(schemas).map(([id, { $schema: _s, $id: _i, ...json }]) => [id, json]),
    );
  }
}

function mergeDistinct(a: Record<string, JsonSchema>, b: Record<string, JsonSchema>) {
  const clash = Object.keys(a).find((id) => id in b);
  if (clash) throw new Error(`OpenAPI: two schemas are named ${clash}`);
  return { ...a, ...b };
}

function capitalize(value: string): string {
  return value.charAt(0).toUpperCase() + value.slice(1);
}
