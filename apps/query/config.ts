/** The query app's configuration: one valibot schema, a default for every setting. */
import * as v from "valibot";
import { bool, httpUrl, identifier, int, logLevel, port, postgresUrl, redisUrl, str } from "../../lib/config/env.ts";
import { ConfigError, loadConfig } from "../../lib/config/env.ts";

export const QueryConfigSchema = v.object({
  QUERY_PORT: port(8001),
  QUERY_HOST: str("0.0.0.0"),
  CLICKHOUSE_URL: httpUrl("http://127.0.0.1:8123"),
  CLICKHOUSE_DATABASE: identifier("analytics"),
  /** The table queries read: `events_distributed` on a sharded cluster (runbooks/scaling.md). */
  QUERY_EVENTS_TABLE: identifier("events"),
  CLICKHOUSE_USER: str("default"),
  CLICKHOUSE_PASSWORD: v.optional(v.string(), ""),
  POSTGRES_URL: postgresUrl("postgres://ingest:ingest@127.0.0.1:5432/ingest"),
  REDIS_URL: redisUrl("redis://127.0.0.1:6379"),
  /** Result cache TTL; 0 turns the cache off. */
  QUERY_CACHE_TTL_S: int(30, 0, 86400),
  /** TTL for results whose range ended before the project's today (late events are rare there). */
  QUERY_CACHE_PAST_TTL_S: int(3600, 0, 7 * 86400),
  /** ClickHouse `max_execution_time` per query; past it the client gets 504. */
  QUERY_MAX_EXECUTION_TIME_S: int(30, 1, 3600),
  /**
   * Plain trends (total, no filters, no breakdown) from the rollup (infrastructure/clickhouse/004_trend_rollup.sql).
   * Default: on for the single-node `events` table only; the rollup's insert counter is per node, so on a
   * Distributed table it could serve stale totals (runbooks/scaling.md).
   */
  QUERY_TREND_ROLLUP: bool(true),
  /** ClickHouse queries this process runs at once (admission control); more wait in the queue. */
  QUERY_MAX_CONCURRENT_QUERIES: int(2, 1, 256),
  /** Slots that long queries (funnels, breakdown trends) may hold together; the rest stay for short ones. */
  QUERY_MAX_HEAVY_QUERIES: int(1, 1, 256),
  /** Longest a request waits for a query slot; past it, or when its expected wait is longer, 503 `overloaded`. */
  QUERY_QUEUE_BUDGET_MS: int(750, 0, 60_000),
  /** Most requests waiting for a slot at once (all projects). */
  QUERY_QUEUE_MAX: int(64, 0, 100_000),
  /** ClickHouse `max_threads` per query (0 = the server's default, its number of cores). */
  QUERY_MAX_THREADS: int(2, 0, 256),
  /** ClickHouse `max_memory_usage` per query, bytes (0 = the server's default). */
  QUERY_MAX_MEMORY_USAGE: int(2 * 1024 ** 3, 0, 2 ** 50),
  /** How long a resolved secret key is trusted before PostgreSQL is asked again. */
  QUERY_KEY_CACHE_TTL_S: int(60, 0, 3600),
  /** Request body cap, bytes: a query is a few KB; past the cap 413 `request_too_large`. */
  QUERY_MAX_BODY_BYTES: int(1024 * 1024, 1024, 64 * 1024 * 1024),
  LOG_LEVEL: logLevel(),
});

export type QueryConfig = v.InferOutput<typeof QueryConfigSchema>;

export function loadQueryConfig(env: Record<string, string | undefined> = process.env): QueryConfig {
  const c = loadConfig(QueryConfigSchema, env);
  if (c.QUERY_EVENTS_TABLE === "events") return c;
  // Not the single-node table: the rollup is off unless asked for, and asking for it is an error.
  if ((env.QUERY_TREND_ROLLUP ?? "") !== "" && c.QUERY_TREND_ROLLUP) {
    throw new ConfigError([`QUERY_TREND_ROLLUP: exact only on the single-node \`events\` table; set it to false with QUERY_EVENTS_TABLE=${c.QUERY_EVENTS_TABLE}`]);
  }
  return { ...c, QUERY_TREND_ROLLUP: false };
}

/**
 * Hold-time estimates per request kind until the first requests of that kind complete (then a moving average of
 * measured ones takes over): deliberately high, so a cold process sheds rather than over-admits.
 */
export const ADMISSION_INITIAL_SERVICE_MS: Record<string, number> = {
  trends: 500,
  trends_rollup: 200,
  trends_breakdown: 2000,
  funnels: 1500,
  funnels_strict: 3000,
  funnels_unordered: 3000,
};

/** Request kinds limited to QUERY_MAX_HEAVY_QUERIES slots: seconds each, where a plain trend takes a fraction. */
export const ADMISSION_HEAVY_KINDS = ["trends_breakdown", "funnels", "funnels_strict", "funnels_unordered"] as const;
