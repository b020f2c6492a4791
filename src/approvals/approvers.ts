import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env.js";
import { ownerOf, requireApiKey } from "../http/api-key.js";
import { ApiError } from "../http/errors.js";

/**
 * Who may see and decide approvals: the keys in APPROVER_KEYS. This is the one place that says
 * so (a tenant file with an operator role can feed it later). An agent's key (API_KEY/API_KEYS)
 * is refused with 403 `not_an_approver` unless it is listed as an approver too; without any
 * approver key the routes refuse everyone (403 `api_key_not_configured`).
 */
export function requireApprover(
  approverKeys: readonly string[],
  agentKeys: readonly string[],
): MiddlewareHandler<AppEnv> {
  if (approverKeys.length === 0) {
    return async () => {
      throw new ApiError({
        code: "api_key_not_configured",
        message: "Approvals are decided only with an approver key, and none is configured.",
        hint: "Set APPROVER_KEYS (comma-separated, at least 16 characters each).",
      });
    };
  }
  const approver = requireApiKey(approverKeys);
  const agentOwners = new Set(agentKeys.filter((k) => !approverKeys.includes(k)).map(ownerOf));
  const agent = requireApiKey(agentKeys);
  return async (c, next) => {
    try {
      await approver(c, async () => {});
    } catch (error) {
      // Not an approver key: say so plainly when it is an agent's key.
      if (error instanceof ApiError && error.body.code === "api_key_invalid" && agentKeys.length) {
        let isAgent = false;
        await agent(c, async () => {
          isAgent = agentOwners.has(c.get("owner"));
        }).catch(() => {});
        if (isAgent) {
          throw new ApiError({
            code: "not_an_approver",
            message: "This API key may run commands but not decide approvals.",
            hint: "Approvals are decided with a key listed in APPROVER_KEYS.",
          });
        }
      }
      throw error;
    }
    await next();
  };
}
