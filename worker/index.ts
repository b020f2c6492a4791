import { Container, getContainer } from "@cloudflare/containers";
import { forwardToContainer } from "./forward.js";

export interface Env {
  GOVERNED_EXECUTOR: DurableObjectNamespace<GovernedExecutor>;
  /** Set with `wrangler secret put API_KEY`; passed to the service in the container. */
  API_KEY?: string;
}

/** The container: the same image and boot script as the Render deployment. */
export class GovernedExecutor extends Container<Env> {
  override defaultPort = 10000;
  override sleepAfter = "15m";
  override pingEndpoint = "localhost/health";

  // biome-ignore lint/complexity/noBannedTypes: the base class declares its state as DurableObjectState<{}>
  constructor(ctx: DurableObjectState<{}>, env: Env) {
    super(ctx, env);
    this.envVars = {
      API_KEY: env.API_KEY ?? "",
      // The Worker sets X-Forwarded-For to the verified client address: one trusted hop.
      TRUSTED_PROXY_HOPS: "1",
    };
  }
}

export default {
  // One instance (max_instances = 1 in wrangler.toml) keeps in-memory rate limits exact.
  fetch: (request: Request, env: Env) =>
    forwardToContainer(request, getContainer(env.GOVERNED_EXECUTOR)),
} satisfies ExportedHandler<Env>;
