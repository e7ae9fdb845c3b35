/**
 * GET /api/events: the project's newest events, newest first, for the insights page's live view (and anyone who
 * wants to see what arrived), newest instant (`timestamp` + `msec`) first. `after` (inclusive, to the millisecond) lets
 * a poller ask only for what is new; `before` (exclusive) pages back. Never cached: the point is to see ingestion
 * happen.
 *
 * Two steps in one query, so a large project does not read every event's properties: a scalar subquery reads only
 * `timestamp` to find the instant where the page starts, and the outer query reads whole rows from that instant on
 * (the primary key starts with `(team_id, toDate(timestamp))`, so that is a narrow range). Duplicate rows (same
 * uuid before ReplacingMergeTree merges them) are dropped with `LIMIT 1 BY uuid`; both run on 18.16.
 *
 * Properties larger than PROPERTIES_CAP bytes are not sent (`properties: null`, their size in `properties_bytes`),
 * which bounds a response at about limit x cap.
 */
import type { Hono } from "hono";
import * as v from "valibot";
import { and, ident, sql, type SqlFragment } from "../../lib/clickhouse/sql.ts";
import type { AuthVariables } from "./auth.ts";
import { intParam, registerGetRoute } from "./get-route.ts";
import { NameSchema } from "./properties.ts";
import { statisticsOf, StatisticsSchema, type QueryContext } from "./query-context.ts";
import type { QueryRouteDeps } from "./query-route.ts";

export const MAX_EVENTS = 200;
export const PROPERTIES_CAP = 65_536;

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** An ISO 8601 instant with `Z` or an offset, as milliseconds; DateTime's range (1970..2106). */
const InstantSchema = v.optional(
  v.pipe(
    v.string(),
    v.regex(ISO_INSTANT, "must be an ISO 8601 instant with Z or an offset, e.g. 2024-11-01T12:00:00Z"),
    v.description("ISO 8601 instant with Z or an offset"),
    v.transform((s) => Date.parse(s)),
    v.check((ms) => Number.isFinite(ms) && ms >= 0 && ms < 4294967295000, "must be a valid instant between 1970 and 2106"),
  ),
);

export const EventsRequestSchema = v.strictObject({
  limit: intParam(100, 1, MAX_EVENTS, `how many events, newest first (1..${MAX_EVENTS}, default 100)`),
  after: v.pipe(InstantSchema, v.description("only events at or after this instant (inclusive: de-duplicate by uuid)")),
  before: v.pipe(InstantSchema, v.description("only events before this instant (exclusive), to page back")),
  event: v.pipe(v.optional(NameSchema), v.description("only this event name")),
  distinct_id: v.pipe(v.optional(NameSchema), v.description("only this distinct_id")),
});
export type EventsRequest = v.InferOutput<typeof EventsRequestSchema>;

export const EventSchema = v.object({
  uuid: v.string(),
  event: v.string(),
  distinct_id: v.string(),
  timestamp: v.pipe(v.string(), v.description("ISO instant, UTC, with milliseconds")),
  properties: v.pipe(v.nullable(v.record(v.string(), v.unknown())), v.description(`null when larger than ${PROPERTIES_CAP} bytes`)),
  properties_bytes: v.number(),
});

export const EventsResponseSchema = v.object({
  results: v.array(EventSchema),
  clickhouse: StatisticsSchema,
});
export type EventsResponse = v.InferOutput<typeof EventsResponseSchema>;

interface Row {
  uuid: string;
  event: string;
  distinct_id: string;
  ts: number | string;
  msec: number | string;
  properties: string;
  properties_bytes: number | string;
}

/** Exported for the dialect test. */
export function eventsSql(req: EventsRequest, projectId: number, table = "events"): SqlFragment {
  const conds: SqlFragment[] = [sql`team_id = ${projectId}`];
  // The instant is `timestamp` (seconds) + `msec`: the whole-second bound lets the primary key narrow the scan,
  // the millisecond one is exact.
  const instant = sql`toUInt64(toUnixTimestamp(timestamp)) * 1000 + msec`;
  if (req.after !== undefined) {
    conds.push(sql`timestamp >= ${new Date(Math.floor(req.after / 1000) * 1000)}`, sql`${instant} >= ${req.after}`);
  }
  if (req.before !== undefined) {
    conds.push(sql`timestamp < ${new Date(Math.ceil(req.before / 1000) * 1000)}`, sql`${instant} < ${req.before}`);
  }
  if (req.event !== undefined) conds.push(sql`event = ${req.event}`);
  if (req.distinct_id !== undefined) conds.push(sql`distinct_id = ${req.distinct_id}`);
  const where = and(conds);
  const from = ident(table);
  // The instant of the (2 x limit)-th newest row: twice the page, so duplicate rows (rare: redeliveries not yet
  // merged) do not shorten it; de-duplicating here instead (LIMIT 1 BY uuid) would read every uuid of the project.
  // min() over no rows is 1970-01-01: the outer query then finds nothing either.
  const cutoff = sql`(SELECT min(timestamp) FROM (SELECT timestamp FROM ${from} WHERE ${where} ORDER BY timestamp DESC LIMIT ${req.limit * 2}))`;
  return sql`SELECT toString(uuid) AS uuid, event, distinct_id, toUnixTimestamp(timestamp) AS ts, msec,
  if(length(properties) > ${PROPERTIES_CAP}, '', properties) AS properties, length(properties) AS properties_bytes
FROM ${from}
WHERE ${where} AND timestamp >= ${cutoff}
ORDER BY timestamp DESC, msec DESC, uuid DESC
LIMIT 1 BY uuid
LIMIT ${req.limit}`;
}

function parseProperties(text: string): Record<string, unknown> | null {
  if (text === "") return null;
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export async function runEvents(ctx: QueryContext, req: EventsRequest): Promise<EventsResponse> {
  const out = await ctx.execute<Row>(eventsSql(req, ctx.projectId, ctx.table), "events");
  return {
    results: out.rows.map((r) => ({
      uuid: r.uuid,
      event: r.event,
      distinct_id: r.distinct_id,
      timestamp: new Date(Number(r.ts) * 1000 + Number(r.msec)).toISOString(),
      properties: parseProperties(r.properties),
      properties_bytes: Number(r.properties_bytes),
    })),
    clickhouse: statisticsOf([out.statistics]),
  };
}

export function registerEvents(app: Hono<{ Variables: AuthVariables }>, deps: QueryRouteDeps): void {
  registerGetRoute(app, "/api/events", "events", EventsRequestSchema, deps, (ctx, req) => runEvents(ctx, req));
}
