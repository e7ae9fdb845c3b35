/**
 * Runs a built `SqlFragment` and returns its rows with the server's own timing. Takes only fragments, so nothing
 * reaches ClickHouse that did not go through the escaping builder in `./sql.ts`.
 *
 * The `JSON` output format is used because it carries `statistics.elapsed` (the server-side time, reported by
 * 18.16 and current ClickHouse alike), which the query API returns and the benchmark compares against.
 */
import type { ClickHouseSettings } from "@clickhouse/client-web";
import { ClickHouseError } from "@clickhouse/client-web";
import type { ClickHouse } from "./client.ts";
import type { SqlFragment } from "./sql.ts";

export interface QueryStatistics {
  /** Server-side execution time in milliseconds. */
  elapsedMs: number;
  rowsRead: number;
  bytesRead: number;
}

export interface QueryOutput<Row> {
  rows: Row[];
  /** The `WITH TOTALS` row, when the query has one. */
  totals?: Row;
  statistics: QueryStatistics;
}

export interface RunOptions {
  settings?: ClickHouseSettings;
  signal?: AbortSignal;
  queryId?: string;
}

interface JsonResponse<Row> {
  data: Row[];
  totals?: Row;
  statistics?: { elapsed: number; rows_read: number; bytes_read: number };
}

/** The runner interface the query app depends on: the real one below, or a wrapper in tests. */
export type QueryRunner = <Row>(query: SqlFragment, opts?: RunOptions) => Promise<QueryOutput<Row>>;

export function clickHouseRunner(ch: ClickHouse): QueryRunner {
  return async <Row>(query: SqlFragment, opts: RunOptions = {}): Promise<QueryOutput<Row>> => {
    const rs = await ch.query({
      query: query.text,
      format: "JSON",
      ...(opts.settings ? { clickhouse_settings: opts.settings } : {}),
      ...(opts.signal ? { abort_signal: opts.signal } : {}),
      ...(opts.queryId ? { query_id: opts.queryId } : {}),
    });
    const body = (await rs.json()) as JsonResponse<Row>;
    const s = body.statistics;
    return {
      rows: body.data,
      ...(body.totals !== undefined ? { totals: body.totals } : {}),
      statistics: {
        elapsedMs: s ? s.elapsed * 1000 : Number.NaN,
        rowsRead: s ? Number(s.rows_read) : 0,
        bytesRead: s ? Number(s.bytes_read) : 0,
      },
    };
  };
}

/** ClickHouse error codes the query API treats specially (ErrorCodes.cpp; identical in 18.16 and current). */
export const CH_ERROR = {
  TIMEOUT_EXCEEDED: "159",
  TOO_SLOW: "160",
  CANNOT_COMPILE_REGEXP: "427",
  MEMORY_LIMIT_EXCEEDED: "241",
  TOO_MANY_SIMULTANEOUS_QUERIES: "202",
  TOO_DEEP_AST: "167",
  TOO_BIG_AST: "168",
} as const;

/** The server's numeric error code, if `err` came from ClickHouse. */
export function clickHouseErrorCode(err: unknown): string | undefined {
  if (err instanceof ClickHouseError) return err.code;
  // Older servers (18.16) answer errors as plain text "Code: 159, e.displayText() = ..."; the client usually
  // parses that, but keep a fallback for messages that reach us unparsed.
  if (err instanceof Error) {
    const m = /^Code: (\d+)/.exec(err.message);
    if (m) return m[1];
  }
  return undefined;
}
