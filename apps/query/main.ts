/** apps/query entry point: load config, connect dependencies, serve the Hono app. Logic lives in the modules. */
import { clickHouseRunner } from "../../lib/clickhouse/run.ts";
import { createClickHouse, pingClickHouse } from "../../lib/clickhouse/client.ts";
import { configOrExit } from "../../lib/config/env.ts";
import { createRegistry } from "../../lib/http/metrics.ts";
import { createLogger } from "../../lib/log/logger.ts";
import { createPostgres, pingPostgres } from "../../lib/postgres/client.ts";
import { createRedis, pingRedis } from "../../lib/redis/client.ts";
import { createQueryApp } from "./app.ts";
import { KeyResolver, postgresKeyLookup } from "./auth.ts";
import { redisQueryCache } from "./cache.ts";
import { ADMISSION_HEAVY_KINDS, ADMISSION_INITIAL_SERVICE_MS, loadQueryConfig } from "./config.ts";

const config = configOrExit(() => loadQueryConfig());
const log = createLogger("query", config.LOG_LEVEL);
const ch = createClickHouse({
  url: config.CLICKHOUSE_URL,
  database: config.CLICKHOUSE_DATABASE,
  username: config.CLICKHOUSE_USER,
  password: config.CLICKHOUSE_PASSWORD,
  // The server stops a query at max_execution_time; give the HTTP request a little longer to receive that error.
  requestTimeoutMs: (config.QUERY_MAX_EXECUTION_TIME_S + 5) * 1000,
});
const pg = createPostgres(config.POSTGRES_URL);
const redis = createRedis(config.REDIS_URL);

const app = createQueryApp({
  run: clickHouseRunner(ch),
  table: config.QUERY_EVENTS_TABLE,
  keys: new KeyResolver({ lookup: postgresKeyLookup(pg), ttlMs: config.QUERY_KEY_CACHE_TTL_S * 1000 }),
  cache: config.QUERY_CACHE_TTL_S > 0 ? redisQueryCache(redis) : null,
  cacheTtlSeconds: config.QUERY_CACHE_TTL_S,
  cachePastTtlSeconds: config.QUERY_CACHE_PAST_TTL_S,
  maxExecutionTimeS: config.QUERY_MAX_EXECUTION_TIME_S,
  maxBodyBytes: config.QUERY_MAX_BODY_BYTES,
  maxThreads: config.QUERY_MAX_THREADS,
  ...(config.QUERY_TREND_ROLLUP ? { rollupWrite: async (table: string, rows: Record<string, unknown>[]) => void (await ch.insert({ table, values: rows, format: "JSONEachRow" })) } : {}),
  maxMemoryUsage: config.QUERY_MAX_MEMORY_USAGE,
  admission: {
    concurrency: config.QUERY_MAX_CONCURRENT_QUERIES,
    budgetMs: config.QUERY_QUEUE_BUDGET_MS,
    maxQueue: config.QUERY_QUEUE_MAX,
    initialServiceMs: ADMISSION_INITIAL_SERVICE_MS,
    heavyKinds: ADMISSION_HEAVY_KINDS,
    maxHeavySlots: config.QUERY_MAX_HEAVY_QUERIES,
  },
  log,
  registry: createRegistry("query"),
  readiness: { clickhouse: () => pingClickHouse(ch), postgres: () => pingPostgres(pg), redis: () => pingRedis(redis) },
});

const server = Bun.serve({ port: config.QUERY_PORT, hostname: config.QUERY_HOST, fetch: app.fetch });
log.info({ port: server.port }, "query API listening");

async function shutdown(signal: string) {
  log.info({ signal }, "shutting down");
  await server.stop();
  await Promise.allSettled([ch.close(), pg.end({ timeout: 5 }), redis.quit()]);
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
