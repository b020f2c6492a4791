import { readFileSync } from "node:fs";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { AppEnv } from "../../src/app-env.js";
import {
  ApiError,
  createErrorHandler,
  ERROR_CODES,
  type ErrorCode,
  refusalError,
} from "../../src/http/errors.js";
import type { Logger } from "../../src/logger.js";
import type { Refusal } from "../../src/run-command.js";

const logged: string[] = [];
const logger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error: (message) => void logged.push(message),
};

/** A small app of its own: one route per way a handler can fail. */
function appThrowing(error: Error) {
  return new Hono<AppEnv>()
    .use(async (c, next) => {
      c.set("requestId", "req-1");
      await next();
    })
    .get("/", () => {
      throw error;
    })
    .onError(createErrorHandler(logger));
}

describe("the error envelope", () => {
  it("an ApiError becomes {error, requestId} with the status its code goes with, and its headers", async () => {
    const res = await appThrowing(
      new ApiError({ code: "busy", message: "full", hint: "retry" }, { "Retry-After": "2" }),
    ).request("/");
    expect(res.status).toBe(503);
    expect(res.headers.get("Retry-After")).toBe("2");
    expect(await res.json()).toEqual({
      error: { code: "busy", message: "full", hint: "retry" },
      requestId: "req-1",
    });
  });

  it("anything else is a 500 internal_error without the error's text or stack", async () => {
    const res = await appThrowing(new Error("secret detail at /srv/app.ts:12")).request("/");
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain("secret detail");
    expect(JSON.parse(text).error.code).toBe("internal_error");
    expect(logged.at(-1)).toBe("unhandled error");
  });

  it("every runner refusal maps to a documented code and status", () => {
    const refusals: Array<[Refusal["outcome"], ErrorCode, number]> = [
      ["degraded", "enforcement_degraded", 503],
      ["busy", "busy", 503],
      ["canceled", "canceled", 503],
      ["unavailable", "agentsh_unavailable", 503],
      ["unenforced", "enforcement_failed", 500],
    ];
    for (const [outcome, code, status] of refusals) {
      const error = refusalError({ outcome, detail: "x" });
      expect([error.body.code, error.status]).toEqual([code, status]);
    }
  });
});

describe("the error table of docs/api.md", () => {
  it("lists exactly the codes of src/http/errors.ts, each with its status", () => {
    const doc = readFileSync("docs/api.md", "utf8");
    const rows = [...doc.matchAll(/^\| (\d{3}) \| `([a-z_]+)` \|/gm)].map(
      ([, status, code]) => [code, Number(status)] as const,
    );
    expect(Object.fromEntries(rows)).toEqual(ERROR_CODES);
    expect(rows).toHaveLength(Object.keys(ERROR_CODES).length);
  });
});
