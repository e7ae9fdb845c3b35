/** Trends against the oracle: totals, unique users, per-user average, every filter operator, breakdowns, all
 * intervals, and non-UTC time zones across DST changes, over generated events with duplicates. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { GeneratedEvent } from "../../lib/events/generator.ts";
import { createHarness, fixtureEvents, post, type Harness, type Project } from "./fixtures.ts";
import { labelKey, oracleTrend, type OracleFilter, type OracleSeries } from "./oracle.ts";

let h: Harness;
let project: Project;
let events: GeneratedEvent[];
let app: ReturnType<Harness["app"]>;

beforeAll(async () => {
  h = await createHarness();
  project = await h.createProject();
  events = fixtureEvents(project.id);
  await h.load(events);
  app = h.app({ cache: null });
});
afterAll(() => h.close());

const S = (iso: string) => Date.parse(iso) / 1000;

interface Case {
  series: OracleSeries;
  filters?: OracleFilter[];
  interval?: "hour" | "day" | "week" | "month";
  timezone?: string;
  date_from: string;
  date_to: string;
  fromS: number;
  toS: number;
  breakdown?: string[];
  breakdown_limit?: number;
}

async function check(c: Case) {
  const interval = c.interval ?? "day";
  const tz = c.timezone ?? "UTC";
  const res = await post(app, "/api/trends", project.key, {
    series: [{ event: c.series.event, math: c.series.math, filters: c.series.filters ?? [] }],
    filters: c.filters ?? [],
    interval,
    timezone: tz,
    date_from: c.date_from,
    date_to: c.date_to,
    ...(c.breakdown ? { breakdown: c.breakdown, breakdown_limit: c.breakdown_limit ?? 25 } : {}),
  });
  expect(res.status).toBe(200);
  expect(Date.parse(res.body.date_from) / 1000).toBe(c.fromS);
  expect(Date.parse(res.body.date_to) / 1000).toBe(c.toS);
  const expected = oracleTrend(events, {
    teamId: project.id,
    fromS: c.fromS,
    toS: c.toS,
    interval,
    tz,
    series: c.series,
    filters: c.filters,
    breakdown: c.breakdown,
    limit: c.breakdown_limit,
  });
  const labels: string[] = res.body.labels;
  const keys = labels.map((l) => labelKey(interval, l));
  expect(new Set(keys).size).toBe(keys.length);
  // Same groups in the same order (volume, then value; $other last).
  expect(res.body.series.map((s: any) => s.breakdown_value)).toEqual(expected.map((e) => e.breakdown));
  for (const [i, exp] of expected.entries()) {
    const got = res.body.series[i];
    expect(got.data.length).toBe(labels.length);
    const gotMap = new Map<string, number>(keys.map((k, j) => [k, got.data[j]]));
    for (const [bucket, value] of exp.buckets) {
      expect(gotMap.has(bucket)).toBe(true);
      expect(gotMap.get(bucket)!).toBeCloseTo(value, 9);
    }
    // Every other bucket is an empty one, filled with 0.
    for (const [bucket, value] of gotMap) if (!exp.buckets.has(bucket)) expect(value).toBe(0);
    expect(got.total).toBeCloseTo(exp.total, 9);
  }
  return { res, expected };
}

const FULL = { date_from: "2024-10-06", date_to: "2024-11-14", fromS: S("2024-10-06T00:00:00Z"), toS: S("2024-11-15T00:00:00Z") };

describe("trends vs oracle", () => {
  test("duplicates are physically present and never counted", async () => {
    const rs = await h.ch.query({ query: `SELECT count() AS n, uniqExact(uuid) AS u FROM events WHERE team_id = ${project.id}`, format: "JSONEachRow" });
    const [row] = (await rs.json()) as { n: string; u: string }[];
    expect(Number(row!.u)).toBe(new Set(events.map((e) => e.uuid)).size);
    // Right after the load the duplicate part is normally not merged yet; report it either way.
    console.log(`fixture rows: ${row!.n} physical, ${row!.u} unique`);
    const { expected } = await check({ series: { event: null, math: "total" }, ...FULL });
    expect(expected[0]!.total).toBe(Number(row!.u));
  });

  for (const math of ["total", "unique_users", "per_user_avg"] as const) {
    test(`math ${math}, daily, UTC, whole period (40 buckets)`, async () => {
      const { res } = await check({ series: { event: "$pageview", math }, ...FULL });
      expect(res.body.labels.length).toBe(40);
    });
  }

  test("several series in one request", async () => {
    const res = await post(app, "/api/trends", project.key, {
      series: [{ event: "signup" }, { event: "purchase", math: "unique_users" }],
      date_from: FULL.date_from,
      date_to: FULL.date_to,
    });
    expect(res.status).toBe(200);
    expect(res.body.series.map((s: any) => s.event)).toEqual(["signup", "purchase"]);
    expect(res.body.clickhouse.queries).toBe(2);
    expect(res.body.clickhouse.elapsed_ms).toBeGreaterThan(0);
  });

  const filterCases: [string, OracleFilter][] = [
    ["eq", { key: "$browser", operator: "eq", value: "Firefox" }],
    ["eq boolean", { key: "is_first", operator: "eq", value: true }],
    ["neq (includes unset)", { key: "$browser", operator: "neq", value: "Chrome" }],
    ["in", { key: "plan", operator: "in", value: ["pro", "enterprise"] }],
    ["contains", { key: "$current_url", operator: "contains", value: "/docs" }],
    ["not_contains", { key: "$current_url", operator: "not_contains", value: "/docs" }],
    ["regex", { key: "$current_url", operator: "regex", value: "^https://example\\.com/(pricing|app)$" }],
    ["is_set", { key: "$referrer", operator: "is_set" }],
    ["is_not_set", { key: "$browser", operator: "is_not_set" }],
    ["gt (numeric)", { key: "amount", operator: "gt", value: 250 }],
    ["lt (numeric, non-numbers never match)", { key: "amount", operator: "lt", value: 100.5 }],
    ["OR group", { any: [{ key: "plan", operator: "eq", value: "enterprise" }, { key: "amount", operator: "gt", value: 400 }] }],
  ];
  for (const [name, filter] of filterCases) {
    test(`filter ${name}`, async () => {
      const { expected } = await check({ series: { event: null, math: "total" }, filters: [filter], ...FULL });
      // A filter that matched nothing (or everything) would prove little.
      const all = await check({ series: { event: null, math: "total" }, ...FULL });
      expect(expected[0]!.total).toBeGreaterThan(0);
      expect(expected[0]!.total).toBeLessThan(all.expected[0]!.total);
    });
  }

  test("series filter AND global filter", async () => {
    await check({
      series: { event: "purchase", math: "unique_users", filters: [{ key: "amount", operator: "gt", value: 100 }] },
      filters: [{ key: "plan", operator: "neq", value: "free" }],
      ...FULL,
    });
  });

  test("breakdown by $browser: top 3 + $other, $none for unset", async () => {
    const { expected } = await check({ series: { event: null, math: "total" }, breakdown: ["$browser"], breakdown_limit: 3, ...FULL });
    const values = expected.map((e) => e.breakdown![0]);
    expect(values).toContain("$other");
    expect(values.length).toBe(4);
    const withNone = await check({ series: { event: null, math: "unique_users" }, breakdown: ["$browser"], breakdown_limit: 10, ...FULL });
    expect(withNone.expected.map((e) => e.breakdown![0])).toContain("$none");
  });

  test("breakdown by two properties, unique users ($other's users are exact, not summed)", async () => {
    await check({ series: { event: "$pageview", math: "unique_users" }, breakdown: ["plan", "$browser"], breakdown_limit: 5, ...FULL });
  });

  test("weekly and monthly in America/New_York", async () => {
    const ny = { date_from: "2024-10-06", date_to: "2024-11-13", fromS: S("2024-10-06T04:00:00Z"), toS: S("2024-11-14T05:00:00Z"), timezone: "America/New_York" };
    await check({ series: { event: null, math: "total" }, interval: "week", ...ny });
    await check({ series: { event: "signup", math: "unique_users" }, interval: "month", ...ny });
  });

  test("daily in Europe/Berlin across the DST change of 2024-10-27", async () => {
    const { res } = await check({
      series: { event: null, math: "total" },
      timezone: "Europe/Berlin",
      date_from: "2024-10-25",
      date_to: "2024-10-29",
      fromS: S("2024-10-24T22:00:00Z"),
      toS: S("2024-10-29T23:00:00Z"),
    });
    expect(res.body.labels).toEqual(["2024-10-25", "2024-10-26", "2024-10-27", "2024-10-28", "2024-10-29"]);
  });

  test("hourly in Europe/Berlin: 2024-10-27 has 25 local hours", async () => {
    const { res } = await check({
      series: { event: null, math: "total" },
      interval: "hour",
      timezone: "Europe/Berlin",
      date_from: "2024-10-27",
      date_to: "2024-10-27",
      fromS: S("2024-10-26T22:00:00Z"),
      toS: S("2024-10-27T23:00:00Z"),
    });
    const labels: string[] = res.body.labels;
    expect(labels.length).toBe(25);
    expect(labels.filter((l) => l.startsWith("2024-10-27T02:00:00"))).toEqual(["2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00"]);
  });

  test("hourly in Asia/Kolkata (half-hour offset), relative range", async () => {
    const now = Date.parse("2024-11-14T12:34:56Z");
    const relApp = h.app({ cache: null, now: () => now });
    const res = await post(relApp, "/api/trends", project.key, { series: [{ event: null }], interval: "hour", timezone: "Asia/Kolkata", date_from: "-24h" });
    expect(res.status).toBe(200);
    // -24h: from the start of the local hour 24 h ago (12:34 UTC = 18:04 IST -> 18:00 IST = 12:30 UTC), to now.
    expect(res.body.date_from).toBe("2024-11-13T12:30:00.000Z");
    const fromS = S("2024-11-13T12:30:00Z");
    const toS = Math.floor(now / 1000) + 1;
    const exp = oracleTrend(events, { teamId: project.id, fromS, toS, interval: "hour", tz: "Asia/Kolkata", series: { event: null, math: "total" } });
    const keys = (res.body.labels as string[]).map((l) => labelKey("hour", l));
    expect(keys.length).toBe(25);
    for (const [b, v] of exp[0]!.buckets) expect(res.body.series[0].data[keys.indexOf(b)]).toBe(v);
    expect(res.body.series[0].total).toBe(exp[0]!.total);
  });
});
