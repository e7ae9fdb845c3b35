/** What every endpoint shares: the authenticated project, the SQL executor, and the common request fields. */
import * as v from "valibot";
import type { QueryStatistics } from "../../lib/clickhouse/run.ts";
import type { Executor } from "./execute.ts";
import type { TrendRollup } from "./trend-rollup.ts";
import { isTimeZone } from "./time-range.ts";

export interface QueryContext {
  projectId: number;
  execute: Executor;
  /** The events table (tests may point it elsewhere); an identifier, validated by `ident`. */
  table: string;
  /** Exact pre-aggregated event totals for plain trends; absent: trends always scan events. */
  rollup?: TrendRollup | undefined;
}

export const DateRangeSchema = v.object({
  date_from: v.optional(
    v.pipe(v.string(), v.maxLength(40), v.description("-7d, -24h, -2w, -1m, YYYY-MM-DD or ISO date-time; default -7d")),
  ),
  date_to: v.optional(v.pipe(v.string(), v.maxLength(40), v.description("same forms; default now"))),
});

export const TimeZoneSchema = v.optional(
  v.pipe(v.string(), v.check(isTimeZone, "unknown IANA time zone"), v.description("IANA name; buckets are local to it")),
  "UTC",
);

export const ProjectIdSchema = v.optional(
  v.pipe(v.number(), v.integer(), v.description("optional; if given it must be the key's own project (else 403)")),
);

export const StatisticsSchema = v.object({
  elapsed_ms: v.pipe(v.number(), v.description("ClickHouse server-side time of the generated queries")),
  rows_read: v.number(),
  bytes_read: v.number(),
  queries: v.number(),
});

export function statisticsOf(stats: QueryStatistics[]): v.InferOutput<typeof StatisticsSchema> {
  return {
    elapsed_ms: Math.round(stats.reduce((s, x) => s + x.elapsedMs, 0) * 1000) / 1000,
    rows_read: stats.reduce((s, x) => s + x.rowsRead, 0),
    bytes_read: stats.reduce((s, x) => s + x.bytesRead, 0),
    queries: stats.length,
  };
}
