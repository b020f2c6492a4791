import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env.js";
import { ApiError } from "./errors.js";

/**
 * Admits only bodies that mean exactly one thing before the validator sees them: a JSON media
 * type (the same test Hono's JSON validator applies, so the two never disagree), valid UTF-8
 * (a lenient decoder would silently turn bad bytes into U+FFFD and run a different command),
 * and no duplicate object keys (a proxy or log reading the first `command` would see another
 * request than the one we run, since JSON.parse keeps the last).
 */
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

export const strictJsonBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  const contentType = c.req.header("content-type") ?? "";
  const mediaType = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  if (!JSON_MEDIA_TYPE.test(mediaType)) {
    throw new ApiError({
      code: "unsupported_media_type",
      message: `Expected a JSON body, got Content-Type '${truncate(contentType) || "(none)"}'.`,
      hint: "Send the header Content-Type: application/json.",
    });
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(await c.req.arrayBuffer());
  } catch {
    throw new ApiError({
      code: "invalid_encoding",
      message: "The request body is not valid UTF-8.",
      hint: "Encode the JSON body as UTF-8.",
    });
  }
  const duplicate = duplicateKey(text);
  if (duplicate !== null) {
    throw new ApiError({
      code: "duplicate_key",
      message: `The JSON body has the key '${truncate(duplicate)}' more than once.`,
      hint: "Send each field once.",
    });
  }
  await next();
};

/**
 * The first key that appears twice in one JSON object (at any depth), or null. Malformed JSON
 * yields null here and is reported by the validator.
 */
export function duplicateKey(text: string): string | null {
  try {
    JSON.parse(text);
  } catch {
    return null;
  }
  const objects: Array<Set<string> | null> = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "{") objects.push(new Set());
    else if (ch === "[") objects.push(null);
    else if (ch === "}" || ch === "]") objects.pop();
    else if (ch === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      const raw = text.slice(i, end + 1);
      i = end;
      let next = end + 1;
      while (/\s/.test(text[next] ?? "")) next++;
      const current = objects.at(-1);
      if (text[next] === ":" && current) {
        // Decode escapes, so "comm\u0061nd" counts as "command".
        const key = JSON.parse(raw) as string;
        if (current.has(key)) return key;
        current.add(key);
      }
    }
  }
  return null;
}

function truncate(value: string, max = 100): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}
