/**
 * GET /api/persons/{distinct_id}: the person a distinct_id belongs to, with all of its distinct_ids and its
 * properties, as queries see it (ClickHouse's copy of person state: the highest version per distinct_id and per
 * person; see docs/persons.md). A distinct_id that never took part in a merge or carried person properties has no
 * person record (404 `not_found`); trends and funnels count such an id as a person of its own.
 */
import type { Context, Hono } from "hono";
import * as v from "valibot";
import { ident, sql, type SqlFragment } from "../../lib/clickhouse/sql.ts";
import type { QueryStatistics } from "../../lib/clickhouse/run.ts";
import type { AuthVariables } from "./auth.ts";
import { QueryApiError } from "./errors.ts";
import { tablesOf } from "./event-source.ts";
import { NameSchema } from "./properties.ts";
import { statisticsOf, StatisticsSchema, type QueryContext } from "./query-context.ts";
import { admitted, type QueryRouteDeps } from "./query-route.ts";
import { parseRequest } from "./validation.ts";

export const PersonParamsSchema = v.strictObject({ distinct_id: NameSchema });

export const PersonResponseSchema = v.object({
  id: v.pipe(v.string(), v.description("the person's id (UUID)")),
  distinct_ids: v.pipe(v.array(v.string()), v.description("every distinct_id of the person, sorted")),
  properties: v.record(v.string(), v.unknown()),
  is_identified: v.boolean(),
  created_at: v.pipe(v.string(), v.description("ISO instant: the earliest event of the merged persons")),
  clickhouse: StatisticsSchema,
});
export type PersonResponse = v.InferOutput<typeof PersonResponseSchema>;

/** The person of one distinct_id. Exported for the dialect test. */
export function personOfSql(projectId: number, distinctId: string, table = "events"): SqlFragment {
  const t = tablesOf(table);
  return sql`SELECT argMax(person_id, version) AS person_id, count() AS n FROM ${ident(t.personDistinctId)} WHERE team_id = ${projectId} AND distinct_id = ${distinctId}`;
}

/** The person's distinct_ids and properties. Exported for the dialect test. */
export function personSql(projectId: number, personId: string, table = "events"): SqlFragment {
  const t = tablesOf(table);
  const pdi = ident(t.personDistinctId);
  // Only ids that ever pointed at this person can point at it now: read their rows, keep those whose highest
  // version still does.
  const ids = sql`SELECT groupArray(distinct_id) FROM (
  SELECT distinct_id FROM (SELECT distinct_id, argMax(person_id, version) AS p FROM ${pdi}
    WHERE team_id = ${projectId} AND distinct_id IN (SELECT distinct_id FROM ${pdi} WHERE team_id = ${projectId} AND person_id = ${personId})
    GROUP BY distinct_id)
  WHERE p = ${personId} ORDER BY distinct_id)`;
  return sql`SELECT (${ids}) AS distinct_ids, argMax(properties, version) AS properties, argMax(is_identified, version) AS is_identified,
  toUnixTimestamp(argMax(created_at, version)) AS created_at, count() AS n
FROM ${ident(t.persons)} WHERE team_id = ${projectId} AND id = ${personId}`;
}

export async function runPerson(ctx: QueryContext, distinctId: string): Promise<PersonResponse> {
  const stats: QueryStatistics[] = [];
  const of = await ctx.execute<{ person_id: string; n: string | number }>(personOfSql(ctx.projectId, distinctId, ctx.table), "persons");
  stats.push(of.statistics);
  const personId = of.rows[0]?.person_id;
  if (!personId || Number(of.rows[0]!.n) === 0) throw new QueryApiError("not_found", "no person has this distinct_id", "distinct_id");
  const out = await ctx.execute<{ distinct_ids: string[]; properties: string; is_identified: number | string; created_at: number | string; n: number | string }>(
    personSql(ctx.projectId, personId, ctx.table),
    "persons",
  );
  stats.push(out.statistics);
  const r = out.rows[0];
  // The id mapping is written after the person row, so a person row exists whenever a mapping does; should it
  // not (a copy still in flight), the person has no properties yet.
  const found = r && Number(r.n) > 0;
  return {
    id: personId,
    distinct_ids: r?.distinct_ids.length ? r.distinct_ids : [distinctId],
    properties: found ? (JSON.parse(r.properties) as Record<string, unknown>) : {},
    is_identified: found ? Number(r.is_identified) === 1 : false,
    created_at: new Date((found ? Number(r.created_at) : 0) * 1000).toISOString().replace(".000Z", "Z"),
    clickhouse: statisticsOf(stats),
  };
}

export function registerPersons(app: Hono<{ Variables: AuthVariables }>, deps: QueryRouteDeps): void {
  app.get("/api/persons/:distinct_id", async (c: Context<{ Variables: AuthVariables }>) => {
    const { distinct_id } = parseRequest(PersonParamsSchema, { distinct_id: c.req.param("distinct_id") });
    const ctx: QueryContext = { projectId: c.get("projectId"), execute: deps.execute, table: deps.table };
    c.header("Cache-Control", "no-store");
    return c.json(await admitted(deps.admission, ctx, { kind: "persons", queries: 1 }, c.req.raw.signal, (admittedCtx) => runPerson(admittedCtx, distinct_id)));
  });
}
