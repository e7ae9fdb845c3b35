/**
 * The tests' independent oracle: trends and funnels recomputed in plain TypeScript over the generated events.
 * It shares nothing with apps/query but the documented semantics (see apps/query/README.md); buckets come from
 * Intl directly, funnels from straightforward loops over each person's events in the documented order.
 */
import { propertyText, type GeneratedEvent, type PropertyValue } from "../../lib/events/generator.ts";

type Typed = { type?: "event" | "person" };
export type OracleFilter =
  | (Typed & { key: string; operator: "eq" | "neq"; value: PropertyValue })
  | (Typed & { key: string; operator: "in"; value: PropertyValue[] })
  | (Typed & { key: string; operator: "contains" | "not_contains" | "regex"; value: string })
  | (Typed & { key: string; operator: "is_set" | "is_not_set" })
  | (Typed & { key: string; operator: "gt" | "lt"; value: number })
  | { any: OracleFilter[] };

// ---- persons: PostHog's merge rules, written out on their own ----

type Props = Record<string, unknown>;

/**
 * Person state from the events' identify / alias / merge_dangerously and $set, applied in the order given.
 * Persons are plain numbers here; only who belongs with whom and their properties matter.
 */
export class OraclePersons {
  private readonly of = new Map<string, number>();
  private readonly identified = new Set<number>();
  private readonly props = new Map<number, Props>();
  private next = 1;

  private create(ids: string[], identified: boolean): number {
    const p = this.next++;
    for (const id of ids) this.of.set(id, p);
    if (identified) this.identified.add(p);
    this.props.set(p, {});
    return p;
  }

  apply(e: GeneratedEvent): void {
    const d = e.distinctId;
    const spec = ({ $identify: "$anon_distinct_id", $create_alias: "alias", $merge_dangerously: "alias" } as Record<string, string>)[e.event];
    const other = spec === undefined ? undefined : e.properties[spec];
    if (spec !== undefined && typeof other === "string" && other !== "" && other !== d) {
      const pd = this.of.get(d);
      const po = this.of.get(other);
      if (pd === undefined && po === undefined) this.create([d, other], true);
      else if (pd === undefined) {
        this.of.set(d, po!);
        this.identified.add(po!);
      } else if (po === undefined) {
        this.of.set(other, pd);
        this.identified.add(pd);
      } else if (pd === po) this.identified.add(pd);
      else if (!this.identified.has(po) || e.event === "$merge_dangerously") {
        for (const [id, p] of this.of) if (p === po) this.of.set(id, pd);
        this.props.set(pd, { ...this.props.get(po), ...this.props.get(pd) });
        this.identified.add(pd);
      }
    }
    if (e.event === "$identify") {
      const p = this.of.get(d) ?? this.create([d], true);
      this.identified.add(p);
    }
    if (e.set) {
      const p = this.of.get(d) ?? this.create([d], false);
      this.props.set(p, { ...this.props.get(p), ...e.set });
    }
  }

  /** The person's key: the same for every id of one person; an id without a person is its own. */
  key(distinctId: string): string {
    const p = this.of.get(distinctId);
    return p === undefined ? `id:${distinctId}` : `person:${p}`;
  }

  propertiesOf(distinctId: string): Props {
    const p = this.of.get(distinctId);
    return p === undefined ? {} : (this.props.get(p) ?? {});
  }

  idsOf(distinctId: string): string[] {
    const p = this.of.get(distinctId);
    return p === undefined ? [] : [...this.of].filter(([, q]) => q === p).map(([id]) => id).sort();
  }
}

/** Without persons: every distinct_id is a person (what the tests without identify events need). */
const NO_PERSONS = { key: (id: string) => `id:${id}`, propertiesOf: (): Props => ({}) };
type PersonView = Pick<OraclePersons, "key" | "propertiesOf">;

const NUMERIC = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;

function matchesOne(e: GeneratedEvent, f: OracleFilter, persons: PersonView): boolean {
  if ("any" in f) return f.any.some((g) => matchesOne(e, g, persons));
  const props = (f.type === "person" ? persons.propertiesOf(e.distinctId) : e.properties) as Record<string, PropertyValue>;
  const has = Object.hasOwn(props, f.key);
  const text = has ? propertyText(props[f.key]!) : "";
  switch (f.operator) {
    case "eq":
      return has && text === propertyText(f.value);
    case "neq":
      return !(has && text === propertyText(f.value));
    case "in":
      return has && f.value.map(propertyText).includes(text);
    case "contains":
      return has && text.includes(f.value);
    case "not_contains":
      return !(has && text.includes(f.value));
    case "regex":
      return has && new RegExp(f.value).test(text);
    case "is_set":
      return has;
    case "is_not_set":
      return !has;
    case "gt":
      return has && NUMERIC.test(text) && Number(text) > f.value;
    case "lt":
      return has && NUMERIC.test(text) && Number(text) < f.value;
  }
}

export const matches = (e: GeneratedEvent, filters: OracleFilter[] = [], persons: PersonView = NO_PERSONS) => filters.every((f) => matchesOne(e, f, persons));

/** Unique events (first copy of each uuid) of one team within [fromS, toS). */
export function eventsIn(events: GeneratedEvent[], teamId: number, fromS: number, toS: number): GeneratedEvent[] {
  const seen = new Set<string>();
  const out: GeneratedEvent[] = [];
  for (const e of events) {
    if (e.teamId !== teamId || e.timestamp < fromS || e.timestamp >= toS || seen.has(e.uuid)) continue;
    seen.add(e.uuid);
    out.push(e);
  }
  return out;
}

// ---- buckets, straight from Intl ----

const fmts = new Map<string, Intl.DateTimeFormat>();
function parts(tz: string, s: number) {
  const f = fmts.get(tz) ?? new Intl.DateTimeFormat("en-GB", {
    timeZone: tz,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  });
  fmts.set(tz, f);
  const p = Object.fromEntries(f.formatToParts(new Date(s * 1000)).map((x) => [x.type, x.value]));
  return { y: p.year!, m: p.month!, d: p.day!, min: Number(p.minute), sec: Number(p.second) };
}

/** The bucket an event falls in, in the same form as the API's labels (hours: the unix second of the start). */
export function bucketOf(interval: string, tz: string, s: number): string {
  const p = parts(tz, s);
  if (interval === "hour") return String(s - p.min * 60 - p.sec);
  if (interval === "day") return `${p.y}-${p.m}-${p.d}`;
  if (interval === "month") return `${p.y}-${p.m}-01`;
  const date = new Date(`${p.y}-${p.m}-${p.d}T00:00:00Z`);
  const back = (date.getUTCDay() + 6) % 7;
  return new Date(date.getTime() - back * 86400000).toISOString().slice(0, 10);
}

/** An API label in the oracle's bucket form. */
export function labelKey(interval: string, label: string): string {
  return interval === "hour" ? String(Date.parse(label) / 1000) : label;
}

// ---- trends ----

export interface OracleSeries {
  event: string | null;
  math: "total" | "unique_users" | "per_user_avg";
  filters?: OracleFilter[];
}

export interface OracleTrend {
  breakdown: string[] | null;
  buckets: Map<string, number>;
  total: number;
}

function mathOf(math: OracleSeries["math"], evs: GeneratedEvent[], persons: PersonView): number {
  const users = new Set(evs.map((e) => persons.key(e.distinctId))).size;
  if (math === "total") return evs.length;
  if (math === "unique_users") return users;
  return users === 0 ? 0 : evs.length / users;
}

const byteCompare = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

export function oracleTrend(
  events: GeneratedEvent[],
  o: {
    teamId: number;
    fromS: number;
    toS: number;
    interval: string;
    tz: string;
    series: OracleSeries;
    filters?: OracleFilter[];
    breakdown?: string[];
    limit?: number;
    persons?: PersonView;
  },
): OracleTrend[] {
  const persons = o.persons ?? NO_PERSONS;
  const evs = eventsIn(events, o.teamId, o.fromS, o.toS).filter(
    (e) => (o.series.event === null || e.event === o.series.event) && matches(e, o.filters, persons) && matches(e, o.series.filters, persons),
  );
  const groups = new Map<string, GeneratedEvent[]>();
  const valueOf = (e: GeneratedEvent) =>
    o.breakdown ? o.breakdown.map((k) => (Object.hasOwn(e.properties, k) ? propertyText(e.properties[k]!) : "$none")) : null;
  for (const e of evs) {
    const k = JSON.stringify(valueOf(e));
    groups.set(k, [...(groups.get(k) ?? []), e]);
  }
  let entries = [...groups.entries()];
  if (o.breakdown) {
    entries.sort(([ka, a], [kb, b]) => b.length - a.length || byteCompare((JSON.parse(ka) as string[]).join("\0"), (JSON.parse(kb) as string[]).join("\0")));
    const top = entries.slice(0, o.limit ?? 25);
    const rest = entries.slice(o.limit ?? 25).flatMap(([, g]) => g);
    entries = rest.length ? [...top, [JSON.stringify(o.breakdown.map(() => "$other")), rest]] : top;
  }
  return entries.map(([k, g]) => {
    const per = new Map<string, GeneratedEvent[]>();
    for (const e of g) {
      const b = bucketOf(o.interval, o.tz, e.timestamp);
      per.set(b, [...(per.get(b) ?? []), e]);
    }
    return {
      breakdown: JSON.parse(k) as string[] | null,
      buckets: new Map([...per.entries()].map(([b, x]) => [b, mathOf(o.series.math, x, persons)])),
      total: mathOf(o.series.math, g, persons),
    };
  });
}

// ---- funnels ----

export interface OracleStep {
  event: string;
  filters?: OracleFilter[];
}

export interface OracleFunnelStep {
  count: number;
  avg: number | null;
  median: number | null;
}

export interface OracleFunnel {
  breakdown: string | null;
  steps: OracleFunnelStep[];
}

type Order = "ordered" | "strict" | "unordered";

interface UserResult {
  level: number;
  durs: number[] | null;
  breakdown: string;
}

const stepOf = (e: GeneratedEvent, steps: OracleStep[], global: OracleFilter[] | undefined, persons: PersonView) =>
  steps.map((s) => e.event === s.event && matches(e, global, persons) && matches(e, s.filters, persons));

/** The event's instant in ms. */
const instant = (e: GeneratedEvent) => e.timestamp * 1000 + e.msec;

function userFunnel(evs: GeneratedEvent[], steps: OracleStep[], global: OracleFilter[] | undefined, W: number, order: Order, persons: PersonView, breakdown?: string): UserResult | null {
  const k = steps.length;
  // One order for all modes: instant, then the lowest step matched (none: after all steps), then uuid bytewise.
  // A path step must come strictly later in (instant, lowest step): the same key is simultaneous.
  const marked = evs.map((e) => {
    const m = stepOf(e, steps, global, persons);
    const first = m.indexOf(true);
    return { e, t: instant(e), m, rank: first < 0 ? k : first };
  });
  marked.sort((a, b) => a.t - b.t || a.rank - b.rank || byteCompare(a.e.uuid, b.e.uuid));
  const later = (a: (typeof marked)[number], b: (typeof marked)[number]) => a.t > b.t || (a.t === b.t && a.rank > b.rank);
  const bdOf = (pred: (x: (typeof marked)[number]) => boolean) => {
    if (!breakdown) return "";
    const first = marked.find(pred);
    if (!first) return "";
    return Object.hasOwn(first.e.properties, breakdown) ? propertyText(first.e.properties[breakdown]!) : "$none";
  };
  if (order === "ordered") {
    // From every step-1 event, walk forward through distinct events taking the first match of the next step
    // within the window; the level is the longest walk, the times those of the first start reaching it.
    const relevant = marked.filter((x) => x.m.some(Boolean));
    let level = 0;
    let durs: number[] | null = null;
    for (let i = 0; i < relevant.length; i++) {
      if (!relevant[i]!.m[0]) continue;
      const path = [i];
      for (let j = 1; j < k; j++) {
        const prev = path[j - 1]!;
        let next = -1;
        for (let x = 0; x < relevant.length; x++) {
          if (relevant[x]!.t > relevant[i]!.t + W) break;
          if (relevant[x]!.m[j] && later(relevant[x]!, relevant[prev]!)) {
            next = x;
            break;
          }
        }
        if (next < 0) break;
        path.push(next);
      }
      if (path.length > level) {
        level = path.length;
        durs = path.slice(1).map((x, n) => relevant[x]!.t - relevant[path[n]!]!.t);
      }
    }
    if (level === 0) return null;
    return { level, durs, breakdown: bdOf((x) => x.m[0]!) };
  }
  if (order === "strict") {
    let level = 0;
    let best = -1;
    for (let i = 0; i < marked.length; i++) {
      if (!marked[i]!.m[0]) continue;
      let d = 1;
      while (d < k && i + d < marked.length && marked[i + d]!.m[d] && later(marked[i + d]!, marked[i + d - 1]!) && marked[i + d]!.t <= marked[i]!.t + W) d++;
      if (d > level) {
        level = d;
        best = i;
      }
    }
    if (level === 0) return null;
    const durs = Array.from({ length: level - 1 }, (_, j) => marked[best + j + 1]!.t - marked[best + j]!.t);
    return { level, durs, breakdown: bdOf((x) => x.m[0]!) };
  }
  const stepTimes = marked.filter((x) => x.m.some(Boolean));
  let level = 0;
  for (const s of stepTimes) {
    const d = steps.filter((_, j) => stepTimes.some((x) => x.m[j] && x.t >= s.t && x.t <= s.t + W)).length;
    level = Math.max(level, d);
  }
  if (level === 0) return null;
  return { level, durs: null, breakdown: bdOf((x) => x.m.some(Boolean)) };
}

function summarize(users: UserResult[], k: number, withTimes: boolean): OracleFunnelStep[] {
  return Array.from({ length: k }, (_, j) => {
    const reached = users.filter((u) => u.level >= j + 1);
    if (j === 0 || !withTimes) return { count: reached.length, avg: null, median: null };
    const ds = reached.map((u) => u.durs![j - 1]!).sort((a, b) => a - b);
    if (!ds.length) return { count: 0, avg: null, median: null };
    // Durations are ms; the API answers seconds.
    return { count: reached.length, avg: ds.reduce((a, b) => a + b, 0) / ds.length / 1000, median: ds[Math.floor(ds.length * 0.5)]! / 1000 };
  });
}

export function oracleFunnel(
  events: GeneratedEvent[],
  o: {
    teamId: number;
    fromS: number;
    toS: number;
    steps: OracleStep[];
    filters?: OracleFilter[];
    windowS: number;
    order: Order;
    breakdown?: string;
    limit?: number;
    persons?: PersonView;
  },
): OracleFunnel[] {
  const persons = o.persons ?? NO_PERSONS;
  const byUser = new Map<string, GeneratedEvent[]>();
  for (const e of eventsIn(events, o.teamId, o.fromS, o.toS)) {
    const k = persons.key(e.distinctId);
    byUser.set(k, [...(byUser.get(k) ?? []), e]);
  }
  const users: UserResult[] = [];
  for (const evs of byUser.values()) {
    const r = userFunnel(evs, o.steps, o.filters, o.windowS * 1000, o.order, persons, o.breakdown);
    if (r) users.push(r);
  }
  const withTimes = o.order !== "unordered";
  if (!o.breakdown) return [{ breakdown: null, steps: summarize(users, o.steps.length, withTimes) }];
  const groups = new Map<string, UserResult[]>();
  for (const u of users) groups.set(u.breakdown, [...(groups.get(u.breakdown) ?? []), u]);
  const ranked = [...groups.entries()].sort(([a, x], [b, y]) => y.length - x.length || byteCompare(a, b));
  const limit = o.limit ?? 25;
  const out = ranked.slice(0, limit).map(([b, us]) => ({ breakdown: b, steps: summarize(us, o.steps.length, withTimes) }));
  const rest = ranked.slice(limit).flatMap(([, us]) => us);
  if (rest.length) out.push({ breakdown: "$other", steps: summarize(rest, o.steps.length, withTimes) });
  return out;
}
