/**
 * GET /api/event_names: the project's event names over the last `days` days with how many events each has and
 * when it was last seen, most frequent first. Feeds the insights page's event pickers.
 *
 * `count` is stored rows (`count()`), not distinct uuids: it is a picker's hint, and exact counting
 * (`uniqExact(uuid)`, what trends use) costs several times more over a month of a large project. A redelivered
 * event counts twice here until ClickHouse merges the copy away; trends never do. Cached like trends
 * (`QUERY_CACHE_TTL_S`).
 */
import type { Hono } from "hono";
import * as v from "valibot";
import { ident, sql, type SqlFragment } from "../../lib/clickhouse/sql.ts";
import type { AuthVariables } from "./auth.ts";
import { intParam, registerGetRoute } from "./get-route.ts";
import { statisticsOf, StatisticsSchema, type QueryContext } from "./query-context.ts";
import type { QueryRouteDeps } from "./query-route.ts";

export const MAX_EVENT_NAMES = 1000;

export const EventNamesRequestSchema = v.strictObject({
  days: intParam(30, 1, 3650, "look back this many days from now (1..3650, default 30)"),
});
export type EventNamesRequest = v.InferOutput<typeof EventNamesRequestSchema>;

export const EventNamesResponseSchema = v.object({
  results: v.array(
    v.object({
      event: v.string(),
      count: v.pipe(v.number(), v.description("stored rows in the period (a not yet merged redelivery counts twice)")),
      last_seen: v.pipe(v.string(), v.description("ISO instant of the newest event")),
    }),
  ),
  clickhouse: StatisticsSchema,
});
export type EventNamesResponse = v.InferOutput<typeof EventNamesResponseSchema>;

interface Row {
  event: string;
  count: number | string;
  last_seen: number | string;
}

/** Exported for the dialect test. `now` is whole seconds so the SQL is stable within a second. */
export function eventNamesSql(req: EventNamesRequest, projectId: number, now: number, table = "events"): SqlFragment {
  const from = new Date(Math.floor(now / 1000) * 1000 - req.days * 86_400_000);
  return sql`SELECT event, count() AS count, toUnixTimestamp(max(timestamp)) AS last_seen
FROM ${ident(table)}
WHERE team_id = ${projectId} AND timestamp >= ${from}
GROUP BY event
ORDER BY count DESC, event
LIMIT ${MAX_EVENT_NAMES}`;
}

export async function runEventNames(ctx: QueryContext, req: EventNamesRequest, now: number): Promise<EventNamesResponse> {
  const out = await ctx.execute<Row>(eventNamesSql(req, ctx.projectId, now, ctx.table), "event_names");
  return {
    results: out.rows.map((r) => ({
      event: r.event,
      count: Number(r.count),
      last_seen: new Date(Number(r.last_seen) * 1000).toISOString(),
    })),
    clickhouse: statisticsOf([out.statistics]),
  };
}

export function registerEventNames(app: Hono<{ Variables: AuthVariables }>, deps: QueryRouteDeps): void {
  registerGetRoute(app, "/api/event_names", "event_names", EventNamesRequestSchema, deps, runEventNames, { cached: true });
}
