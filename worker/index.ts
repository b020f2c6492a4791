import { Container, getContainer } from "@cloudflare/containers";
import { containerEnvVars, routeRequest, tagOfInstanceName, type WorkerSecrets } from "./route.js";

export interface Env extends WorkerSecrets {
  GOVERNED_EXECUTOR: DurableObjectNamespace<GovernedExecutor>;
  // Secrets (`wrangler secret put NAME`), passed to the service in the container:
  // API_KEY, API_KEYS (optional further keys), REDIS_URL (optional shared rate-limit counters).
}

/**
 * The container: the same image and boot script as the Render deployment. One shared instance
 * serves everything that names no session; every session has an instance of its own, named
 * `session-<tag>` (worker/route.ts).
 */
export class GovernedExecutor extends Container<Env> {
  override defaultPort = 10000;
  override sleepAfter = "15m";
  override pingEndpoint = "localhost/health";

  // biome-ignore lint/complexity/noBannedTypes: the base class declares its state as DurableObjectState<{}>
  constructor(ctx: DurableObjectState<{}>, env: Env) {
    super(ctx, env);
    // The Worker starts a session instance with its INSTANCE_TAG (startAndWaitForPorts'
    // startOptions). Should the library ever start it again by itself, the name it was reached
    // by (ctx.id.name, set for idFromName objects) gives the same tag.
    this.envVars = containerEnvVars(env, tagOfInstanceName(ctx.id.name));
  }
}

export default {
  fetch: (request: Request, env: Env) =>
    routeRequest(request, env, {
      shared: () => getContainer(env.GOVERNED_EXECUTOR),
      named: (name) => getContainer(env.GOVERNED_EXECUTOR, name),
    }),
} satisfies ExportedHandler<Env>;
