/**
 * The read endpoints behind the insights page: GET /api/events, /api/event_names, /api/property_keys. Real
 * ClickHouse/PostgreSQL/Redis, generated events with duplicates; answers are checked against the generated events.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { GeneratedEvent } from "../../lib/events/generator.ts";
import { createHarness, FIXTURE_END, fixtureEvents, HOSTILE, type Harness, type Project } from "./fixtures.ts";

let h: Harness;
let p: Project;
let other: Project;
let events: GeneratedEvent[];
const NOW = FIXTURE_END.getTime();

beforeAll(async () => {
  h = await createHarness();
  p = await h.createProject();
  other = await h.createProject();
  events = fixtureEvents(p.id, 5, 80, 3000);
  await h.load(events);
  await h.load(fixtureEvents(other.id, 6, 20, 500));
});
afterAll(() => h.close());

async function get(path: string, key: string | null = p.key, headers: Record<string, string> = {}) {
  const app = h.app({ cache: null, now: () => NOW });
  const res = await app.request(path, { headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers } });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}

const at = (e: GeneratedEvent) => e.timestamp * 1000 + e.msec;
const iso = (ms: number) => new Date(ms).toISOString();
/** The generated events as the API orders them: newest instant (to the ms) first, then uuid descending; one per uuid. */
const newest = () =>
  events
    .filter((e) => !e.duplicate)
    .sort((a, b) => at(b) - at(a) || (a.uuid < b.uuid ? 1 : a.uuid > b.uuid ? -1 : 0));

describe("GET /api/events", () => {
  test("the newest events of the key's project, newest first, each once, with their properties", async () => {
    const res = await get("/api/events?limit=50");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const want = newest().slice(0, 50);
    expect(res.body.results.map((e: any) => e.uuid)).toEqual(want.map((e) => e.uuid));
    expect(res.body.results[0]).toEqual({
      uuid: want[0]!.uuid,
      event: want[0]!.event,
      distinct_id: want[0]!.distinctId,
      timestamp: iso(at(want[0]!)),
      properties: want[0]!.properties,
      properties_bytes: JSON.stringify(want[0]!.properties).length,
    });
    expect(res.body.clickhouse.queries).toBe(1);
  });

  test("a page full of duplicated events still has `limit` distinct events", async () => {
    const dupIds = new Set(events.filter((e) => e.duplicate).map((e) => e.uuid));
    const res = await get("/api/events?limit=200");
    const uuids = res.body.results.map((e: any) => e.uuid);
    expect(uuids.length).toBe(200);
    expect(new Set(uuids).size).toBe(200);
    expect(uuids.some((u: string) => dupIds.has(u))).toBe(true);
  });

  test("after is inclusive, before exclusive (to the millisecond), event and distinct_id filter", async () => {
    const all = newest();
    const t = at(all[40]!);
    expect(t % 1000).not.toBe(0); // the bound falls inside a second: the millisecond comparison matters
    const after = await get(`/api/events?limit=200&after=${encodeURIComponent(iso(t))}`);
    expect(after.body.results.map((e: any) => e.uuid)).toEqual(all.filter((e) => at(e) >= t).map((e) => e.uuid));
    const before = await get(`/api/events?limit=10&before=${encodeURIComponent(iso(t))}`);
    expect(before.body.results.map((e: any) => e.uuid)).toEqual(all.filter((e) => at(e) < t).slice(0, 10).map((e) => e.uuid));
    // An offset form of the same instant is the same instant.
    const offset = new Date(t + 2 * 3600_000).toISOString().slice(0, 23) + "+02:00";
    expect((await get(`/api/events?limit=200&after=${encodeURIComponent(offset)}`)).body.results.length).toBe(after.body.results.length);
    const signup = await get("/api/events?limit=20&event=signup");
    expect(signup.body.results.map((e: any) => e.uuid)).toEqual(all.filter((e) => e.event === "signup").slice(0, 20).map((e) => e.uuid));
    const user = all[3]!.distinctId;
    const byUser = await get(`/api/events?limit=200&distinct_id=${encodeURIComponent(user)}`);
    expect(byUser.body.results.map((e: any) => e.uuid)).toEqual(all.filter((e) => e.distinctId === user).slice(0, 200).map((e) => e.uuid));
  });

  test("isolation: another key sees only its own project; team_id and project ids in the query are rejected", async () => {
    const mine = new Set(events.map((e) => e.uuid));
    const theirs = await get("/api/events?limit=200", other.key);
    expect(theirs.status).toBe(200);
    expect(theirs.body.results.length).toBeGreaterThan(0);
    expect(theirs.body.results.filter((e: any) => mine.has(e.uuid))).toEqual([]);
    const sneaky = await get(`/api/events?team_id=${p.id}`, other.key);
    expect(sneaky.status).toBe(400);
    expect(sneaky.body.code).toBe("invalid_request");
  });

  test("limits and bad input are 400 naming the parameter; no key is 401", async () => {
    for (const [q, path] of [
      ["limit=0", "limit"],
      ["limit=201", "limit"],
      ["limit=ten", "limit"],
      ["after=yesterday", "after"],
      ["after=2024-11-01", "after"],
      ["before=2200-01-01T00:00:00Z", "before"],
      ["event=", "event"],
      ["event=a%00b", "event"],
    ] as const) {
      const res = await get(`/api/events?${q}`);
      expect({ q, status: res.status, path: res.body.path }).toEqual({ q, status: 400, path });
    }
    expect((await get("/api/events", null)).status).toBe(401);
    expect((await get("/api/events", "phs_unknown_key_000000000")).body.code).toBe("invalid_key");
  });

  test("hostile event names and distinct_ids are just values", async () => {
    for (const s of HOSTILE.filter((x) => !/[\u0000-\u001f\u007f]/.test(x))) {
      const res = await get(`/api/events?event=${encodeURIComponent(s)}&distinct_id=${encodeURIComponent(s)}`);
      expect({ s, status: res.status, n: res.body.results?.length }).toEqual({ s, status: 200, n: 0 });
    }
  });
});

describe("GET /api/event_names", () => {
  test("every event name of the period with its count and last seen, most frequent first", async () => {
    const res = await get("/api/event_names?days=60", p.key, { "cache-control": "no-cache" });
    expect(res.status).toBe(200);
    const distinct = new Map<string, number>();
    const rows = new Map<string, number>();
    const last = new Map<string, number>();
    for (const e of events) {
      rows.set(e.event, (rows.get(e.event) ?? 0) + 1);
      if (!e.duplicate) distinct.set(e.event, (distinct.get(e.event) ?? 0) + 1);
      last.set(e.event, Math.max(last.get(e.event) ?? 0, e.timestamp * 1000));
    }
    expect(res.body.results.map((r: any) => r.event).sort()).toEqual([...distinct.keys()].sort());
    for (const r of res.body.results) {
      // Stored rows: between the distinct events and the rows inserted (a merge may have removed copies).
      expect(r.count).toBeGreaterThanOrEqual(distinct.get(r.event)!);
      expect(r.count).toBeLessThanOrEqual(rows.get(r.event)!);
      expect(r.last_seen).toBe(iso(last.get(r.event)!));
    }
    const counts = res.body.results.map((r: any) => r.count);
    expect(counts).toEqual([...counts].sort((a, b) => b - a));
  });

  test("days bounds the period; bad days is 400", async () => {
    const res = await get("/api/event_names?days=1", p.key, { "cache-control": "no-cache" });
    const recent = new Set(events.filter((e) => e.timestamp * 1000 >= NOW - 86_400_000).map((e) => e.event));
    expect(res.body.results.map((r: any) => r.event).sort()).toEqual([...recent].sort());
    expect((await get("/api/event_names?days=0")).status).toBe(400);
    expect((await get("/api/event_names?days=4000")).body.path).toBe("days");
  });
});

describe("GET /api/property_keys", () => {
  test("the keys of the project's events (all sampled here: fewer than the sample size)", async () => {
    const res = await get("/api/property_keys?days=60", p.key, { "cache-control": "no-cache" });
    expect(res.status).toBe(200);
    const keys = new Map<string, number>();
    for (const e of events.filter((x) => !x.duplicate)) for (const k of Object.keys(e.properties)) keys.set(k, (keys.get(k) ?? 0) + 1);
    expect(res.body.results.map((r: any) => r.key).sort()).toEqual([...keys.keys()].sort());
    for (const r of res.body.results) expect(r.count).toBeGreaterThanOrEqual(keys.get(r.key)!);
    const purchase = await get("/api/property_keys?days=60&event=purchase", p.key, { "cache-control": "no-cache" });
    expect(purchase.body.results.map((r: any) => r.key)).toContain("amount");
    const pageview = await get("/api/property_keys?days=60&event=%24pageview", p.key, { "cache-control": "no-cache" });
    expect(pageview.body.results.map((r: any) => r.key)).not.toContain("amount");
  });
});

test("the OpenAPI document describes the GET endpoints and their parameters", async () => {
  const doc = (await (await h.app({ cache: null }).request("/openapi.json")).json()) as any;
  for (const path of ["/api/events", "/api/event_names", "/api/property_keys"]) expect(doc.paths[path].get.security).toEqual([{ projectKey: [] }]);
  expect(doc.paths["/api/events"].get.parameters.map((x: any) => x.name)).toEqual(["limit", "after", "before", "event", "distinct_id"]);
  expect(doc.paths["/api/events"].get.parameters[0].schema.description).toContain("1..200");
});
