import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import type { Store } from "hono-rate-limiter";
import type { InstallationReport } from "./agentsh/installation-report.js";
import type { AppEnv } from "./app-env.js";
import { approvalAuditEntry } from "./approvals/approval-audit.js";
import { ApprovalStore } from "./approvals/approvals.js";
import { requireApprover } from "./approvals/approvers.js";
import { type AgentshApprovalsApi, NetworkApprovals } from "./approvals/network-approvals.js";
import type { AuditStore } from "./audit/audit-log.js";
import { createCommandTrail } from "./audit/command-trail.js";
import { openSqliteAuditStore } from "./audit/sqlite-store.js";
import type { Redactor } from "./bundle/redactor.js";
import type { Config } from "./config.js";
import { demoRoutes } from "./demo-scenarios.js";
import type { HealthCheck } from "./enforcement/health.js";
import type { EnforcementMonitor } from "./enforcement/monitor.js";
import type { ProtectionReport } from "./enforcement/protections.js";
import { createExecuteCommand } from "./execute-command.js";
import type { Executor } from "./executor.js";
import type { Explainer } from "./explain/explain.js";
import { requireApiKey } from "./http/api-key.js";
import { clientAddress, type SocketAddressOf } from "./http/client-address.js";
import { ApiError, createErrorHandler, errorResponse } from "./http/errors.js";
import { rateLimit } from "./http/rate-limit.js";
import type { Logger } from "./logger.js";
import { createServiceMetrics, type ServiceMetrics } from "./metrics/service-metrics.js";
import { endpointList, routeDeclarations } from "./openapi/route-docs.js";
import { createApprovalRoutes } from "./routes/approvals.js";
import { createAuditRoutes } from "./routes/audit.js";
import { createConsoleRoutes } from "./routes/console.js";
import { createDemoRoutes } from "./routes/demo.js";
import { createDocsRoutes } from "./routes/docs.js";
import { createExecuteRoutes } from "./routes/execute.js";
import { createExplainRoutes } from "./routes/explain.js";
import { createHealthRoutes } from "./routes/health.js";
import { createMcpRoutes } from "./routes/mcp.js";
import { createMetricsRoutes } from "./routes/metrics.js";
import { createOpenApiRoutes, DOCUMENT_HEADER } from "./routes/openapi.js";
import { createSelftestRoutes } from "./routes/selftest.js";
import { createServiceIndexRoutes } from "./routes/service-index.js";
import { createSessionRoutes } from "./routes/sessions.js";
import { createRunCommand } from "./run-command.js";
import type { SessionRegistryControl } from "./sessions/session-registry.js";
import { requireOperator, requireTenant, requireTenantOrToken } from "./tenants/guard.js";
import type { Tenant, TenantDirectory } from "./tenants/tenants.js";

export interface AppDeps {
  config: Pick<
    Config,
    "apiKeys" | "limits" | "sessions" | "rateLimits" | "trustedProxyHops" | "metricsToken"
  > &
    Partial<Pick<Config, "approverKeys" | "approvalTtlMs">>;
  executor: Executor;
  /** Whether commands may run now, and where a command that ran unsandboxed is reported. */
  enforcement: Pick<EnforcementMonitor, "gate" | "markLost" | "verify" | "lastProof" | "state">;
  /** Per protection category: the bundle's claim and the last canary proof (/demo/status). */
  protections: ProtectionReport;
  /** `POST /explain`: the policy's verdict on a command, without running it. */
  explain: Explainer;
  health: HealthCheck;
  /** `agentsh --version` / `agentsh detect`, run by the service at boot (for `/demo/status`). */
  installation: InstallationReport;
  redact: Redactor;
  logger: Logger;
  /** The TCP peer of a request; supplied by the runtime entry (Node: getConnInfo). */
  socketAddressOf: SocketAddressOf;
  /** Shared rate-limit counters (e.g. Redis) for more than one instance; memory by default. */
  rateLimitStore?: () => Store<AppEnv>;
  /** Where every answered command is recorded for `GET /audit` (default: SQLite in memory). */
  audit?: AuditStore;
  /** `GET /metrics` (default: a registry fed by these deps, command slots unknown). */
  metrics?: ServiceMetrics;
  /** The governed sessions this instance holds (`/sessions`, `sessionId` in `/execute`). */
  sessions: SessionRegistryControl;
  /**
   * The tenants file's directory (src/tenants/): keys are then tenants' keys, and API_KEY /
   * API_KEYS count only where the file names them. Absent: API_KEY / API_KEYS as always.
   */
  tenants?: TenantDirectory;
  /** `/explain` for a tenant's caller: its own policy (with `tenants`). */
  explainFor?: (tenant: Tenant) => Promise<Explainer>;
  /**
   * NETWORK_APPROVALS: agentsh's approvals API with the service's approver key; the connections
   * its proxy holds become approvals here (src/approvals/network-approvals.ts).
   */
  agentshApprovals?: AgentshApprovalsApi;
}

/** Builds the HTTP app. No side effects: nothing listens and no process is started here. */
export function createApp(deps: AppDeps) {
  const { config, logger } = deps;
  const audit = deps.audit ?? openSqliteAuditStore(":memory:");
  const metrics =
    deps.metrics ??
    createServiceMetrics({
      commandStats: () => ({ slots: config.limits.maxConcurrent, inFlight: 0, queued: 0 }),
      enforcement: deps.enforcement.state,
      protections: deps.protections,
      sessions: () => deps.sessions.size,
      auditPending: audit.pending,
    });
  const trail = createCommandTrail({
    store: audit,
    metrics,
    instance: config.sessions.instanceTag,
  });
  const runCommand = createRunCommand(deps.executor, deps.redact, deps.enforcement, trail);
  const limit = (name: string, max: number) =>
    rateLimit({
      name,
      windowMs: config.rateLimits.windowMs,
      limit: max,
      ...(deps.rateLimitStore ? { store: deps.rateLimitStore() } : {}),
    });

  const demoLimit = limit("demo", config.rateLimits.demo);
  // Every change of an approval is an entry of the trail (not counted as a command).
  const approvalTrail = createCommandTrail({ store: audit, instance: config.sessions.instanceTag });
  const approvals = new ApprovalStore({
    ttlMs: config.approvalTtlMs ?? 15 * 60 * 1000,
    onChange: (approval, change) => {
      logger.info("approval", { change, id: approval.id, rule: approval.rule });
      approvalTrail
        .record(approvalAuditEntry(approval, change, deps.redact), approval.createdAt.getTime())
        .catch((error) =>
          logger.error("approval not recorded", { id: approval.id, error: `${error}` }),
        );
    },
  });
  const networkApprovals = deps.agentshApprovals
    ? new NetworkApprovals({ api: deps.agentshApprovals, store: approvals, logger })
    : undefined;
  const executeCommand = createExecuteCommand({
    approvals,
    ...(networkApprovals ? { networkApprovals } : {}),
    runCommand,
    sessions: deps.sessions,
    redact: deps.redact,
    defaultTimeoutMs: config.limits.defaultTimeoutMs,
    trail,
  });
  const { tenants } = deps;
  const guard = tenants
    ? requireTenant(tenants, deps.rateLimitStore)
    : requireApiKey(config.apiKeys);
  // One bucket for running commands, whether asked by /execute or by an MCP tool call.
  const executeLimit = limit("execute", config.rateLimits.execute);

  // Every route is declared with createRoute (src/routes/*.ts): the same declarations validate
  // the requests, type the answers, and make GET /openapi.json and GET /'s endpoint list.
  const root = new OpenAPIHono<AppEnv>();
  const app = root
    .use(requestId())
    .use(secureHeaders({ crossOriginResourcePolicy: "same-origin" }))
    .use(clientAddress(deps.socketAddressOf, config.trustedProxyHops))
    .use(async (c, next) => {
      const started = performance.now();
      await next();
      logger.info("request", {
        requestId: c.get("requestId"),
        agentsh: c.get("agentsh"),
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        client: c.get("clientAddress"),
        ms: Math.round(performance.now() - started),
      });
    })
    .use(
      bodyLimit({
        maxSize: config.limits.maxBodyBytes,
        onError: () => {
          throw new ApiError({
            code: "body_too_large",
            message: `The request body exceeds ${config.limits.maxBodyBytes} bytes.`,
            hint: 'Commands are at most 1024 characters; send only {"command": ...}.',
          });
        },
      }),
    )
    .route(
      "/",
      createServiceIndexRoutes(() => endpointList(routeDeclarations(root))),
    )
    .route("/console", createConsoleRoutes())
    .route(
      "/openapi.json",
      createOpenApiRoutes(() => root.getOpenAPI31Document(DOCUMENT_HEADER)),
    )
    .route("/docs", createDocsRoutes())
    .route("/health", createHealthRoutes(deps.health))
    .use("/demo/*", demoLimit)
    .route(
      "/demo",
      createDemoRoutes({
        demos: demoRoutes,
        runCommand,
        timeoutMs: config.limits.defaultTimeoutMs,
        health: deps.health,
        installation: deps.installation,
        protections: deps.protections,
      }),
    )
    .use("/execute", executeLimit)
    .route(
      "/execute",
      createExecuteRoutes({
        executeCommand,
        maxTimeoutMs: config.limits.maxTimeoutMs,
        guard,
        logger,
      }),
    )
    .route(
      "/approvals",
      createApprovalRoutes({
        approvals,
        guard: requireApprover(config.approverKeys ?? [], config.apiKeys),
        redact: deps.redact,
        ...(networkApprovals ? { network: networkApprovals } : {}),
      }),
    )
    .use("/sessions/*", limit("sessions", config.rateLimits.execute))
    .route("/sessions", createSessionRoutes({ sessions: deps.sessions, guard }))
    .route(
      "/mcp",
      createMcpRoutes({
        executeCommand,
        sessions: deps.sessions,
        guard,
        toolCallLimit: executeLimit,
        maxTimeoutMs: config.limits.maxTimeoutMs,
        logger,
        networkApprovals: networkApprovals !== undefined,
      }),
    )
    .route(
      "/audit",
      createAuditRoutes({
        audit,
        apiKeys: config.apiKeys,
        ...(tenants ? { guard } : {}),
      }),
    )
    .route(
      "/metrics",
      createMetricsRoutes({
        registry: metrics.registry,
        tokens: [...config.apiKeys, ...(config.metricsToken ? [config.metricsToken] : [])],
        ...(tenants
          ? {
              guard: requireTenantOrToken(
                tenants,
                config.metricsToken ? [config.metricsToken] : [],
              ),
            }
          : {}),
      }),
    )
    .use("/explain", limit("explain", config.rateLimits.execute))
    .route(
      "/explain",
      createExplainRoutes({
        explain: deps.explain,
        ...(deps.explainFor ? { explainFor: deps.explainFor } : {}),
        maxTimeoutMs: config.limits.maxTimeoutMs,
        guard,
      }),
    )
    .use("/selftest", limit("selftest", config.rateLimits.selftest))
    .route(
      "/selftest",
      createSelftestRoutes({
        monitor: deps.enforcement,
        protections: deps.protections,
        apiKeys: config.apiKeys,
        ...(tenants ? { guard: requireOperator(tenants) } : {}),
      }),
    );

  // Built once, on first use: which methods each registered path answers (for 405 + Allow).
  let routeTable: Array<{ pattern: RegExp; method: string }> | undefined;
  const allowedMethods = (path: string) => {
    routeTable ??= app.routes
      .filter((route) => route.method !== "ALL")
      .map((route) => ({ pattern: routePattern(route.path), method: route.method }));
    return [...new Set(routeTable.filter((r) => r.pattern.test(path)).map((r) => r.method))];
  };

  app.notFound((c) => {
    const allowed = allowedMethods(c.req.path);
    if (allowed.length > 0) {
      return errorResponse(
        c,
        {
          code: "method_not_allowed",
          message: `${c.req.method} is not supported here.`,
          hint: `Use ${allowed.join(" or ")}.`,
        },
        { Allow: allowed.join(", ") },
      );
    }
    return errorResponse(c, {
      code: "not_found",
      message: `There is no route ${c.req.method} ${c.req.path.slice(0, 100)}.`,
      hint: "GET / lists the endpoints.",
    });
  });
  app.onError(createErrorHandler(logger));
  // Typed as the Hono chain above (every route's input and answers: what hono/client reads);
  // it is `root`, whose registry routeDeclarations() reads.
  return app;
}

/** The app's type, for the typed client (`governed-executor/client`). */
export type AppType = ReturnType<typeof createApp>;

/** A registered route path as an anchored regex (exact: no trailing-slash folding). */
function routePattern(path: string): RegExp {
  const normalized = path.length > 1 ? path.replace(/\/$/, "") : path;
  const source = normalized
    .split("/")
    .map((segment) =>
      segment.startsWith(":")
        ? "[^/]+"
        : segment === "*"
          ? ".*"
          : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"),
    )
    .join("/");
  return new RegExp(`^${source}$`);
}
