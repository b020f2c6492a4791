import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { http, streamExecute } from "./harness.js";

/**
 * The OpenAPI document as the real stack serves it, checked against the real stack's answers:
 * what agentsh actually decides must fit the schemas the document publishes.
 */

interface Doc {
  paths: Record<
    string,
    Record<
      string,
      {
        responses: Record<
          string,
          { content?: Record<string, { schema?: object; "x-events"?: Record<string, object> }> }
        >;
      }
    >
  >;
  components: object;
}

const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });

async function served(): Promise<Doc> {
  const res = await http("/openapi.json");
  expect(res.status).toBe(200);
  return (await res.json()) as Doc;
}

function validator(doc: Doc, schema: object | undefined) {
  expect(schema).toBeDefined();
  const validate = ajv.compile({ ...schema, components: doc.components });
  return (body: unknown) => (validate(body) ? null : validate.errors);
}

describe("the served OpenAPI document against the real stack", () => {
  it("documents every GET route without parameters with the status it answers", async () => {
    const doc = await served();
    const plain = Object.entries(doc.paths).filter(
      ([path, ops]) => !path.includes("{") && ops.get !== undefined,
    );
    expect(plain.length).toBeGreaterThan(4);
    for (const [path, ops] of plain) {
      if (path === "/console") continue; // HTML: the browser test covers it
      const res = await http(path, { headers: { Accept: "application/json" } });
      expect(Object.keys(ops.get?.responses ?? {}), `${path} answered ${res.status}`).toContain(
        String(res.status),
      );
    }
  });

  it("fits real /execute answers (allowed and blocked, buffered and streamed) to its schemas", async () => {
    const doc = await served();
    const execute = doc.paths["/execute"]?.post?.responses["200"]?.content;
    const body = validator(doc, execute?.["application/json"]?.schema);
    for (const command of ["echo hello", "sudo id", "cat /etc/shadow"]) {
      const res = await http("/execute", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ command }),
      });
      expect(res.status).toBe(200);
      expect(body(await res.json()), command).toBeNull();
    }
    const events = execute?.["text/event-stream"]?.["x-events"] ?? {};
    const { events: streamed } = await streamExecute({ command: "echo streamed; sudo id" });
    expect(streamed.map((e) => e.event)).toContain("result");
    for (const event of streamed) {
      expect(validator(doc, events[event.event])(event.data), event.event).toBeNull();
    }
  });
});
