import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env.js";
import { ApiError } from "../http/errors.js";
import {
  sessionDeletedSchema,
  sessionListSchema,
  sessionResponseSchema,
} from "../openapi/response-schemas.js";
import {
  API_KEY_ERRORS,
  API_KEY_SECURITY,
  errorAnswers,
  jsonAnswer,
  RATE_LIMIT_ERRORS,
  SESSION_LOOKUP,
} from "../openapi/route-docs.js";
import type { SessionRegistry } from "../sessions/contract.js";
import { SESSION_ID_PATTERN } from "../sessions/session-registry.js";
import { sessionTenant } from "../tenants/guard.js";

/** Every session route: behind the API key (the sub-app's guard) and the sessions rate limit. */
const common = { tags: ["sessions"], security: API_KEY_SECURITY };

/**
 * The `{id}` path parameter. Any text reaches the route (the registry answers 404 for an id it
 * does not hold, well-formed or not); the pattern documents what an id looks like.
 */
const sessionIdParam = z.object({
  id: z
    .string()
    .openapi({ pattern: SESSION_ID_PATTERN.source, description: "From POST /sessions." }),
});

const createSession = createRoute({
  ...common,
  method: "post",
  path: "/",
  operationId: "createSession",
  summary: "create a session (its cwd and exported variables carry over)",
  description:
    "A governed session owned by the calling API key, with its own workspace directory. The body is empty or {} (no options yet). Idle sessions expire.",
  responses: {
    201: jsonAnswer("The new session.", sessionResponseSchema),
    ...errorAnswers(API_KEY_ERRORS, RATE_LIMIT_ERRORS, [
      "validation_failed",
      "body_too_large",
      "session_limit",
      "agentsh_unavailable",
    ]),
  },
});

const listSessions = createRoute({
  ...common,
  method: "get",
  path: "/",
  operationId: "listSessions",
  summary: "the calling API key's sessions",
  responses: {
    200: jsonAnswer("Your sessions.", sessionListSchema),
    ...errorAnswers(API_KEY_ERRORS, RATE_LIMIT_ERRORS),
  },
});

const getSession = createRoute({
  ...common,
  method: "get",
  path: "/{id}",
  operationId: "getSession",
  summary: "one session",
  request: { params: sessionIdParam },
  responses: {
    200: jsonAnswer("The session.", sessionResponseSchema),
    ...errorAnswers(API_KEY_ERRORS, RATE_LIMIT_ERRORS, SESSION_LOOKUP),
  },
});

const deleteSession = createRoute({
  ...common,
  method: "delete",
  path: "/{id}",
  operationId: "deleteSession",
  summary: "end a session (a running command is killed, its workspace removed)",
  request: { params: sessionIdParam },
  responses: {
    200: jsonAnswer("The session as it was.", sessionDeletedSchema),
    ...errorAnswers(API_KEY_ERRORS, RATE_LIMIT_ERRORS, SESSION_LOOKUP),
  },
});

/**
 * `/sessions`: governed sessions owned by the calling API key. `POST /execute` with a
 * `sessionId` runs in one; its working directory and exported variables carry over.
 */
export function createSessionRoutes(options: {
  sessions: SessionRegistry;
  guard: MiddlewareHandler<AppEnv>;
}) {
  const { sessions } = options;
  const app = new OpenAPIHono<AppEnv>();
  app.use(options.guard);
  return app
    .openapi(createSession, async (c) => {
      // No options yet: an empty body or an empty JSON object (anything else is refused, not
      // ignored, so a client that expects an option to work learns that it does not).
      if (!isEmptyBody(await c.req.text())) {
        throw new ApiError({
          code: "validation_failed",
          message: "POST /sessions takes no fields.",
          hint: "Send an empty body or {}.",
        });
      }
      const session = await sessions.create(c.get("owner"), sessionTenant(c.get("tenant")));
      return c.json({ session, requestId: c.get("requestId") }, 201);
    })
    .openapi(listSessions, (c) =>
      c.json({ sessions: sessions.list(c.get("owner")), requestId: c.get("requestId") }, 200),
    )
    .openapi(getSession, (c) =>
      c.json(
        {
          session: sessions.get(c.get("owner"), c.req.valid("param").id),
          requestId: c.get("requestId"),
        },
        200,
      ),
    )
    .openapi(deleteSession, async (c) => {
      const session = await sessions.delete(c.get("owner"), c.req.valid("param").id);
      return c.json({ session, deleted: true as const, requestId: c.get("requestId") }, 200);
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
