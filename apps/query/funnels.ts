/**
 * POST /api/funnels: how many users went through 2..10 steps within a conversion window, with the time between
 * consecutive steps. One ClickHouse query (two scans with a breakdown: the top-N values, then the counts).
 *
 * Per user (events in the date range only):
 *   ordered   `windowFunnel(window)` gives the deepest step reached (steps in order, other events allowed in
 *             between, every step within `window` seconds of the step-1 event). ClickHouse 18.16's windowFunnel
 *             takes no mode argument, so `strict` cannot use it (see below).
 *   strict    computed with array functions: the user's events (all of them, deduplicated by uuid) sorted by
 *             (timestamp, uuid); a step-1 event starts a run that goes on only while the very next event matches
 *             the next step within the window. No other event may come in between.
 *   unordered computed with array functions: the most distinct steps done within `window` seconds after any of
 *             the user's step events. Time between steps is not defined for unordered funnels (null).
 * Times between steps (ordered, strict): taken on one path per user: the earliest step-1 event from which the
 * user reaches their deepest step, following the earliest next-step event each time (ordered), or the run
 * itself (strict). Average and median (ClickHouse `quantileExact(0.5)`: the element at position floor(n/2) of
 * the sorted values) over users who reached the later step.
 *
 * Duplicates never count twice: windowFunnel and the timestamp arrays are unaffected by a repeated event, and
 * strict deduplicates by uuid (groupUniqArray) because there a repeated event would break a run.
 * Events in the same second are ordered by windowFunnel as they come (second precision): ties are undefined on
 * every ClickHouse version; the times path requires strictly later next steps.
 */
import type { Hono } from "hono";
import * as v from "valibot";
import type { AuthVariables } from "./auth.ts";
import { registerQueryRoute, type QueryRouteDeps } from "./query-route.ts";
import { join, literal, sql, ident, type SqlFragment } from "../../lib/clickhouse/sql.ts";
import { breakdownValue, filterCondition, FiltersSchema, NameSchema } from "./properties.ts";
import type { DateRange } from "./time-range.ts";
import { DateRangeSchema, ProjectIdSchema, StatisticsSchema, statisticsOf, TimeZoneSchema, type QueryContext } from "./query-context.ts";

export const FUNNEL_ORDERS = ["ordered", "strict", "unordered"] as const;
const UNIT_SECONDS = { second: 1, minute: 60, hour: 3600, day: 86400 } as const;
const MAX_WINDOW_S = 365 * 86400;

export const FunnelStepSchema = v.strictObject({ event: NameSchema, filters: FiltersSchema });

export const FunnelsRequestSchema = v.strictObject({
  project_id: ProjectIdSchema,
  steps: v.pipe(v.array(FunnelStepSchema), v.minLength(2, "at least 2 steps"), v.maxLength(10, "at most 10 steps")),
  filters: FiltersSchema,
  ...DateRangeSchema.entries,
  timezone: TimeZoneSchema,
  window: v.optional(
    v.pipe(
      v.strictObject({
        value: v.pipe(v.number(), v.integer(), v.minValue(1)),
        unit: v.picklist(["second", "minute", "hour", "day"]),
      }),
      v.forward(
        v.check((w) => w.value * UNIT_SECONDS[w.unit] <= MAX_WINDOW_S, `the window must be at most ${MAX_WINDOW_S / 86400} days`),
        ["value"],
      ),
    ),
    { value: 14, unit: "day" },
  ),
  order: v.optional(v.picklist(FUNNEL_ORDERS), "ordered"),
  breakdown: v.optional(NameSchema),
  breakdown_limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)), 25),
});
export type FunnelsRequest = v.InferOutput<typeof FunnelsRequestSchema>;

const StepSchema = v.object({
  step: v.number(),
  event: v.string(),
  count: v.number(),
  conversion_from_first: v.pipe(v.number(), v.description("0..1")),
  conversion_from_previous: v.pipe(v.number(), v.description("0..1")),
  drop_off: v.pipe(v.number(), v.description("users of the previous step who did not reach this one")),
  avg_seconds_from_previous: v.nullable(v.number()),
  median_seconds_from_previous: v.nullable(v.number()),
});

export const FunnelsResponseSchema = v.object({
  order: v.picklist(FUNNEL_ORDERS),
  window_seconds: v.number(),
  date_from: v.string(),
  date_to: v.string(),
  timezone: v.string(),
  breakdown: v.nullable(v.string()),
  method: v.pipe(v.string(), v.description("how ClickHouse computed it: windowFunnel or array functions")),
  notes: v.array(v.string()),
  results: v.array(v.object({ breakdown_value: v.nullable(v.string()), steps: v.array(StepSchema) })),
  clickhouse: StatisticsSchema,
});
export type FunnelsResponse = v.InferOutput<typeof FunnelsResponseSchema>;

export function windowSeconds(req: FunnelsRequest): number {
  return req.window.value * UNIT_SECONDS[req.window.unit];
}

export const NOTES = {
  strict:
    "strict: ClickHouse 18.16's windowFunnel has no 'strict' mode, so strict funnels are computed with array functions over all of each user's events (slower than ordered)",
  unordered: "unordered: time between steps is not defined (null)",
} as const;

/** Per-user rows: `level` (deepest step), `durs` (seconds between consecutive steps), `timed`, optional `bd`. */
function perUserSql(req: FunnelsRequest, projectId: number, range: DateRange, table: string): SqlFragment {
  const W = windowSeconds(req);
  const k = req.steps.length;
  const from = ident(table);
  const conds = req.steps.map((s) => sql`(event = ${s.event} AND ${filterCondition([...req.filters, ...s.filters])})`);
  const range_ = sql`team_id = ${projectId} AND timestamp >= ${new Date(range.from)} AND timestamp < ${new Date(range.to)}`;
  const tieKey = sql`(timestamp, toString(uuid))`;
  const bd = (cond: SqlFragment) => (req.breakdown ? sql`, argMinIf(${breakdownValue(req.breakdown)}, ${tieKey}, ${cond}) AS bd` : sql``);
  const bdCol = req.breakdown ? sql`bd, ` : sql``;
  const steps = Array.from({ length: k }, (_, i) => i + 1);

  if (req.order === "ordered") {
    const arrays = join(steps.map((j) => sql`arraySort(groupArrayIf(toUInt32(timestamp), ${conds[j - 1]!})) AS ${col("t", j)}`));
    // a_j[i]: time of step j on the path from the i-th step-1 event (0 = not reached).
    const chain = join(
      steps.slice(1).map(
        (j) =>
          sql`arrayMap((s, p) -> if(p = 0, 0, arrayFirst(x -> x > p AND x <= s + ${W}, ${col("t", j)})), a1, ${col("a", j - 1)}) AS ${col("a", j)}`,
      ),
    );
    const all = join(steps.map((j) => col("a", j)));
    const durs = join(steps.slice(1).map((j) => sql`toInt64(${col("a", j)}[si]) - toInt64(${col("a", j - 1)}[si])`));
    // Everything in the aggregating SELECT: ClickHouse 18.16 loses subquery columns that are used only inside a
    // lambda ("Unknown identifier"), but sees aliases of the same SELECT.
    return sql`SELECT ${bdCol}level, si > 0 AS timed, durs FROM (
  SELECT distinct_id, windowFunnel(${W})(timestamp, ${join(conds)}) AS level, ${arrays}${bd(conds[0]!)},
    t1 AS a1, ${chain}, arrayFirstIndex(x -> x != 0, arrayElement([${all}], level)) AS si, [${durs}] AS durs
  FROM ${from}
  WHERE ${range_} AND (${join(conds, " OR ")})
  GROUP BY distinct_id
  HAVING level > 0
)`;
  }

  if (req.order === "unordered") {
    const arrays = join(steps.map((j) => sql`groupArrayIf(toUInt32(timestamp), ${conds[j - 1]!}) AS ${col("t", j)}`));
    const depth = sumOf(steps.map((j) => sql`arrayExists(x -> x >= s AND x <= s + ${W}, ${col("t", j)})`));
    const nodurs = literal(steps.slice(1).map(() => 0));
    const anyStep = sql`(${join(conds, " OR ")})`;
    return sql`SELECT ${bdCol}level, 0 AS timed, ${nodurs} AS durs FROM (
  SELECT ${bdCol}arrayReduce('max', arrayMap(s -> ${depth}, arrayConcat(${join(steps.map((j) => col("t", j)))}))) AS level
  FROM (
    SELECT distinct_id, ${arrays}${bd(anyStep)}
    FROM ${from}
    WHERE ${range_} AND ${anyStep}
    GROUP BY distinct_id
  )
  WHERE level > 0
)`;
  }

  // strict: runs over the user's consecutive events.
  const m = (off: number, step: number) => sql`arrayElement(arrayElement(ms, i + ${off}), ${step})`;
  const tsAt = (off: number) => sql`arrayElement(tss, i + ${off})`;
  let depth: SqlFragment = sql`1`;
  for (let j = k; j >= 2; j--) {
    depth = sql`1 + ${m(j - 1, j)} * (${tsAt(j - 1)} <= ${tsAt(0)} + ${W}) * (${depth})`;
  }
  depth = sql`${m(0, 1)} * (${depth})`;
  const durs = join(steps.slice(1).map((j) => sql`toInt64(arrayElement(tss, si + ${j - 1})) - toInt64(arrayElement(tss, si + ${j - 2}))`));
  return sql`SELECT ${bdCol}level, si > 0 AS timed, [${durs}] AS durs FROM (
  SELECT ${bdCol}level, tss, arrayFirstIndex(d -> d = level AND level > 0, depths) AS si
  FROM (
    SELECT ${bdCol}tss, depths, arrayReduce('max', depths) AS level
    FROM (
      SELECT ${bdCol}arrayMap(e -> tupleElement(e, 1), evs) AS tss, arrayMap(e -> tupleElement(e, 3), evs) AS ms,
        arrayMap(i -> ${depth}, arrayEnumerate(tss)) AS depths
      FROM (
        SELECT distinct_id, arraySort(groupUniqArray((toUInt32(timestamp), toString(uuid), [${join(conds)}]))) AS evs${bd(conds[0]!)}
        FROM ${from}
        WHERE ${range_} AND distinct_id IN (SELECT distinct_id FROM ${from} WHERE ${range_} AND ${conds[0]!})
        GROUP BY distinct_id
      )
    )
  )
  WHERE level > 0
)`;
}

const col = (prefix: "t" | "a", j: number) => ident(`${prefix}${j}`);
function sumOf(parts: SqlFragment[]): SqlFragment {
  let acc = parts[0]!;
  for (const p of parts.slice(1)) acc = sql`${acc} + ${p}`;
  return acc;
}

/** The funnel's SQL. Exported for the dialect test and the benchmark's raw-ClickHouse comparison. */
export function funnelSql(req: FunnelsRequest, projectId: number, range: DateRange, table = "events"): SqlFragment {
  const k = req.steps.length;
  const steps = Array.from({ length: k }, (_, i) => i + 1);
  const perUser = perUserSql(req, projectId, range, table);
  const counts = join(steps.map((j) => sql`countIf(level >= ${j})`));
  const timedCond = (j: number) => sql`level >= ${j + 1} AND timed`;
  const avgs = join(steps.slice(1).map((j) => sql`avgIf(durs[${j - 1}], ${timedCond(j - 1)})`));
  const medians = join(steps.slice(1).map((j) => sql`quantileExactIf(0.5)(durs[${j - 1}], ${timedCond(j - 1)})`));
  const timedCounts = join(steps.slice(1).map((j) => sql`countIf(${timedCond(j - 1)})`));
  const aggregates = sql`[${counts}] AS counts, [${avgs}] AS avgs, [${medians}] AS medians, [${timedCounts}] AS timed_counts`;
  if (!req.breakdown) return sql`SELECT ${aggregates} FROM (${perUser})`;
  const top = sql`(SELECT groupArray(bd) FROM (SELECT bd FROM (${perUser}) GROUP BY bd ORDER BY count() DESC, bd LIMIT ${req.breakdown_limit}))`;
  return sql`SELECT if(has(${top}, bd), bd, '$other') AS breakdown_value, ${aggregates}
FROM (${perUser})
GROUP BY breakdown_value`;
}

interface Row {
  breakdown_value?: string;
  counts: (string | number)[];
  avgs: (number | null)[];
  medians: (string | number)[];
  timed_counts: (string | number)[];
}

export async function runFunnel(ctx: QueryContext, req: FunnelsRequest, range: DateRange): Promise<FunnelsResponse> {
  const out = await ctx.execute<Row>(funnelSql(req, ctx.projectId, range, ctx.table), "funnels");
  const results = out.rows.map((r) => ({
    breakdown_value: req.breakdown ? (r.breakdown_value ?? "") : null,
    steps: req.steps.map((s, i) => {
      const count = Number(r.counts[i]);
      const first = Number(r.counts[0]);
      const prev = i === 0 ? count : Number(r.counts[i - 1]);
      const timed = i === 0 ? 0 : Number(r.timed_counts[i - 1]);
      const avg = i === 0 || timed === 0 || req.order === "unordered" ? null : Number(r.avgs[i - 1]);
      const median = i === 0 || timed === 0 || req.order === "unordered" ? null : Number(r.medians[i - 1]);
      return {
        step: i + 1,
        event: s.event,
        count,
        conversion_from_first: first === 0 ? 0 : count / first,
        conversion_from_previous: prev === 0 ? 0 : count / prev,
        drop_off: prev - count,
        avg_seconds_from_previous: avg,
        median_seconds_from_previous: median,
      };
    }),
  }));
  results.sort((a, b) => {
    if (a.breakdown_value === "$other" || b.breakdown_value === "$other") return a.breakdown_value === "$other" ? 1 : -1;
    return b.steps[0]!.count - a.steps[0]!.count || Buffer.compare(Buffer.from(a.breakdown_value ?? ""), Buffer.from(b.breakdown_value ?? ""));
  });
  const notes: string[] = [];
  if (req.order === "strict") notes.push(NOTES.strict);
  if (req.order === "unordered") notes.push(NOTES.unordered);
  return {
    order: req.order,
    window_seconds: windowSeconds(req),
    date_from: new Date(range.from).toISOString(),
    date_to: new Date(range.to).toISOString(),
    timezone: req.timezone,
    breakdown: req.breakdown ?? null,
    method: req.order === "ordered" ? "windowFunnel" : "array functions",
    notes,
    results,
    clickhouse: statisticsOf([out.statistics]),
  };
}

export function registerFunnels(app: Hono<{ Variables: AuthVariables }>, deps: QueryRouteDeps): void {
  registerQueryRoute(app, "/api/funnels", "funnels", FunnelsRequestSchema, deps, runFunnel, (_ctx, req) => ({
    // Strict and unordered funnels sort every user's events: their own hold-time estimate.
    kind: req.order === "ordered" ? "funnels" : `funnels_${req.order}`,
    queries: 1,
  }));
}
