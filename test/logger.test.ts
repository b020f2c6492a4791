import { describe, expect, it } from "vitest";
import { createJsonLogger } from "../src/logger.js";

describe("createJsonLogger", () => {
  it("writes time, level, source, message first, then the fields; below the level nothing", () => {
    const lines: string[] = [];
    const logger = createJsonLogger("info", (line) => lines.push(line));
    logger.debug("hidden");
    logger.info("request", { status: 200, path: "/health" });
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0] ?? "") as Record<string, unknown>;
    expect(Object.keys(record)).toEqual(["time", "level", "source", "message", "status", "path"]);
    expect(record).toMatchObject({ level: "info", source: "service", message: "request" });
    expect(new Date(record.time as string).toISOString()).toBe(record.time);
  });

  it("never lets a field replace a schema field: it moves to `fields`", () => {
    const lines: string[] = [];
    createJsonLogger("debug", (line) => lines.push(line), "agentsh").warn("m", {
      time: "yesterday",
      level: "error",
      message: "other",
      ok: true,
    });
    expect(JSON.parse(lines[0] ?? "")).toMatchObject({
      level: "warn",
      source: "agentsh",
      message: "m",
      ok: true,
      fields: { time: "yesterday", level: "error", message: "other" },
    });
  });
});
