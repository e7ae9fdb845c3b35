/** The query app's configuration: one valibot schema, a default for every setting. */
import * as v from "valibot";
import { httpUrl, identifier, int, logLevel, port, postgresUrl, redisUrl, str } from "../../lib/config/env.ts";
import { loadConfig } from "../../lib/config/env.ts";

export const QueryConfigSchema = v.object({
  QUERY_PORT: port(8001),
  QUERY_HOST: str("0.0.0.0"),
  CLICKHOUSE_URL: httpUrl("http://127.0.0.1:8123"),
  CLICKHOUSE_DATABASE: identifier("analytics"),
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
  /** How long a resolved secret key is trusted before PostgreSQL is asked again. */
  QUERY_KEY_CACHE_TTL_S: int(60, 0, 3600),
  /** Request body cap, bytes: a query is a few KB; past the cap 413 `request_too_large`. */
  QUERY_MAX_BODY_BYTES: int(1024 * 1024, 1024, 64 * 1024 * 1024),
  LOG_LEVEL: logLevel(),
});

export type QueryConfig = v.InferOutput<typeof QueryConfigSchema>;

export function loadQueryConfig(env: Record<string, string | undefined> = process.env): QueryConfig {
  return loadConfig(QueryConfigSchema, env);
}
