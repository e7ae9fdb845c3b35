/**
 * Queries count persons: trends' unique users, per-user averages and funnels over generated events where a third
 * of users are anonymous first and identified mid-journey, plus handmade alias / refused / dangerous merges. All
 * identifies are "late": the events are stored first, person state after, and earlier anonymous events still
 * belong to the person. The oracle (tests/query/oracle.ts, OraclePersons) derives persons on its own from the same
 * events; the person state the API reads is written by the consumer's person processing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { generateEvents, type GeneratedEvent } from "../../lib/events/generator.ts";
import { createHarness, FIXTURE_DAYS, FIXTURE_END, post, type Harness, type Project } from "./fixtures.ts";
import { labelKey, oracleFunnel, OraclePersons, oracleTrend, type OracleFilter, type OracleStep } from "./oracle.ts";

let h: Harness;
let project: Project;
let events: GeneratedEvent[];
let app: ReturnType<Harness["app"]>;
const persons = new OraclePersons();

const S = (iso: string) => Date.parse(iso) / 1000;
const RANGE = { date_from: "2024-10-10", date_to: "2024-11-10", fromS: S("2024-10-10T00:00:00Z"), toS: S("2024-11-11T00:00:00Z") };

/** Handmade journeys on 2024-11-05, each a scenario of its own. */
function handmade(teamId: number): GeneratedEvent[] {
  let t = S("2024-11-05T10:00:00Z");
  let n = 0;
  const e = (distinctId: string, event: string, properties: GeneratedEvent["properties"] = {}, set?: GeneratedEvent["set"]): GeneratedEvent => ({
    uuid: `00000000-0000-4000-8000-${String(++n).padStart(12, "0")}`,
    teamId,
    event,
    distinctId,
    timestamp: (t += 60),
    msec: 0,
    properties,
    duplicate: false,
    ...(set ? { set } : {}),
  });
  return [
    // alias: a browser id, then the server's id aliases it; signup and purchase on the server id.
    e("web-1", "$pageview"),
    e("srv-1", "$create_alias", { alias: "web-1" }),
    e("srv-1", "signup"),
    e("srv-1", "purchase"),
    // two identified users; identify(alice <- bob) is refused: they stay two persons.
    e("anon-a", "$pageview"),
    e("alice", "$identify", { $anon_distinct_id: "anon-a" }, { email: "alice@x" }),
    e("anon-b", "$pageview"),
    e("bob", "$identify", { $anon_distinct_id: "anon-b" }, { email: "bob@x" }),
    e("alice", "$identify", { $anon_distinct_id: "bob" }),
    e("bob", "signup"),
    // two identified users merged on purpose.
    e("carol", "$identify", { $anon_distinct_id: "anon-c" }, { plan_p: "pro" }),
    e("dave", "$identify", { $anon_distinct_id: "anon-d" }),
    e("carol", "$merge_dangerously", { alias: "dave" }),
    e("dave", "signup"),
    e("carol", "$pageview"),
    // bad input: identify into itself and without an anonymous id.
    e("self", "$identify", { $anon_distinct_id: "self" }),
    e("lonely", "$identify"),
  ];
}

beforeAll(async () => {
  h = await createHarness();
  project = await h.createProject();
  events = [
    ...generateEvents({ seed: 21, teamId: project.id, users: 300, events: 12_000, days: FIXTURE_DAYS, end: FIXTURE_END, duplicateRate: 0.05, anonymousShare: 0.34 }),
    ...handmade(project.id),
  ];
  // Events first, persons after: every identify is late.
  await h.load(events);
  await h.applyPersons(events);
  for (const e of events) if (!e.duplicate) persons.apply(e);
  app = h.app({ cache: null });
});
afterAll(() => h.close());

describe("persons in queries", () => {
  test("the fixture has anonymous-first users, and persons differ from distinct_ids", () => {
    const identifies = events.filter((e) => e.event === "$identify" && !e.duplicate).length;
    expect(identifies).toBeGreaterThan(60);
    const ids = new Set(events.map((e) => e.distinctId));
    const people = new Set([...ids].map((d) => persons.key(d)));
    expect(people.size).toBeLessThan(ids.size - 60);
  });

  test("trends: unique users and per-user averages count persons, per bucket and in total", async () => {
    for (const math of ["unique_users", "per_user_avg"] as const) {
      for (const event of [null, "$pageview", "purchase"]) {
        const res = await post(app, "/api/trends", project.key, { series: [{ event, math }], interval: "week", date_from: RANGE.date_from, date_to: RANGE.date_to });
        expect(res.status).toBe(200);
        const [exp] = oracleTrend(events, { teamId: project.id, fromS: RANGE.fromS, toS: RANGE.toS, interval: "week", tz: "UTC", series: { event, math }, persons });
        const got = res.body.series[0];
        expect(got.total).toBeCloseTo(exp!.total, 9);
        res.body.labels.forEach((label: string, i: number) => expect(got.data[i]).toBeCloseTo(exp!.buckets.get(labelKey("week", label)) ?? 0, 9));
        // Counting distinct_ids would have given another answer.
        if (math === "unique_users") expect(got.total).toBeLessThan(new Set(events.filter((e) => event === null || e.event === event).map((e) => e.distinctId)).size);
      }
    }
  });

  test("a person property filter and breakdown (email is_set; breakdown by person email)", async () => {
    const filters: OracleFilter[] = [{ type: "person", key: "email", operator: "is_set" }];
    const res = await post(app, "/api/trends", project.key, { series: [{ event: "$pageview", math: "unique_users", filters }], date_from: RANGE.date_from, date_to: RANGE.date_to });
    expect(res.status).toBe(200);
    const [exp] = oracleTrend(events, { teamId: project.id, fromS: RANGE.fromS, toS: RANGE.toS, interval: "day", tz: "UTC", series: { event: "$pageview", math: "unique_users", filters }, persons });
    expect(res.body.series[0].total).toBe(exp!.total);
    expect(exp!.total).toBeGreaterThan(10);
    const bd = await post(app, "/api/trends", project.key, {
      series: [{ event: "signup", math: "unique_users" }],
      breakdown: [{ type: "person", key: "email" }],
      breakdown_limit: 5,
      date_from: RANGE.date_from,
      date_to: RANGE.date_to,
    });
    expect(bd.status).toBe(200);
    // The oracle breaks down by event properties only; check the breakdown sums against persons directly.
    const signups = events.filter((e) => e.event === "signup" && e.timestamp >= RANGE.fromS && e.timestamp < RANGE.toS);
    const byEmail = new Map<string, Set<string>>();
    for (const e of signups) {
      const email = String(persons.propertiesOf(e.distinctId).email ?? "$none");
      byEmail.set(email, (byEmail.get(email) ?? new Set()).add(persons.key(e.distinctId)));
    }
    const none = bd.body.series.find((s: any) => s.breakdown_value[0] === "$none");
    expect(none.total).toBe(byEmail.get("$none")!.size);
    expect(bd.body.series.length).toBe(6);
  });

  const STEPS: OracleStep[] = [{ event: "$pageview" }, { event: "signup" }, { event: "purchase" }];
  for (const order of ["ordered", "strict", "unordered"] as const) {
    test(`funnels (${order}) convert persons across their anonymous and identified ids`, async () => {
      const res = await post(app, "/api/funnels", project.key, { steps: STEPS, order, date_from: RANGE.date_from, date_to: RANGE.date_to });
      expect(res.status).toBe(200);
      const [exp] = oracleFunnel(events, { teamId: project.id, fromS: RANGE.fromS, toS: RANGE.toS, steps: STEPS, windowS: 14 * 86400, order, persons });
      const got = res.body.results[0].steps;
      expect(got.map((s: any) => s.count)).toEqual(exp!.steps.map((s) => s.count));
      for (const [j, s] of exp!.steps.entries()) {
        if (s.avg === null) expect(got[j].avg_seconds_from_previous).toBeNull();
        else expect(got[j].avg_seconds_from_previous).toBeCloseTo(s.avg, 6);
        expect(got[j].median_seconds_from_previous).toBe(s.median);
      }
      // By distinct_id the same funnel converts fewer: the journeys that cross an identify are lost.
      const byId = oracleFunnel(events, { teamId: project.id, fromS: RANGE.fromS, toS: RANGE.toS, steps: STEPS, windowS: 14 * 86400, order });
      if (order === "ordered") expect(byId[0]!.steps[2]!.count).toBeLessThan(exp!.steps[2]!.count);
    });
  }

  test("funnel with a person property filter", async () => {
    const filters: OracleFilter[] = [{ type: "person", key: "email", operator: "is_set" }];
    const res = await post(app, "/api/funnels", project.key, { steps: STEPS, filters, date_from: RANGE.date_from, date_to: RANGE.date_to });
    expect(res.status).toBe(200);
    const [exp] = oracleFunnel(events, { teamId: project.id, fromS: RANGE.fromS, toS: RANGE.toS, steps: STEPS, filters, windowS: 14 * 86400, order: "ordered", persons });
    expect(res.body.results[0].steps.map((s: any) => s.count)).toEqual(exp!.steps.map((s) => s.count));
  });
});

describe("GET /api/persons/{distinct_id}", () => {
  test("the OpenAPI document covers the endpoint, person filters and person breakdowns", async () => {
    const doc = (await (await app.request("/openapi.json")).json()) as any;
    expect(doc.paths["/api/persons/{distinct_id}"].get.responses["404"]).toBeDefined();
    const text = JSON.stringify(doc.paths["/api/trends"]) + JSON.stringify(doc.paths["/api/funnels"]);
    expect(text).toContain('"person"');
    expect(JSON.stringify(doc.paths["/api/persons/{distinct_id}"].get.responses["200"])).toContain("distinct_ids");
  });


  const get = (id: string, key = project.key) => app.request(`/api/persons/${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${key}` } });

  test("alias, refused merge, dangerous merge, generated identifies: the API lists what the oracle derives", async () => {
    const anonFirst = events.find((e) => e.event === "$identify" && e.distinctId.startsWith("user-"))!;
    for (const id of ["web-1", "srv-1", "alice", "bob", "carol", "anon-d", "self", "lonely", anonFirst.distinctId, String(anonFirst.properties.$anon_distinct_id)]) {
      const res = await get(id);
      expect(res.status).toBe(200);
      const body = (await res.json()) as any;
      expect(body.distinct_ids).toEqual(persons.idsOf(id));
      expect(body.properties).toEqual(persons.propertiesOf(id));
      expect(body.is_identified).toBe(true);
    }
    expect(((await (await get("alice")).json()) as any).distinct_ids).toEqual(["alice", "anon-a"]);
    expect(((await (await get("dave")).json()) as any).distinct_ids).toEqual(["anon-c", "anon-d", "carol", "dave"]);
  });

  test("an id without person state is 404 not_found; another project's key cannot see it", async () => {
    const res = await get("user-21-0-never-seen");
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).code).toBe("not_found");
    const other = await h.createProject();
    expect((await get("alice", other.key)).status).toBe(404);
    expect((await get("alice", "phx_wrong")).status).toBe(401);
  });
});
