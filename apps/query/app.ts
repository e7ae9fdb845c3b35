/**
 * The query app as a Hono app built from its dependencies, so tests call it in-process (`app.request`) with the
 * real ClickHouse/PostgreSQL/Redis or with their own wrappers. main.ts only loads config and wires this.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Registry } from "prom-client";
import type { QueryRunner } from "../../lib/clickhouse/run.ts";
import { healthRoutes, type ReadinessCheck } from "../../lib/http/health.ts";
import { metricsRoute } from "../../lib/http/metrics.ts";
import type { Logger } from "../../lib/log/logger.ts";
import { requireProjectKey, type AuthVariables, type KeyResolver } from "./auth.ts";
import { ResultCache, type QueryCache } from "./cache.ts";
import { QueryApiError } from "./errors.ts";
import { Admission, type AdmissionOptions } from "./admission.ts";
import { createExecutor } from "./execute.ts";
import { TrendRollup } from "./trend-rollup.ts";
import { registerEventNames } from "./event-names.ts";
import { registerEvents } from "./events.ts";
import { registerPersons } from "./persons.ts";
import { registerFunnels } from "./funnels.ts";
import { openApiDocument } from "./openapi.ts";
import { registerPropertyKeys } from "./property-keys.ts";
import { queryMetrics } from "./query-metrics.ts";
import { registerTrends } from "./trends.ts";
import { registerInsightsPage } from "./ui/routes.ts";

export interface QueryAppDeps {
  run: QueryRunner;
  keys: KeyResolver;
  /** null: no result cache. */
  cache: QueryCache | null;
  cacheTtlSeconds: number;
  cachePastTtlSeconds: number;
  maxExecutionTimeS: number;
  /** Request body cap in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** ClickHouse max_threads / max_memory_usage per query; 0 or absent: the server's default. */
  maxThreads?: number;
  maxMemoryUsage?: number;
  /**
   * Stores rows into a table of the events table's database; given, plain trends use the rollup
   * (apps/query/trend-rollup.ts). Absent: trends always scan events.
   */
  rollupWrite?: (table: string, rows: Record<string, unknown>[]) => Promise<void>;
  /** Admission control; absent: every request runs at once (tests that do not exercise it). */
  admission?: Omit<AdmissionOptions, "onAdmit" | "onShed">;
  log: Logger;
  registry: Registry;
  readiness: Record<string, ReadinessCheck>;
  now?: () => number;
  /** Events table name (default `events` in the client's database). */
  table?: string;
}

export function createQueryApp(deps: QueryAppDeps): Hono<{ Variables: AuthVariables }> {
  const metrics = queryMetrics(deps.registry);
  const app = new Hono<{ Variables: AuthVariables }>();
  const log = deps.log;

  app.onError((err, c) => {
    if (err instanceof QueryApiError) {
      // Shedding is expected under load and counted in metrics; one log line per shed request would be noise.
      if (err.status >= 500 && err.code !== "overloaded") log.warn({ code: err.code, cause: err.cause instanceof Error ? err.cause.message : undefined }, err.detail);
      if (err.retryable) c.header("Retry-After", String(err.retryAfterS));
      return c.json(err.body, err.status);
    }
    log.error({ err }, "unhandled error");
    const internal = new QueryApiError("internal", "internal error");
    return c.json(internal.body, 500);
  });
  app.notFound((c) => c.json(new QueryApiError("not_found", `no route ${c.req.method} ${c.req.path}`).body, 404));

  app.route("/", healthRoutes({ checks: deps.readiness }));
  app.route("/", metricsRoute(deps.registry));
  const doc = openApiDocument();
  app.get("/openapi.json", (c) => c.json(doc));

  // Request latency per endpoint, errors included.
  app.use("/api/*", async (c, next) => {
    const started = performance.now();
    await next();
    metrics.observeRequest(c.req.path.replace(/^\/api\//, ""), c.res.status, (performance.now() - started) / 1000);
  });
  // Before authentication: an oversized body is refused without reading it (Content-Length) or past the cap.
  const maxBodyBytes = deps.maxBodyBytes ?? 1024 * 1024;
  app.use(
    "/api/*",
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: (c) => c.json(new QueryApiError("request_too_large", `the request body exceeds ${maxBodyBytes} bytes`).body, 413),
    }),
  );
  app.use("/api/*", requireProjectKey(deps.keys));

  const admission = deps.admission ? new Admission({ ...deps.admission, onAdmit: metrics.admitted, onShed: metrics.shed }) : null;
  if (admission) metrics.watch(admission);
  const routeDeps = {
    execute: createExecutor(deps.run, {
      maxExecutionTimeS: deps.maxExecutionTimeS,
      maxThreads: deps.maxThreads ?? 0,
      maxMemoryUsage: deps.maxMemoryUsage ?? 0,
      log,
      onDuration: metrics.observeClickHouse,
    }),
    admission,
    cache: new ResultCache({
      cache: deps.cache,
      ttlSeconds: deps.cacheTtlSeconds,
      pastTtlSeconds: deps.cachePastTtlSeconds,
      log,
      onResult: metrics.cacheResult,
    }),
    now: deps.now ?? Date.now,
    table: deps.table ?? "events",
    rollup: deps.rollupWrite ? new TrendRollup({ table: deps.table ?? "events", write: deps.rollupWrite, log, ...(deps.now ? { now: deps.now } : {}) }) : undefined,
  };
  registerTrends(app, routeDeps);
  registerFunnels(app, routeDeps);
  registerEvents(app, routeDeps);
  registerPersons(app, routeDeps);
  registerEventNames(app, routeDeps);
  registerPropertyKeys(app, routeDeps);
  registerInsightsPage(app, log);
  return app;
}
