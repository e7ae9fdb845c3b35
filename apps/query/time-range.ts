/**
 * Date ranges, time zones and buckets. Buckets are the project's local hours/days/weeks/months (IANA zone), so a
 * day across a DST change is 23 or 25 hours long and still one bucket. ClickHouse computes each event's bucket
 * (`toDate(ts, tz)`, `toMonday`, `toStartOfMonth`, `toStartOfHour(ts, tz)`: all verified on 18.16 and current);
 * this module enumerates the same buckets in TypeScript so empty ones can be filled with 0.
 *
 * Ranges are half-open instants [from, to). Accepted forms for `date_from` / `date_to`:
 *   - relative: `-24h`, `-7d`, `-2w`, `-1m` (months), `-1y`. As `date_from` it means the start of that local
 *     hour/day N units ago; as `date_to` it includes the whole unit it names (`-1d` = through the end of yesterday).
 *   - a local date `2024-03-01`: `date_from` = its local midnight, `date_to` = through the end of that day;
 *   - a local date-time `2024-03-01T10:00[:00]` (project time zone), or an instant with `Z` / `+02:00`.
 */
import type { SqlFragment } from "../../lib/clickhouse/sql.ts";
import { sql } from "../../lib/clickhouse/sql.ts";

export const INTERVALS = ["hour", "day", "week", "month"] as const;
export type Interval = (typeof INTERVALS)[number];

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(tz, f);
  }
  return f;
}

/** True for IANA names the runtime knows (the same tzdata family ClickHouse uses). */
export function isTimeZone(tz: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(tz)) return false;
  try {
    formatter(tz);
    return true;
  } catch {
    return false;
  }
}

export interface LocalParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

export function localParts(tz: string, ms: number): LocalParts {
  const out: Record<string, number> = {};
  for (const p of formatter(tz).formatToParts(new Date(ms))) if (p.type !== "literal") out[p.type] = Number(p.value);
  return {
    year: out.year!,
    month: out.month!,
    day: out.day!,
    hour: out.hour! % 24,
    minute: out.minute!,
    second: out.second!,
  };
}

/** Offset of local time from UTC at instant `ms`, in milliseconds. */
export function offsetMs(tz: string, ms: number): number {
  const p = localParts(tz, ms);
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return wall - Math.floor(ms / 1000) * 1000;
}

/** The instant of a local wall time (for times skipped by DST, the instant just after the gap). */
export function localToInstant(tz: string, y: number, m: number, d: number, h = 0, min = 0, s = 0): number {
  const wall = Date.UTC(y, m - 1, d, h, min, s);
  const first = wall - offsetMs(tz, wall);
  const second = wall - offsetMs(tz, first);
  return offsetMs(tz, second) === offsetMs(tz, first) ? Math.min(first, second) : Math.max(first, second);
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");
const dateKey = (y: number, m: number, d: number) => `${pad(y, 4)}-${pad(m)}-${pad(d)}`;

/** `YYYY-MM-DD` of a UTC calendar day number (days since 1970-01-01). */
function dayNumberKey(dayNumber: number): string {
  return new Date(dayNumber * 86400000).toISOString().slice(0, 10);
}

function dayNumber(y: number, m: number, d: number): number {
  return Date.UTC(y, m - 1, d) / 86400000;
}

export interface DateRange {
  /** Inclusive start, ms (whole seconds). */
  from: number;
  /** Exclusive end, ms (whole seconds). */
  to: number;
}

export class DateRangeError extends Error {
  constructor(
    readonly field: "date_from" | "date_to",
    message: string,
  ) {
    super(message);
  }
}

const RELATIVE = /^-(\d{1,4})([hdwmy])$/;
const LOCAL_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
// Seconds may carry a fraction of 1-9 digits (`Date.toISOString()` writes 3); it is kept to the millisecond,
// then date_from rounds down and date_to up to DateTime's whole seconds.
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?$/;

/** Start of the local day `days` days before/after the local day of `ms`. */
function localDayStart(tz: string, ms: number, days = 0): number {
  const p = localParts(tz, ms);
  const n = dayNumber(p.year, p.month, p.day) + days;
  const d = new Date(n * 86400000);
  return localToInstant(tz, d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate());
}

function localHourStart(tz: string, ms: number): number {
  const p = localParts(tz, ms);
  return Math.floor(ms / 1000) * 1000 - (p.minute * 60 + p.second) * 1000;
}

function relativePoint(tz: string, now: number, n: number, unit: string, end: boolean): number {
  // For date_to a relative point includes the unit it names: the boundary is one unit later.
  const k = end ? n - 1 : n;
  switch (unit) {
    case "h":
      return localHourStart(tz, now - k * 3600_000);
    case "d":
      return localDayStart(tz, now, -k);
    case "w":
      return localDayStart(tz, now, -7 * k);
    case "m":
    case "y": {
      const p = localParts(tz, now);
      const months = unit === "m" ? k : 12 * k;
      const total = p.year * 12 + (p.month - 1) - months;
      const y = Math.floor(total / 12);
      const m = (total % 12) + 1;
      const lastDay = new Date(Date.UTC(y, m, 0)).getUTCDate();
      return localToInstant(tz, y, m, Math.min(p.day, lastDay));
    }
  }
  throw new Error(`unknown unit ${unit}`);
}

function parsePoint(field: "date_from" | "date_to", value: string, tz: string, now: number): number {
  const end = field === "date_to";
  const rel = RELATIVE.exec(value);
  if (rel) return relativePoint(tz, now, Number(rel[1]), rel[2]!, end);
  const date = LOCAL_DATE.exec(value);
  if (date) {
    const [y, m, d] = [Number(date[1]), Number(date[2]), Number(date[3])];
    checkCalendar(field, y, m, d, 0, 0, 0);
    const start = localToInstant(tz, y, m, d);
    return end ? localDayStart(tz, start, 1) : start;
  }
  const dt = DATE_TIME.exec(value);
  if (dt) {
    const [y, m, d, h, mi, s] = [1, 2, 3, 4, 5, 6].map((i) => Number(dt[i] ?? 0)) as [number, number, number, number, number, number];
    checkCalendar(field, y, m, d, h, mi, s);
    // Whole milliseconds, rounded up: a date_to of 01:59:59.0001 must still include that second.
    const fraction = dt[7] ? Math.ceil(Number(`0.${dt[7]}`) * 1000) : 0;
    const zone = dt[8];
    if (!zone) return localToInstant(tz, y, m, d, h, mi, s) + fraction;
    const wall = Date.UTC(y, m - 1, d, h, mi, s) + fraction;
    if (zone === "Z") return wall;
    const sign = zone[0] === "-" ? -1 : 1;
    const offset = sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
    return wall - offset;
  }
  throw new DateRangeError(field, `expected -N[h|d|w|m|y], YYYY-MM-DD or an ISO date-time, got ${JSON.stringify(value)}`);
}

function checkCalendar(field: "date_from" | "date_to", y: number, m: number, d: number, h: number, mi: number, s: number) {
  const t = new Date(Date.UTC(y, m - 1, d, h, mi, s));
  const ok =
    t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d && t.getUTCHours() === h && t.getUTCMinutes() === mi && t.getUTCSeconds() === s;
  if (!ok) throw new DateRangeError(field, "not a valid calendar date/time");
}

// DateTime's range; also keeps bucket enumeration bounded.
const MIN_MS = Date.UTC(1970, 0, 2);
const MAX_MS = Date.UTC(2105, 11, 31);

export function resolveDateRange(
  input: { date_from?: string | undefined; date_to?: string | undefined },
  tz: string,
  now: number,
): DateRange {
  const from = Math.floor(parsePoint("date_from", input.date_from ?? "-7d", tz, now) / 1000) * 1000;
  const to = input.date_to === undefined ? Math.floor(now / 1000) * 1000 + 1000 : Math.ceil(parsePoint("date_to", input.date_to, tz, now) / 1000) * 1000;
  if (from < MIN_MS || from > MAX_MS) throw new DateRangeError("date_from", "outside the supported range (1970..2105)");
  if (to < MIN_MS || to > MAX_MS) throw new DateRangeError("date_to", "outside the supported range (1970..2105)");
  if (to <= from) throw new DateRangeError("date_to", "must be after date_from");
  return { from, to };
}

export interface Bucket {
  /** The value ClickHouse returns for the bucket expression (see `bucketExpression`). */
  key: string;
  /** Human label: `YYYY-MM-DD` for day/week/month, local ISO date-time with offset for hours. */
  label: string;
}

const MAX_BUCKETS = 5000;

/** Every bucket that intersects the range, in order. */
export function enumerateBuckets(range: DateRange, interval: Interval, tz: string): Bucket[] {
  const out: Bucket[] = [];
  const last = range.to - 1000;
  const push = (b: Bucket) => {
    if (out.length >= MAX_BUCKETS) throw new BucketLimitError(interval);
    out.push(b);
  };
  if (interval === "hour") {
    let t = localHourStart(tz, range.from);
    while (t <= last) {
      push({ key: String(t / 1000), label: hourLabel(tz, t) });
      // Next local hour start; stepping by an hour is exact for whole-hour offsets, re-aligning covers the rest.
      const next = localHourStart(tz, t + 3600_000);
      t = next > t ? next : t + 3600_000;
    }
    return out;
  }
  const a = localParts(tz, range.from);
  const b = localParts(tz, last);
  let start = dayNumber(a.year, a.month, a.day);
  const end = dayNumber(b.year, b.month, b.day);
  if (interval === "day") {
    for (let n = start; n <= end; n++) push({ key: dayNumberKey(n), label: dayNumberKey(n) });
    return out;
  }
  if (interval === "week") {
    // 1970-01-01 was a Thursday: (n + 3) % 7 is days since Monday.
    start -= (((start + 3) % 7) + 7) % 7;
    for (let n = start; n <= end; n += 7) push({ key: dayNumberKey(n), label: dayNumberKey(n) });
    return out;
  }
  for (let y = a.year, m = a.month; y < b.year || (y === b.year && m <= b.month); m === 12 ? (y++, (m = 1)) : m++) {
    push({ key: dateKey(y, m, 1), label: dateKey(y, m, 1) });
  }
  return out;
}

export class BucketLimitError extends Error {
  constructor(readonly interval: Interval) {
    super(`the range has more than ${MAX_BUCKETS} ${interval} buckets; use a larger interval or a shorter range`);
  }
}

function hourLabel(tz: string, ms: number): string {
  const p = localParts(tz, ms);
  const off = Math.round(offsetMs(tz, ms) / 60000);
  const sign = off < 0 ? "-" : "+";
  const abs = Math.abs(off);
  return `${dateKey(p.year, p.month, p.day)}T${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** The bucket of each event's `timestamp`, as a string equal to `Bucket.key`. */
export function bucketExpression(interval: Interval, tz: string): SqlFragment {
  // Grouped by the raw Date/DateTime value and turned into text only once per bucket (bucketLabel):
  // toString on every row cost as much as the aggregation itself on 18.16.
  switch (interval) {
    case "hour":
      return sql`toUInt32(toStartOfHour(timestamp, ${tz}))`;
    case "day":
      return sql`toDate(timestamp, ${tz})`;
    case "week":
      return sql`toMonday(timestamp, ${tz})`;
    case "month":
      return sql`toStartOfMonth(timestamp, ${tz})`;
  }
}

/** The bucket key as text, the form `enumerateBuckets` keys buckets by. */
export function bucketLabel(column: SqlFragment): SqlFragment {
  return sql`toString(${column})`;
}

/**
 * The key (as `enumerateBuckets` returns it) of the bucket holding instant `ms`; the same bucket ClickHouse's
 * `bucketExpression` gives an event at that instant.
 */
export function bucketKeyOf(interval: Interval, tz: string, ms: number): string {
  if (interval === "hour") return String(localHourStart(tz, ms) / 1000);
  const p = localParts(tz, ms);
  if (interval === "day") return dateKey(p.year, p.month, p.day);
  if (interval === "month") return dateKey(p.year, p.month, 1);
  const n = dayNumber(p.year, p.month, p.day);
  return dayNumberKey(n - ((((n + 3) % 7) + 7) % 7));
}

/** The instant each bucket of the range starts at (the first one may start before the range). */
export function bucketStarts(range: DateRange, interval: Interval, tz: string): number[] {
  return enumerateBuckets(range, interval, tz).map((b) => {
    if (interval === "hour") return Number(b.key) * 1000;
    const [y, m, d] = b.key.split("-").map(Number) as [number, number, number];
    return localToInstant(tz, y, m, d);
  });
}

/** True when the range ended before the start of the project's current local day (results can be cached longer). */
export function endsBeforeToday(range: DateRange, tz: string, now: number): boolean {
  return range.to <= localDayStart(tz, now);
}
