/**
 * The trend rollup (infrastructure/clickhouse/004_trend_rollup.sql): exact event totals of the common trend —
 * a `total` series without filters or breakdown — without scanning every event.
 *
 * Per (team, event, 15-minute UTC slot) two small tables hold:
 *   events_slot_inserts  rows inserted, kept by a materialized view (duplicates included: a change detector);
 *   events_slot_counts   distinct uuids, computed here from `events`, stored with the `inserted` value read
 *                        before the count was computed.
 * A stored count is used only while the slot's `inserted` is still the one it was stored with: no row — late
 * event or redelivered duplicate — reached that slot since, so its distinct uuids are still exactly that count.
 * Every other slot (changed, never counted, and the partial slots at the ends of the range) is counted from
 * `events` in one query, exactly as the raw path counts (uniqExact(uuid)); settled slots (ended over an hour ago)
 * are then stored for the next request. The result is the raw path's, by construction: per bucket the sum of
 * per-slot distinct uuids (a uuid has one timestamp, hence one slot and one bucket, which is also what the raw
 * path's sum of per-bucket counts assumes).
 *
 * Buckets must be unions of whole slots: every bucket start inside the range a multiple of 15 minutes (true for
 * every current time zone offset); otherwise, and before the backfill finished, the raw path answers.
 * `unique_users` and `per_user_avg` never come from here: they need the set of users per bucket and per range,
 * which only uniqExact states could hold, and those were measured slower to read on 18.16 than the raw scan; and
 * after persons (#14) unique users are counted per person, which changes with merges of distinct_ids.
 */
import type { QueryStatistics } from "../../lib/clickhouse/run.ts";
import { ident, or, sql, type SqlFragment } from "../../lib/clickhouse/sql.ts";
import type { Logger } from "../../lib/log/logger.ts";
import type { Executor } from "./execute.ts";
import { bucketKeyOf, bucketStarts, type DateRange, type Interval } from "./time-range.ts";

export const SLOT_S = 900;
/** Slots that ended longer ago than this are stored once counted; newer ones still receive most late events. */
const SETTLED_MS = 3600_000;
/** More separate stretches to recount than this: recount their hull in one range instead of a long OR. */
const MAX_RAW_INTERVALS = 64;
const BACKFILL_MARKER_TTL_MS = 60_000;

export interface RollupSeriesRequest {
  projectId: number;
  /** null: every event. */
  event: string | null;
  interval: Interval;
  timezone: string;
  range: DateRange;
}

export interface RollupResult {
  /** Bucket key (as enumerateBuckets) -> distinct events. Buckets without events are absent. */
  buckets: Map<string, number>;
  total: number;
  statistics: QueryStatistics[];
  /** Slots answered from stored counts / recounted from events (for tests and the benchmark). */
  slotsFromRollup: number;
  slotsRecounted: number;
}

export interface TrendRollupOptions {
  /** The events table, as the query context names it (`events` or `db.events`); the rollup tables sit beside it. */
  table: string;
  /** Stores rows into a table of the same database (JSONEachRow). */
  write: (table: string, rows: Record<string, unknown>[]) => Promise<void>;
  log: Logger;
  now?: () => number;
}

/**
 * True when every bucket boundary inside the range falls on a slot boundary, and, for hours, every hour is 3600 s
 * long: around a half-hour DST change (Australia/Lord_Howe) ClickHouse's hours differ from ours, and the raw
 * path's answer is the reference there.
 */
export function slotAligned(range: DateRange, interval: Interval, tz: string): boolean {
  const starts = bucketStarts(range, interval, tz);
  if (interval === "hour" && starts.some((s, i) => i > 0 && s - starts[i - 1]! !== 3600_000)) return false;
  return starts.every((start) => start <= range.from || (start / 1000) % SLOT_S === 0);
}

export class TrendRollup {
  private backfilled: { value: boolean; at: number } | null = null;

  constructor(private readonly opts: TrendRollupOptions) {}

  private table(name: string): SqlFragment {
    const dot = this.opts.table.lastIndexOf(".");
    return ident(dot < 0 ? name : `${this.opts.table.slice(0, dot)}.${name}`);
  }

  /** The rollup answers only once the backfill of existing events finished (checked once a minute). */
  async ready(execute: Executor): Promise<boolean> {
    const now = Date.now();
    if (this.backfilled && (this.backfilled.value || now - this.backfilled.at < BACKFILL_MARKER_TTL_MS)) return this.backfilled.value;
    try {
      const out = await execute<{ n: string | number }>(sql`SELECT count() AS n FROM ${this.table("rollup_backfills")} WHERE name = 'events_slot_inserts'`, "trends");
      this.backfilled = { value: Number(out.rows[0]?.n ?? 0) > 0, at: now };
    } catch (err) {
      // The tables do not exist yet (migration not applied): the raw path answers.
      this.opts.log.warn({ err: err instanceof Error ? err.message : String(err) }, "trend rollup unavailable");
      this.backfilled = { value: false, at: now };
    }
    return this.backfilled.value;
  }

  async series(execute: Executor, q: RollupSeriesRequest): Promise<RollupResult> {
    const fromS = q.range.from / 1000;
    const toS = q.range.to / 1000;
    const a = Math.ceil(fromS / SLOT_S) * SLOT_S;
    const b = Math.floor(toS / SLOT_S) * SLOT_S;
    const stats: QueryStatistics[] = [];
    const eventCond = q.event === null ? sql`1` : sql`event = ${q.event}`;
    const team = sql`team_id = ${q.projectId}`;

    // 1. What was inserted per slot, and the stored counts (read before any recount: see the header).
    const inserted = new Map<string, number>();
    const stored = new Map<string, { inserted: number; events: number }>();
    if (a < b) {
      const slotRange = sql`slot >= ${new Date(a * 1000)} AND slot < ${new Date(b * 1000)}`;
      const [ins, cnt] = await Promise.all([
        execute<{ event: string; s: number; n: string | number }>(
          sql`SELECT event, toUInt32(slot) AS s, sum(inserted) AS n FROM ${this.table("events_slot_inserts")} WHERE ${team} AND ${slotRange} AND ${eventCond} GROUP BY event, s`,
          "trends",
        ),
        execute<{ event: string; s: number; n: string | number; c: string | number }>(
          sql`SELECT event, toUInt32(slot) AS s, max(inserted) AS n, argMax(events, inserted) AS c FROM ${this.table("events_slot_counts")} WHERE ${team} AND ${slotRange} AND ${eventCond} GROUP BY event, s`,
          "trends",
        ),
      ]);
      stats.push(ins.statistics, cnt.statistics);
      for (const r of ins.rows) inserted.set(`${Number(r.s)}\u0000${r.event}`, Number(r.n));
      for (const r of cnt.rows) stored.set(`${Number(r.s)}\u0000${r.event}`, { inserted: Number(r.n), events: Number(r.c) });
    }

    // 2. Slots whose stored count is missing or outdated are recounted (whole slot, every event in it).
    const stale = new Set<number>();
    for (const [key, n] of inserted) {
      const s = stored.get(key);
      if (!s || s.inserted !== n) stale.add(Number(key.slice(0, key.indexOf("\u0000"))));
    }
    let intervals: [number, number][] = [];
    if (fromS < Math.min(a, toS)) intervals.push([fromS, Math.min(a, toS)]);
    for (const s of [...stale].sort((x, y) => x - y)) {
      const last = intervals.at(-1);
      if (last && last[1] === s) last[1] = s + SLOT_S;
      else intervals.push([s, s + SLOT_S]);
    }
    if (b < toS && b >= a) {
      const last = intervals.at(-1);
      if (last && last[1] === b) last[1] = toS;
      else intervals.push([b, toS]);
    }
    if (a >= b) intervals = [[fromS, toS]];
    if (intervals.length > MAX_RAW_INTERVALS) intervals = [[intervals[0]![0], intervals.at(-1)![1]]];
    const recounted = (s: number) => intervals.some(([x, y]) => s < y && s + SLOT_S > x);

    const recount = new Map<string, number>();
    if (intervals.length > 0) {
      const within = or(intervals.map(([x, y]) => sql`timestamp >= ${new Date(x * 1000)} AND timestamp < ${new Date(y * 1000)}`));
      const raw = await execute<{ event: string; s: number; c: string | number }>(
        sql`SELECT event, intDiv(toUInt32(timestamp), ${SLOT_S}) * ${SLOT_S} AS s, uniqExact(uuid) AS c FROM ${ident(this.opts.table)} WHERE ${team} AND (${within}) AND ${eventCond} GROUP BY event, s`,
        "trends",
      );
      stats.push(raw.statistics);
      for (const r of raw.rows) recount.set(`${Number(r.s)}\u0000${r.event}`, Number(r.c));
    }

    // 3. Per bucket: stored counts of untouched slots + recounted ones.
    const buckets = new Map<string, number>();
    let total = 0;
    const add = (slot: number, events: number) => {
      if (events === 0) return;
      const key = bucketKeyOf(q.interval, q.timezone, Math.max(slot, fromS) * 1000);
      buckets.set(key, (buckets.get(key) ?? 0) + events);
      total += events;
    };
    const slotsFromRollup = new Set<number>();
    for (const [key, s] of stored) {
      const slot = Number(key.slice(0, key.indexOf("\u0000")));
      if (recounted(slot) || inserted.get(key) !== s.inserted) continue;
      slotsFromRollup.add(slot);
      add(slot, s.events);
    }
    for (const [key, c] of recount) add(Number(key.slice(0, key.indexOf("\u0000"))), c);

    // 4. Store the recounted slots that are whole, inside the range and settled, with the `inserted` read in 1.
    const settledBefore = ((this.opts.now ?? Date.now)() - SETTLED_MS) / 1000;
    const rows: Record<string, unknown>[] = [];
    for (const [key, n] of inserted) {
      const slot = Number(key.slice(0, key.indexOf("\u0000")));
      if (!recounted(slot) || slot < a || slot + SLOT_S > b || slot + SLOT_S > settledBefore) continue;
      const s = stored.get(key);
      if (s && s.inserted === n) continue;
      rows.push({
        team_id: q.projectId,
        event: key.slice(key.indexOf("\u0000") + 1),
        slot: new Date(slot * 1000).toISOString().slice(0, 19).replace("T", " "),
        inserted: n,
        events: recount.get(key) ?? 0,
      });
    }
    if (rows.length > 0) {
      // A failed store only means the next request recounts these slots too.
      await this.opts.write(this.tableName("events_slot_counts"), rows).catch((err: unknown) =>
        this.opts.log.warn({ err: err instanceof Error ? err.message : String(err), rows: rows.length }, "could not store trend rollup counts"),
      );
    }
    return { buckets, total, statistics: stats, slotsFromRollup: slotsFromRollup.size, slotsRecounted: new Set([...recount.keys()].map((k) => k.slice(0, k.indexOf("\u0000")))).size };
  }

  private tableName(name: string): string {
    const dot = this.opts.table.lastIndexOf(".");
    return dot < 0 ? name : `${this.opts.table.slice(0, dot)}.${name}`;
  }
}

/** Whether the rollup can answer series `index` of a trend: total math, no filters, no breakdown, aligned buckets. */
export function rollupEligible(
  req: { series: readonly { math: string; filters: readonly unknown[] }[]; filters: readonly unknown[]; breakdown?: readonly unknown[] | undefined; interval: Interval; timezone: string },
  index: number,
  range: DateRange,
): boolean {
  const s = req.series[index]!;
  if (s.math !== "total" || s.filters.length > 0 || req.filters.length > 0 || req.breakdown) return false;
  return slotAligned(range, req.interval, req.timezone);
}
