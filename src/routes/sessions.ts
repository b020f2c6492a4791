import { Hono, type MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env.js";
import { ApiError } from "../http/errors.js";
import type { SessionRegistry } from "../sessions/contract.js";

/**
 * `/sessions`: governed sessions owned by the calling API key. `POST /execute` with a
 * `sessionId` runs in one; its working directory and exported variables carry over.
 */
export function createSessionRoutes(options: {
  sessions: SessionRegistry;
  guard: MiddlewareHandler<AppEnv>;
}) {
  const { sessions } = options;
  return new Hono<AppEnv>()
    .use(options.guard)
    .post("/", async (c) => {
      // No options yet: an empty body or an empty JSON object (anything else is refused, not
      // ignored, so a client that expects an option to work learns that it does not).
      if (!isEmptyBody(await c.req.text())) {
        throw new ApiError({
          code: "validation_failed",
          message: "POST /sessions takes no fields.",
          hint: "Send an empty body or {}.",
        });
      }
      const session = await sessions.create(c.get("owner"));
      return c.json({ session, requestId: c.get("requestId") }, 201);
    })
    .get("/", (c) =>
      c.json({ sessions: sessions.list(c.get("owner")), requestId: c.get("requestId") }),
    )
    .get("/:id", (c) =>
      c.json({
        session: sessions.get(c.get("owner"), c.req.param("id")),
        requestId: c.get("requestId"),
      }),
    )
    .delete("/:id", async (c) => {
      const session = await sessions.delete(c.get("owner"), c.req.param("id"));
      return c.json({ session, deleted: true, requestId: c.get("requestId") });
    });
}

function isEmptyBody(text: string): boolean {
  if (text.trim() === "") return true;
  try {
    const body: unknown = JSON.parse(text);
    return (
      typeof body === "object" &&
      body !== null &&
      !Array.isArray(body) &&
      Object.keys(body).length === 0
    );
  } catch {
    return false;
  }
}
