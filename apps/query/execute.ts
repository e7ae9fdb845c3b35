/**
 * Runs the endpoints' SQL with the API's limits and turns ClickHouse failures into API errors: timeouts become
 * 504, an unreachable server 503, a bad regex 400; anything else is logged with its SQL and answered as a plain
 * 500 so neither SQL nor server internals reach the client. Logs show the SQL's shape (values as `?`) and
 * ClickHouse's message without what it quotes: filter values can be personal data.
 */
import type { ClickHouseSettings } from "@clickhouse/client-web";
import { CH_ERROR, clickHouseErrorCode, type QueryOutput, type QueryRunner } from "../../lib/clickhouse/run.ts";
import type { SqlFragment } from "../../lib/clickhouse/sql.ts";
import type { Logger } from "../../lib/log/logger.ts";
import { QueryApiError } from "./errors.ts";

export interface Executor {
  <Row>(query: SqlFragment, endpoint: string): Promise<QueryOutput<Row>>;
}

export interface ExecutorOptions {
  maxExecutionTimeS: number;
  /** ClickHouse max_threads per query; 0 leaves the server's default. */
  maxThreads?: number;
  /** ClickHouse max_memory_usage per query, bytes; 0 leaves the server's default. */
  maxMemoryUsage?: number;
  log: Logger;
  onDuration?: (endpoint: string, seconds: number) => void;
}

/** The per-query settings the API sends (all known to 18.16 and current ClickHouse). */
export function querySettings(opts: Pick<ExecutorOptions, "maxExecutionTimeS" | "maxThreads" | "maxMemoryUsage">): ClickHouseSettings {
  return {
    // Checked by the server between blocks; the HTTP timeout of the client is larger.
    max_execution_time: opts.maxExecutionTimeS,
    ...(opts.maxThreads ? { max_threads: opts.maxThreads } : {}),
    ...(opts.maxMemoryUsage ? { max_memory_usage: String(opts.maxMemoryUsage) } : {}),
  };
}

export function createExecutor(run: QueryRunner, opts: ExecutorOptions): Executor {
  const settings = querySettings(opts);
  return async <Row>(query: SqlFragment, endpoint: string) => {
    const started = performance.now();
    try {
      return await run<Row>(query, { settings });
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
  if (code === CH_ERROR.TOO_BIG_AST || code === CH_ERROR.TOO_DEEP_AST) {
    // The request is valid but its SQL is larger than ClickHouse accepts (e.g. a strict funnel of 10 steps with
    // filters): the client can ask for less, a retry cannot help.
    log.warn({ code, sql: query.shape }, "query too complex for ClickHouse");
    return new QueryApiError("query_too_complex", "the query is too complex for the database; use fewer steps, series or filters");
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

/** An executor that runs at most `n` of its queries at once (the slots a request was admitted with). */
export function limitConcurrency(execute: Executor, n: number): Executor {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <Row>(query: SqlFragment, endpoint: string) => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await execute<Row>(query, endpoint);
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}
