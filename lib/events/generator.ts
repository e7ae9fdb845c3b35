/**
 * Deterministic synthetic events (fixed seed -> identical events, uuids included), for the query tests' oracle
 * and for the benchmark seed. Pure: no clock, no I/O; the caller passes the time range and the seed.
 *
 * Shape of the data, chosen so trends and funnels have something to find:
 *   - users with per-user properties (`plan`; `$browser` from a few common values plus a long tail, missing for
 *     ~5% of users so breakdowns see `$none` and top-N sees `$other`);
 *   - event names drawn from fixed weights; the funnel events `signup`, `activate`, `purchase` appear in every
 *     order and at every distance, so ordered/unordered/strict funnels and conversion windows all differ;
 *   - per-event properties: `$current_url` (string), `amount` (number, purchases only), `is_first` (boolean),
 *     `$referrer` on some events;
 *   - optional duplicates: the same event (same uuid) emitted twice, as an at-least-once pipeline would.
 */

import { clickhouseDateTime, type EventRow, propertyArrays, propertyText } from "./event-row.ts";

export type PropertyValue = string | number | boolean;

export interface GeneratedEvent {
  uuid: string;
  teamId: number;
  event: string;
  distinctId: string;
  /** Unix seconds (the `timestamp` column). */
  timestamp: number;
  /** Millisecond within that second (the `msec` column): the event's instant is timestamp * 1000 + msec. */
  msec: number;
  properties: Record<string, PropertyValue>;
  /** True for the second copy of a duplicated event. */
  duplicate: boolean;
  /** Person properties the event sets ($set; on `$identify` events). Not stored as event properties. */
  set?: Record<string, PropertyValue>;
}

export interface GeneratorOptions {
  seed: number;
  teamId: number;
  users: number;
  events: number;
  /** Events fall in [end - days, end). */
  days: number;
  end: Date;
  /** Fraction of events emitted twice with the same uuid (0..1). Duplicates are extra rows beyond `events`. */
  duplicateRate?: number;
  /**
   * Fraction of users (0..1) who start anonymous (`anon-<seed>-<n>`) and are identified mid-journey: an
   * `$identify` event (distinct_id = their user id, `$anon_distinct_id` = the anonymous id, `$set` email) at the
   * instant of their first identified event, which it precedes. Default 0: every user is known from the start.
   */
  anonymousShare?: number;
}

/** mulberry32: tiny, fast, good enough for test data, and the same sequence on every platform. */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function uuidV4(rand: () => number): string {
  const b = new Array<number>(16);
  for (let i = 0; i < 16; i += 4) {
    const x = Math.floor(rand() * 4294967296);
    b[i] = x & 0xff;
    b[i + 1] = (x >>> 8) & 0xff;
    b[i + 2] = (x >>> 16) & 0xff;
    b[i + 3] = (x >>> 24) & 0xff;
  }
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.map((x) => HEX[x]!);
  return `${h.slice(0, 4).join("")}-${h.slice(4, 6).join("")}-${h.slice(6, 8).join("")}-${h.slice(8, 10).join("")}-${h.slice(10).join("")}`;
}

function pickWeighted<T>(rand: () => number, items: readonly (readonly [T, number])[], total: number): T {
  let r = rand() * total;
  for (const [item, w] of items) {
    r -= w;
    if (r < 0) return item;
  }
  return items[items.length - 1]![0];
}

export const EVENT_WEIGHTS = [
  ["$pageview", 50],
  ["$autocapture", 18],
  ["search", 8],
  ["signup", 10],
  ["activate", 8],
  ["purchase", 6],
] as const satisfies readonly (readonly [string, number])[];
const EVENT_TOTAL = EVENT_WEIGHTS.reduce((s, [, w]) => s + w, 0);

// 4 common browsers and a 40-value long tail: more values than a small top-N, so `$other` is exercised.
const BROWSERS: readonly (readonly [string, number])[] = [
  ["Chrome", 40],
  ["Safari", 20],
  ["Firefox", 12],
  ["Edge", 8],
  ...Array.from({ length: 40 }, (_, i) => [`Browser ${i + 1}`, 0.5] as const),
];
const BROWSER_TOTAL = BROWSERS.reduce((s, [, w]) => s + w, 0);

const PLANS = [
  ["free", 70],
  ["pro", 25],
  ["enterprise", 5],
] as const;
const PATHS = ["/", "/pricing", "/docs", "/docs/funnels", "/blog/o'reilly", "/signup?ref=a\\b", "/app"];
const REFERRERS = ["https://google.com", "https://news.ycombinator.com", "$direct"];

export { propertyText };

/** Yields the events user by user; each user's events in time order. */
export function* generateEvents(opts: GeneratorOptions): Generator<GeneratedEvent> {
  const rand = createRng(opts.seed);
  const endS = Math.floor(opts.end.getTime() / 1000);
  const spanS = opts.days * 86400;
  const startS = endS - spanS;
  const base = Math.floor(opts.events / opts.users);
  const remainder = opts.events - base * opts.users;
  const dupRate = opts.duplicateRate ?? 0;
  let shift = 0;

  for (let u = 0; u < opts.users; u++) {
    // Vary activity per user while keeping the exact total: pairs of users trade a random number of events.
    if (u % 2 === 0) shift = u + 1 < opts.users ? Math.floor(rand() * (base + 1)) - Math.floor(base / 2) : 0;
    let count = base + (u < remainder ? 1 : 0) + (u % 2 === 0 ? shift : -shift);
    if (count < 0) count = 0;
    const distinctId = `user-${opts.seed}-${u}`;
    const browser = rand() < 0.05 ? undefined : pickWeighted(rand, BROWSERS, BROWSER_TOTAL);
    const plan = pickWeighted(rand, PLANS, 100);
    // Each user is active over a random sub-range of the period, so users are not all alike day to day.
    const activeFrom = startS + Math.floor(rand() * spanS * 0.8);
    const activeSpan = Math.min(endS - activeFrom, Math.max(60 + 2 * count, Math.floor(rand() * (endS - activeFrom))));
    const times: number[] = [];
    for (let i = 0; i < count; i++) times.push(activeFrom + Math.floor(rand() * activeSpan));
    times.sort((a, b) => a - b);
    for (let i = 1; i < times.length; i++) if (times[i]! <= times[i - 1]!) times[i] = times[i - 1]! + 1;
    for (let i = times.length - 1; i >= 0; i--) {
      const limit = i === times.length - 1 ? endS - 1 : times[i + 1]! - 1;
      if (times[i]! > limit) times[i] = limit;
    }
    // Milliseconds, and ties on purpose: some events share the previous one's second, some its very instant (an
    // SDK batch, a click and the page view it causes), so funnels' tie order is exercised.
    const msecs = times.map(() => Math.floor(rand() * 1000));
    for (let i = 1; i < times.length; i++) {
      const r = rand();
      if (r < 0.04) {
        times[i] = times[i - 1]!;
        msecs[i] = msecs[i - 1]!;
      } else if (r < 0.08) {
        times[i] = times[i - 1]!;
        msecs[i] = Math.max(msecs[i - 1]!, msecs[i]!);
      }
    }
    let first = true;
    // Anonymous until event `switchAt`, which the $identify event precedes (same instant: identify, then act).
    const anonymous = (opts.anonymousShare ?? 0) > 0 && times.length >= 2 && rand() < opts.anonymousShare!;
    const switchAt = anonymous ? 1 + Math.floor(rand() * (times.length - 1)) : 0;
    const anonId = `anon-${opts.seed}-${u}`;
    for (let n = 0; n < times.length; n++) {
      const timestamp = times[n]!;
      const msec = msecs[n]!;
      if (anonymous && n === switchAt) {
        yield {
          uuid: uuidV4(rand),
          teamId: opts.teamId,
          event: "$identify",
          distinctId,
          timestamp,
          msec,
          properties: { $anon_distinct_id: anonId },
          duplicate: false,
          set: { email: `${distinctId}@example.com` },
        };
      }
      const event = pickWeighted(rand, EVENT_WEIGHTS, EVENT_TOTAL);
      const properties: Record<string, PropertyValue> = {
        $current_url: `https://example.com${PATHS[Math.floor(rand() * PATHS.length)]!}`,
        plan,
        is_first: first,
      };
      if (browser !== undefined) properties.$browser = browser;
      if (rand() < 0.3) properties.$referrer = REFERRERS[Math.floor(rand() * REFERRERS.length)]!;
      if (event === "purchase") properties.amount = Math.round(rand() * 50000) / 100;
      first = false;
      const e: GeneratedEvent = {
        uuid: uuidV4(rand),
        teamId: opts.teamId,
        event,
        distinctId: anonymous && n < switchAt ? anonId : distinctId,
        timestamp,
        msec,
        properties,
        duplicate: false,
      };
      yield e;
      if (dupRate > 0 && rand() < dupRate) yield { ...e, duplicate: true };
    }
  }
}

export function toEventRow(e: GeneratedEvent, offset = 0): EventRow {
  const { keys, values } = propertyArrays(e.properties);
  const ts = clickhouseDateTime(e.timestamp * 1000);
  return {
    uuid: e.uuid,
    team_id: e.teamId,
    event: e.event,
    distinct_id: e.distinctId,
    timestamp: ts,
    msec: e.msec,
    properties: JSON.stringify(e.properties),
    prop_keys: keys,
    prop_values: values,
    ip: "",
    received_at: ts,
    inserted_at: ts,
    kafka_partition: 0,
    kafka_offset: offset,
  };
}
