/**
 * The query API over the cluster's Distributed table gives exactly the single node's answers, and both match the
 * oracle (tests/query/oracle.ts) on the same fixture: duplicates, DST, breakdowns, every funnel order. The fixture
 * goes into both with its duplicates in a separate insert, as tests/query does.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClickHouse, type ClickHouse } from "../../lib/clickhouse/client.ts";
import { clickHouseRunner } from "../../lib/clickhouse/run.ts";
import type { GeneratedEvent } from "../../lib/events/generator.ts";
import { loadEvents } from "../../lib/events/generator-loader.ts";
import { createHarness, fixtureEvents, post, type Harness, type Project } from "../query/fixtures.ts";
import { labelKey, oracleFunnel, oracleTrend } from "../query/oracle.ts";
import { waitFor } from "../support/stack.ts";
import { chCount, chRows, requireCluster } from "./support.ts";

let env: Record<string, string>;
let h: Harness;
let project: Project;
let events: GeneratedEvent[];
let cl: ClickHouse;
let single: ReturnType<Harness["app"]>;
let onCluster: ReturnType<Harness["app"]>;

beforeAll(async () => {
  env = await requireCluster();
  h = await createHarness();
  project = await h.createProject();
  events = fixtureEvents(project.id, 11);
  await h.load(events);
  cl = createClickHouse({ url: env.CLUSTER_CH_1!, database: "analytics" });
  await loadEvents(cl, events.filter((e) => !e.duplicate), { table: "events_distributed" });
  await loadEvents(cl, events.filter((e) => e.duplicate), { table: "events_distributed" });
  single = h.app({ cache: null });
  onCluster = h.app({ cache: null, run: clickHouseRunner(cl), table: "events_distributed" });
});
afterAll(async () => {
  // The replicated tables: one mutation per shard, replication applies it on the peer.
  for (const url of [env?.CLUSTER_CH_1, env?.CLUSTER_CH_3]) {
    if (url && project) await fetch(`${url}/?database=analytics`, { method: "POST", body: `ALTER TABLE events DELETE WHERE team_id = ${project.id}` }).catch(() => {});
  }
  for (const url of [env?.CLUSTER_CH_1, "http://127.0.0.1:8123"]) {
    if (url && project) await fetch(`${url}/?database=analytics`, { method: "POST", body: `ALTER TABLE person_distinct_id DELETE WHERE team_id = ${project.id}` }).catch(() => {});
  }
  await cl?.close();
  await h?.close();
});

const S = (iso: string) => Date.parse(iso) / 1000;
const FULL = { date_from: "2024-10-06", date_to: "2024-11-14" };

/** Both apps' answers, with the per-run ClickHouse statistics taken out. */
async function both(path: string, body: unknown) {
  const [a, b] = await Promise.all([post(single, path, project.key, body), post(onCluster, path, project.key, body)]);
  expect(a.status).toBe(200);
  if (b.status !== 200) throw new Error(`cluster answered ${b.status}: ${JSON.stringify(b.body)}`);
  delete a.body.clickhouse;
  delete b.body.clickhouse;
  return { single: a.body, cluster: b.body };
}

describe("cluster answers = single-node answers = oracle", () => {
  test("the rows are split over the two shards, duplicates included", async () => {
    const unique = new Set(events.map((e) => e.uuid)).size;
    const s1 = await chCount(env.CLUSTER_CH_1!, `SELECT uniqExact(uuid) FROM events WHERE team_id = ${project.id}`);
    const s2 = await chCount(env.CLUSTER_CH_3!, `SELECT uniqExact(uuid) FROM events WHERE team_id = ${project.id}`);
    expect(s1).toBeGreaterThan(0);
    expect(s2).toBeGreaterThan(0);
    // Sharded by distinct_id: no uuid is on both shards, so the two halves add up.
    expect(s1 + s2).toBe(unique);
    // Each shard holds whole users: no distinct_id on both (what funnels per user rely on).
    const ids = async (url: string) => new Set((await chRows(url, `SELECT DISTINCT distinct_id FROM events WHERE team_id = ${project.id}`)).map((r) => r[0]));
    const [a, b] = await Promise.all([ids(env.CLUSTER_CH_1!), ids(env.CLUSTER_CH_3!)]);
    expect([...a].filter((d) => b.has(d))).toEqual([]);
  });

  const trendCases: [string, Record<string, unknown>][] = [
    ["total, daily", { series: [{ event: "$pageview", math: "total" }] }],
    ["unique users and per-user average", { series: [{ event: null, math: "unique_users" }, { event: "signup", math: "per_user_avg" }] }],
    ["hourly in New York across the DST change", { series: [{ event: "$pageview", math: "unique_users" }], interval: "hour", timezone: "America/New_York", date_from: "2024-11-02", date_to: "2024-11-04" }],
    ["weekly, Berlin", { series: [{ event: null, math: "total" }], interval: "week", timezone: "Europe/Berlin" }],
    ["breakdown with $other", { series: [{ event: null, math: "total" }], breakdown: ["$browser"], breakdown_limit: 3 }],
    ["filters", { series: [{ event: null, math: "total" }], filters: [{ key: "plan", operator: "in", value: ["pro", "enterprise"] }, { key: "amount", operator: "gt", value: 100 }] }],
  ];
  for (const [name, req] of trendCases) {
    test(`trends: ${name}`, async () => {
      const r = await both("/api/trends", { ...FULL, ...req });
      expect(r.cluster).toEqual(r.single);
    });
  }

  test("trends: the oracle's numbers (unique users per day)", async () => {
    const r = await both("/api/trends", { ...FULL, series: [{ event: "$pageview", math: "unique_users" }] });
    const [exp] = oracleTrend(events, { teamId: project.id, fromS: S("2024-10-06T00:00:00Z"), toS: S("2024-11-15T00:00:00Z"), interval: "day", tz: "UTC", series: { event: "$pageview", math: "unique_users" } });
    const got = new Map<string, number>(r.cluster.labels.map((l: string, i: number) => [labelKey("day", l), r.cluster.series[0].data[i]]));
    for (const [bucket, v] of exp!.buckets) expect(got.get(bucket)).toBe(v);
    expect(r.cluster.series[0].total).toBe(exp!.total);
  });

  const steps = [{ event: "signup" }, { event: "activate" }, { event: "purchase" }];
  for (const order of ["ordered", "strict", "unordered"] as const) {
    test(`funnels: ${order}, 14-day window, against the oracle`, async () => {
      const req = { steps, order, window: { value: 14, unit: "day" }, date_from: "2024-10-10", date_to: "2024-11-10" };
      const r = await both("/api/funnels", req);
      expect(r.cluster).toEqual(r.single);
      const [exp] = oracleFunnel(events, { teamId: project.id, fromS: S("2024-10-10T00:00:00Z"), toS: S("2024-11-11T00:00:00Z"), steps, windowS: 14 * 86400, order });
      expect(r.cluster.results[0].steps.map((s: any) => s.count)).toEqual(exp!.steps.map((s) => s.count));
      expect(exp!.steps[2]!.count).toBeGreaterThan(0);
    });
  }

  test("funnels: breakdown, one-hour window", async () => {
    const r = await both("/api/funnels", { steps, order: "ordered", window: { value: 1, unit: "hour" }, breakdown: "$browser", breakdown_limit: 3, date_from: "2024-10-10", date_to: "2024-11-10" });
    expect(r.cluster).toEqual(r.single);
    expect(r.cluster.results.length).toBeGreaterThan(1);
  });

  test("persons: ids of one person on both shards are one user on the cluster as on the single node", async () => {
    // Pairs of distinct_ids, one from each shard, merged into one person: the join happens on the node that runs
    // the query, over its full copy of person_distinct_id (replicated to every node, not sharded).
    const ids = async (url: string) => (await chRows(url, `SELECT DISTINCT distinct_id FROM events WHERE team_id = ${project.id} ORDER BY distinct_id LIMIT 15`)).map((r) => r[0]!);
    const [a, b] = await Promise.all([ids(env.CLUSTER_CH_1!), ids(env.CLUSTER_CH_3!)]);
    const rows = a.map((d, i) => [`{"team_id":${project.id},"distinct_id":${JSON.stringify(d)},"person_id":"merged-${i}","version":1}`, `{"team_id":${project.id},"distinct_id":${JSON.stringify(b[i])},"person_id":"merged-${i}","version":1}`]).flat().join("\n");
    const req = { ...FULL, series: [{ event: null, math: "unique_users" }] };
    const before = await both("/api/trends", req);
    for (const url of [env.CLUSTER_CH_1!, "http://127.0.0.1:8123"]) {
      const res = await fetch(`${url}/?database=analytics&query=${encodeURIComponent("INSERT INTO person_distinct_id FORMAT JSONEachRow")}`, { method: "POST", body: rows });
      expect(res.status).toBe(200);
    }
    // The copy on the other shard's nodes comes through replication.
    await waitFor("the mapping on ch-4", 60_000, async () => (await chCount(env.CLUSTER_CH_4!, `SELECT count() FROM person_distinct_id WHERE team_id = ${project.id}`)) === a.length * 2, 500);
    const after = await both("/api/trends", req);
    expect(after.cluster).toEqual(after.single);
    expect(after.cluster.series[0].total).toBe(before.cluster.series[0].total - a.length);
    const funnel = await both("/api/funnels", { steps, order: "ordered", window: { value: 14, unit: "day" }, date_from: "2024-10-10", date_to: "2024-11-10" });
    expect(funnel.cluster).toEqual(funnel.single);
  });
});
