/**
 * POST /api/funnels: how many persons went through 2..10 steps within a conversion window, with the time between
 * consecutive steps. One ClickHouse query (two scans with a breakdown: the top-N values, then the counts).
 *
 * Per person (all of the person's distinct_ids, resolved at query time; events in the date range only), events
 * in one order: instant in ms, then the lowest step the event matches, then uuid (see perUserSql):
 *   ordered   steps in order, other events allowed in between, every step within `window` of the step-1 event.
 *   strict    the person's events (all of them, deduplicated by uuid) in that order; a step-1 event starts a run
 *             that goes on only while the very next event matches the next step within the window.
 *   unordered the most distinct steps done within `window` after any of the person's step events. Time between
 *             steps is not defined for unordered funnels (null).
 * All three are array functions: 18.16's windowFunnel takes only a UInt32 of seconds and no mode argument.
 * Times between steps (ordered, strict): taken on one path per person: the earliest step-1 event from which the
 * person reaches their deepest step, following the earliest next-step event each time (ordered), or the run
 * itself (strict). Average and median (ClickHouse `quantileExact(0.5)`: the element at position floor(n/2) of
 * the sorted values) over persons who reached the later step, in seconds with millisecond precision.
 *
 * Duplicates never count twice: every order works on groupUniqArray of the events, or on arrays a repeated
 * instant does not change.
 */
import type { Hono } from "hono";
import * as v from "valibot";
import type { AuthVariables } from "./auth.ts";
import { registerQueryRoute, type QueryRouteDeps } from "./query-route.ts";
import { join, literal, sql, ident, type SqlFragment } from "../../lib/clickhouse/sql.ts";
import { BreakdownSchema, breakdownValue, filterCondition, FiltersSchema, NameSchema, usesPersonProperties } from "./properties.ts";
import { eventSource, tablesOf, type PersonMode, type SourceTables } from "./event-source.ts";
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
  breakdown: v.optional(BreakdownSchema),
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
  breakdown: v.nullable(BreakdownSchema),
  method: v.pipe(v.string(), v.description("how ClickHouse computed it (array functions)")),
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

/**
 * Per-person rows: `level` (deepest step), `durs` (ms between consecutive steps), `timed`, optional `bd`.
 *
 * Order of a person's events: instant in ms (`tk`), then the lowest step the event matches. Packed into one
 * UInt64 `K = tk * 16 + lowest step` (steps <= 10), so events at the very same instant count in the order of
 * the steps (a batch `signup` + `purchase` converts). A path needs strictly increasing K: one event never fills
 * two steps, and neither do two copies of one event (same uuid, same K) nor two events at one instant matching
 * the same lowest step. (windowFunnel cannot do this: on 18.16 its timestamp is a UInt32 of seconds, and
 * versions differ in how they order events of one timestamp.)
 */
function perUserSql(req: FunnelsRequest, projectId: number, range: DateRange, tables: SourceTables, mode: PersonMode): SqlFragment {
  const W = windowSeconds(req) * 1000;
  const k = req.steps.length;
  const conds = req.steps.map((s) => sql`(event = ${s.event} AND ${filterCondition([...req.filters, ...s.filters])})`);
  const inRange = sql`team_id = ${projectId} AND timestamp >= ${new Date(range.from)} AND timestamp < ${new Date(range.to)}`;
  const names = [...new Set(req.steps.map((s) => s.event))];
  const stepSource = eventSource({ projectId, tables, where: sql`${inRange} AND event IN (${join(names)})`, persons: mode });
  const steps = Array.from({ length: k }, (_, i) => i + 1);
  // Per event, computed once: the packed order key `k` and the steps it matches as a bitmask `mb`. The aggregating
  // SELECT below only names these small columns: ClickHouse expands aliases into the AST, and the step conditions
  // repeated in every alias made a 10-step funnel exceed 18.16's AST limit. (One bitmask rather than a column per
  // step: 18.16 drops a subquery column whose only use is inside a lambda, as t2..tk are in the chain below.)
  const m = (j: number) => sql`(bitAnd(mb, ${2 ** (j - 1)}) != 0)`;
  const anyStep = sql`(mb != 0)`;
  const cols = [
    sql`person`,
    sql`tk`,
    sql`tk * 16 + multiIf(${join(conds.flatMap((c, i) => [c, sql`${i + 1}`]))}, ${k + 1}) AS k`,
    sql`toUInt16(${sumOf(conds.map((c, i) => sql`${c} * ${2 ** i}`))}) AS mb`,
  ];
  if (req.breakdown || req.order === "strict") cols.push(sql`toString(uuid) AS u`);
  if (req.breakdown) cols.push(sql`${breakdownValue(req.breakdown)} AS bdv`);
  const perEvent = (source: SqlFragment, where: SqlFragment) => sql`SELECT ${join(cols)} FROM (${source}) WHERE ${where}`;
  // The breakdown value on the person's first (in event order) event matching `cond`.
  const bd = (cond: SqlFragment) => (req.breakdown ? sql`, argMinIf(bdv, (k, u), ${cond}) AS bd` : sql``);
  const bdCol = req.breakdown ? sql`bd, ` : sql``;

  if (req.order === "ordered") {
    const arrays = join(steps.map((j) => sql`arraySort(groupArrayIf(k, ${m(j)})) AS ${col("t", j)}`));
    // a_j[n]: K of step j on the path from the n-th step-1 event, following the earliest next step each time
    // (0 = not reached). Earliest-next is optimal: it leaves the most later events to choose from.
    const chain = join(
      steps.slice(1).map(
        (j) =>
          sql`arrayMap((s, p) -> if(p = 0, 0, arrayFirst(x -> x > p AND intDiv(x, 16) <= intDiv(s, 16) + ${W}, ${col("t", j)})), a1, ${col("a", j - 1)}) AS ${col("a", j)}`,
      ),
    );
    const all = steps.map((j) => col("a", j));
    const depth = sumOf(steps.map((j) => sql`(${col("x", j)} != 0)`));
    const durs = join(steps.slice(1).map((j) => sql`toInt64(intDiv(arrayElement(${col("a", j)}, si), 16)) - toInt64(intDiv(arrayElement(${col("a", j - 1)}, si), 16))`));
    // The chain in the aggregating SELECT (18.16 drops subquery columns used only inside a lambda, so t_j must be
    // aliases of the same SELECT); the path's times one level out, where a_j are plain columns: within one SELECT
    // every use of an alias is expanded, and si's expansion in each duration made 10 steps slow to analyse.
    return sql`SELECT ${bdCol}level, si > 0 AS timed, [${durs}] AS durs FROM (
  SELECT ${bdCol}level, ${join(all)}, arrayFirstIndex(d -> d = level, depths) AS si FROM (
    SELECT person, ${arrays}${bd(m(1))},
      t1 AS a1, ${chain},
      arrayMap((${join(steps.map((j) => col("x", j)))}) -> ${depth}, ${join(all)}) AS depths,
      arrayReduce('max', arrayPushBack(depths, 0)) AS level
    FROM (${perEvent(stepSource, join(conds, " OR "))})
    GROUP BY person
    HAVING level > 0
  )
)`;
  }

  if (req.order === "unordered") {
    const arrays = join(steps.map((j) => sql`groupArrayIf(tk, ${m(j)}) AS ${col("t", j)}`));
    const depth = sumOf(steps.map((j) => sql`arrayExists(x -> x >= s AND x <= s + ${W}, ${col("t", j)})`));
    const nodurs = literal(steps.slice(1).map(() => 0));
    return sql`SELECT ${bdCol}level, 0 AS timed, ${nodurs} AS durs FROM (
  SELECT ${bdCol}arrayReduce('max', arrayMap(s -> ${depth}, arrayConcat(${join(steps.map((j) => col("t", j)))}))) AS level
  FROM (
    SELECT person, ${arrays}${bd(anyStep)}
    FROM (${perEvent(stepSource, join(conds, " OR "))})
    GROUP BY person
  )
  WHERE level > 0
)`;
  }

  // strict: runs over the person's consecutive events (all of them, not only step events, deduplicated by
  // uuid), in the order (K, uuid); each next event must match the next step at a later K.
  const allSource = eventSource({ projectId, tables, where: inRange, persons: mode });
  const firstSource = eventSource({ projectId, tables, where: sql`${inRange} AND event = ${req.steps[0]!.event}`, persons: mode });
  const matchAt = (off: number, step: number) => sql`(bitAnd(arrayElement(ms, i + ${off}), ${2 ** (step - 1)}) != 0)`;
  const tsAt = (off: number) => sql`arrayElement(ks, i + ${off})`;
  let depth: SqlFragment = sql`1`;
  for (let j = k; j >= 2; j--) {
    depth = sql`1 + ${matchAt(j - 1, j)} * (${tsAt(j - 2)} < ${tsAt(j - 1)}) * (intDiv(${tsAt(j - 1)}, 16) <= intDiv(${tsAt(0)}, 16) + ${W}) * (${depth})`;
  }
  depth = sql`${matchAt(0, 1)} * (${depth})`;
  const durs = join(steps.slice(1).map((j) => sql`toInt64(intDiv(arrayElement(ks, si + ${j - 1}), 16)) - toInt64(intDiv(arrayElement(ks, si + ${j - 2}), 16))`));
  // As for ordered: the depths in the aggregating SELECT (ks and ms are captured by the lambda), the path one level
  // out, so si is not expanded into every duration.
  return sql`SELECT ${bdCol}level, si > 0 AS timed, [${durs}] AS durs FROM (
  SELECT ${bdCol}level, ks, arrayFirstIndex(d -> d = level AND level > 0, depths) AS si FROM (
    SELECT person, arraySort(groupUniqArray((k, u, mb))) AS evs${bd(m(1))},
      arrayMap(e -> tupleElement(e, 1), evs) AS ks, arrayMap(e -> tupleElement(e, 3), evs) AS ms,
      arrayMap(i -> ${depth}, arrayEnumerate(ks)) AS depths,
      arrayReduce('max', arrayPushBack(depths, 0)) AS level
    FROM (${perEvent(allSource, sql`person IN (SELECT person FROM (${firstSource}) WHERE ${conds[0]!})`)})
    GROUP BY person
    HAVING level > 0
  )
)`;
}

const col = (prefix: "t" | "a" | "x", j: number) => ident(`${prefix}${j}`);
function sumOf(parts: SqlFragment[]): SqlFragment {
  let acc = parts[0]!;
  for (const p of parts.slice(1)) acc = sql`${acc} + ${p}`;
  return acc;
}

/** The funnel's SQL. Exported for the dialect test and the benchmark's raw-ClickHouse comparison. */
export function funnelSql(req: FunnelsRequest, projectId: number, range: DateRange, table = "events", mode?: PersonMode): SqlFragment {
  const k = req.steps.length;
  const steps = Array.from({ length: k }, (_, i) => i + 1);
  const personMode = mode ?? (usesPersonProperties([...req.filters, ...req.steps.flatMap((s) => s.filters)], req.breakdown ? [req.breakdown] : []) ? "person_properties" : "person");
  const perUser = perUserSql(req, projectId, range, tablesOf(table), personMode);
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
      // ClickHouse works in ms; the API answers seconds (with ms precision).
      const avg = i === 0 || timed === 0 || req.order === "unordered" ? null : Number(r.avgs[i - 1]) / 1000;
      const median = i === 0 || timed === 0 || req.order === "unordered" ? null : Number(r.medians[i - 1]) / 1000;
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
    method: "array functions",
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
