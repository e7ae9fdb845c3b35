/**
 * Runs the endpoints' SQL with the API's limits and turns ClickHouse failures into API errors: timeouts become
 * 504, an unreachable server 503, a bad regex 400; anything else is logged with its SQL and answered as a plain
 * 500 so neither SQL nor server internals reach the client. Logs show the SQL's shape (values as `?`) and
 * ClickHouse's message without what it quotes: filter values can be personal data.
 */
import { CH_ERROR, clickHouseErrorCode, type QueryOutput, type QueryRunner } from "../../lib/clickhouse/run.ts";
import type { SqlFragment } from "../../lib/clickhouse/sql.ts";
import type { Logger } from "../../lib/log/logger.ts";
import { QueryApiError } from "./errors.ts";

export interface Executor {
  <Row>(query: SqlFragment, endpoint: string): Promise<QueryOutput<Row>>;
}

export function createExecutor(run: QueryRunner, opts: { maxExecutionTimeS: number; log: Logger; onDuration?: (endpoint: string, seconds: number) => void }): Executor {
  return async <Row>(query: SqlFragment, endpoint: string) => {
    const started = performance.now();
    try {
      // max_execution_time is checked by the server between blocks; the HTTP timeout of the client is larger.
      return await run<Row>(query, { settings: { max_execution_time: opts.maxExecutionTimeS } });
    } catch (err) {
      throw toApiError(err, query, opts.log);
    } finally {
      opts.onDuration?.(endpoint, (performance.now() - started) / 1000);
    }
  };
}

export function toApiError(err: unknown, query: SqlFragment, log: Logger): QueryApiError {
  const code = clickHouseErrorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if (code === CH_ERROR.TIMEOUT_EXCEEDED || code === CH_ERROR.TOO_SLOW) {
    log.warn({ code, sql: query.shape }, "query exceeded max_execution_time");
    return new QueryApiError("query_timeout", "the query took longer than the allowed execution time; narrow the date range or simplify the query");
  }
  if (code === CH_ERROR.CANNOT_COMPILE_REGEXP) {
    return new QueryApiError("invalid_regex", "a regex filter is not a valid RE2 pattern", undefined, { cause: err });
  }
  if (code === CH_ERROR.TOO_MANY_SIMULTANEOUS_QUERIES || code === CH_ERROR.MEMORY_LIMIT_EXCEEDED) {
    log.warn({ code, message: withoutQuoted(message) }, "ClickHouse refused the query for lack of resources");
    return new QueryApiError("clickhouse_unavailable", "the analytics database is overloaded; retry later");
  }
  if (code === undefined) {
    // No server error code: the request did not get an answer (connection refused, reset, client timeout).
    log.error({ err: message }, "ClickHouse unreachable");
    return new QueryApiError("clickhouse_unavailable", "the analytics database is unavailable; retry later");
  }
  log.error({ code, err: withoutQuoted(message), sql: query.shape }, "ClickHouse query failed");
  return new QueryApiError("internal", "the query failed");
}

/** ClickHouse quotes pieces of the query (values included) in its messages: keep the message, not the quotes. */
export function withoutQuoted(message: string): string {
  return message.replace(/'(?:[^'\\]|\\.)*'/g, "'?'");
}
