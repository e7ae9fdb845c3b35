/**
 * GET /api/property_keys: property keys seen on the project's events (optionally of one event name), with how
 * many of the sampled events carry each, most common first. Feeds the insights page's filter and breakdown
 * suggestions.
 *
 * A sample, not a census: the keys of the first SAMPLE_SIZE events ClickHouse reads in the period. Reading every
 * event's key array over a month costs seconds on a large project; a suggestion list does not need that, and the
 * page still accepts any key typed by hand. Cached like trends (`QUERY_CACHE_TTL_S`).
 */
import type { Hono } from "hono";
import * as v from "valibot";
import { and, ident, sql, type SqlFragment } from "../../lib/clickhouse/sql.ts";
import type { AuthVariables } from "./auth.ts";
import { intParam, registerGetRoute } from "./get-route.ts";
import { NameSchema } from "./properties.ts";
import { statisticsOf, StatisticsSchema, type QueryContext } from "./query-context.ts";
import type { QueryRouteDeps } from "./query-route.ts";

export const SAMPLE_SIZE = 10_000;
export const MAX_KEYS = 500;

export const PropertyKeysRequestSchema = v.strictObject({
  event: v.pipe(v.optional(NameSchema), v.description("only keys of this event name")),
  days: intParam(30, 1, 3650, "look back this many days from now (1..3650, default 30)"),
});
export type PropertyKeysRequest = v.InferOutput<typeof PropertyKeysRequestSchema>;

export const PropertyKeysResponseSchema = v.object({
  results: v.array(v.object({ key: v.string(), count: v.pipe(v.number(), v.description("sampled events that carry the key")) })),
  sampled_events: v.pipe(v.number(), v.description(`events sampled (at most ${SAMPLE_SIZE})`)),
  clickhouse: StatisticsSchema,
});
export type PropertyKeysResponse = v.InferOutput<typeof PropertyKeysResponseSchema>;

interface Row {
  key: string;
  count: number | string;
  sampled: number | string;
}

/** Exported for the dialect test. */
export function propertyKeysSql(req: PropertyKeysRequest, projectId: number, now: number, table = "events"): SqlFragment {
  const conds = [sql`team_id = ${projectId}`, sql`timestamp >= ${new Date(Math.floor(now / 1000) * 1000 - req.days * 86_400_000)}`];
  if (req.event !== undefined) conds.push(sql`event = ${req.event}`);
  // arrayDistinct: a key repeated in one event's array (capture never writes one) still counts that event once.
  const sample = sql`(SELECT prop_keys FROM ${ident(table)} WHERE ${and(conds)} LIMIT ${SAMPLE_SIZE})`;
  return sql`SELECT key, count() AS count, (SELECT count() FROM ${sample}) AS sampled
FROM ${sample}
ARRAY JOIN arrayDistinct(prop_keys) AS key
GROUP BY key
ORDER BY count DESC, key
LIMIT ${MAX_KEYS}`;
}

export async function runPropertyKeys(ctx: QueryContext, req: PropertyKeysRequest, now: number): Promise<PropertyKeysResponse> {
  const out = await ctx.execute<Row>(propertyKeysSql(req, ctx.projectId, now, ctx.table), "property_keys");
  return {
    results: out.rows.map((r) => ({ key: r.key, count: Number(r.count) })),
    sampled_events: out.rows.length ? Number(out.rows[0]!.sampled) : 0,
    clickhouse: statisticsOf([out.statistics]),
  };
}

export function registerPropertyKeys(app: Hono<{ Variables: AuthVariables }>, deps: QueryRouteDeps): void {
  registerGetRoute(app, "/api/property_keys", "property_keys", PropertyKeysRequestSchema, deps, runPropertyKeys, { cached: true });
}
