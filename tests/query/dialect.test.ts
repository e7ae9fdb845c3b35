/**
 * Dialect check: the same generated SQL over the same fixture rows on ClickHouse 18.16 (the server) and on current
 * ClickHouse (chdb 3.4, in-process, test-only install by tests/setup-oracle.sh). Every trend and funnel answer
 * must be equal. A missing chdb fails the test with the reason; it is never skipped.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { QueryRunner } from "../../lib/clickhouse/run.ts";
import { generateEvents, toEventRow, type GeneratedEvent } from "../../lib/events/generator.ts";
import { CLICKHOUSE_URL, createHarness, FIXTURE_DAYS, FIXTURE_END, post, type Harness, type Project } from "./fixtures.ts";

const ROOT = join(import.meta.dir, "../..");
const CHDB_DIR = join(process.env.INGEST_STATE_DIR ?? join(ROOT, ".local"), "oracle/node_modules/chdb");

interface ChdbModule {
  Session: new (path?: string) => { query(q: string, format?: string): string; cleanup(): void };
}

let chdb: ChdbModule | undefined;
let chdbError = "";
let h: Harness;
let project: Project;
let events: GeneratedEvent[];
let session: InstanceType<ChdbModule["Session"]> | undefined;

beforeAll(async () => {
  h = await createHarness();
  project = await h.createProject();
  // A third of the users anonymous first: person state (written by the consumer's person processing on the
  // server) is copied row for row into chdb, so both engines resolve persons from the same rows.
  events = [...generateEvents({ seed: 11, teamId: project.id, users: 200, events: 8000, days: FIXTURE_DAYS, end: FIXTURE_END, duplicateRate: 0.05, anonymousShare: 0.34 })];
  await h.load(events);
  await h.applyPersons(events);
  if (!existsSync(join(CHDB_DIR, "package.json"))) {
    chdbError = `chdb is not installed at ${CHDB_DIR}: run tests/setup-oracle.sh (make test does); see /tmp/chdb.log for an earlier install`;
    return;
  }
  try {
    chdb = (await import(join(CHDB_DIR, "index.mjs"))) as ChdbModule;
  } catch (err) {
    chdbError = `chdb at ${CHDB_DIR} failed to load: ${err instanceof Error ? err.message : String(err)}`;
    return;
  }
  session = new chdb.Session();
  // Every migration, in order, as init-clickhouse.sh applies them (a fresh database: no skip-if guard holds).
  for (const file of readdirSync(join(ROOT, "infrastructure/clickhouse")).filter((f) => f.endsWith(".sql")).sort()) {
    const ddl = readFileSync(join(ROOT, "infrastructure/clickhouse", file), "utf8").replaceAll("${DATABASE}", "analytics");
    for (const stmt of ddl.split(/;\s*$/m).map((s) => s.replace(/--.*$/gm, "").trim()).filter(Boolean)) session.query(stmt);
  }
  // Same rows, duplicates in their own insert, as on the server.
  for (const part of [events.filter((e) => !e.duplicate), events.filter((e) => e.duplicate)]) {
    session.query(`INSERT INTO analytics.events FORMAT JSONEachRow\n${part.map((e, i) => JSON.stringify(toEventRow(e, i))).join("\n")}`);
  }
  for (const table of ["persons", "person_distinct_id"]) {
    const rows = await (await fetch(`${CLICKHOUSE_URL}/?database=analytics`, { method: "POST", body: `SELECT * FROM ${table} WHERE team_id = ${project.id} FORMAT JSONEachRow` })).text();
    expect(rows.length).toBeGreaterThan(0);
    session.query(`INSERT INTO analytics.${table} FORMAT JSONEachRow\n${rows}`);
  }
});
afterAll(async () => {
  session?.cleanup();
  await h.close();
});

function chdbRunner(): QueryRunner {
  return async <Row>(q: { text: string }) => {
    const body = JSON.parse(session!.query(q.text, "JSON")) as { data: Row[]; totals?: Row; statistics?: { elapsed: number; rows_read: number; bytes_read: number } };
    return {
      rows: body.data,
      ...(body.totals !== undefined ? { totals: body.totals } : {}),
      statistics: { elapsedMs: (body.statistics?.elapsed ?? 0) * 1000, rowsRead: Number(body.statistics?.rows_read ?? 0), bytesRead: Number(body.statistics?.bytes_read ?? 0) },
    };
  };
}

const RANGE = { date_from: "2024-10-10", date_to: "2024-11-12" };
const TRENDS: Record<string, unknown>[] = [
  { series: [{ event: null }, { event: "signup", math: "unique_users" }, { event: "purchase", math: "per_user_avg" }] },
  { series: [{ event: "$pageview", filters: [{ key: "$current_url", operator: "regex", value: "docs" }, { key: "is_first", operator: "neq", value: true }] }], interval: "week", timezone: "America/New_York" },
  { series: [{ event: null, math: "unique_users" }], breakdown: ["$browser", "plan"], breakdown_limit: 4, timezone: "Europe/Berlin" },
  { series: [{ event: "purchase", filters: [{ any: [{ key: "amount", operator: "gt", value: 300 }, { key: "plan", operator: "in", value: ["pro"] }] }] }], interval: "hour", date_from: "2024-10-26", date_to: "2024-10-28", timezone: "Europe/Berlin" },
  { series: [{ event: null, filters: [{ key: "$referrer", operator: "is_not_set" }, { key: "$current_url", operator: "not_contains", value: "'" }] }], interval: "month", timezone: "Asia/Kolkata" },
  // Persons: person property filter (in an OR group with an event property) and breakdown.
  { series: [{ event: "$pageview", math: "unique_users", filters: [{ any: [{ type: "person", key: "email", operator: "is_set" }, { key: "plan", operator: "eq", value: "pro" }] }] }] },
  { series: [{ event: "signup", math: "per_user_avg" }], breakdown: [{ type: "person", key: "email" }, "plan"], breakdown_limit: 3 },
];
const STEPS = [{ event: "signup" }, { event: "activate" }, { event: "purchase" }];
const FUNNELS: Record<string, unknown>[] = [
  { steps: STEPS },
  { steps: STEPS, order: "strict", window: { value: 3, unit: "day" } },
  { steps: STEPS, order: "unordered", window: { value: 2, unit: "day" } },
  { steps: STEPS, breakdown: "$browser", breakdown_limit: 3 },
  { steps: STEPS, order: "strict", breakdown: "plan" },
  { steps: [{ event: "$pageview", filters: [{ key: "is_first", operator: "eq", value: false }] }, { event: "search" }], window: { value: 30, unit: "minute" } },
  { steps: [{ event: "$pageview" }, { event: "signup" }, { event: "purchase" }], filters: [{ type: "person", key: "email", operator: "is_set" }] },
  { steps: [{ event: "$pageview" }, { event: "signup" }], order: "strict", breakdown: { type: "person", key: "email" }, breakdown_limit: 2 },
  { steps: [{ event: "$pageview" }, { event: "$pageview" }, { event: "purchase" }], order: "unordered", window: { value: 1, unit: "day" } },
];

const strip = (body: any) => ({ ...body, clickhouse: undefined });

describe("ClickHouse 18.16 vs current ClickHouse (chdb)", () => {
  test("chdb is installed and is current ClickHouse", () => {
    if (!chdb) throw new Error(chdbError);
    const version = session!.query("SELECT version()", "TSV").trim();
    expect(Number(version.split(".")[0])).toBeGreaterThanOrEqual(24);
  });

  test("every trend answer is equal", async () => {
    if (!chdb) throw new Error(chdbError);
    const server = h.app({ cache: null });
    const current = h.app({ cache: null, run: chdbRunner(), table: "analytics.events" });
    for (const body of TRENDS) {
      const a = await post(server, "/api/trends", project.key, { ...RANGE, ...body });
      const b = await post(current, "/api/trends", project.key, { ...RANGE, ...body });
      expect(a.status).toBe(200);
      expect(b.status).toBe(200);
      expect(a.body.series.some((s: any) => s.total > 0)).toBe(true);
      expect(strip(b.body)).toEqual(strip(a.body));
    }
  });

  test("trend rollup: current ClickHouse keeps and reads it, answers equal to 18.16's raw path", async () => {
    if (!chdb) throw new Error(chdbError);
    const server = h.app({ cache: null });
    const write = async (table: string, rows: Record<string, unknown>[]) => {
      session!.query(`INSERT INTO ${table} FORMAT JSONEachRow\n${rows.map((r) => JSON.stringify(r)).join("\n")}`);
    };
    const current = h.app({ cache: null, run: chdbRunner(), table: "analytics.events", rollupWrite: write });
    const stored = () => Number(session!.query(`SELECT count() FROM analytics.events_slot_counts WHERE team_id = ${project.id}`, "TSV").trim());
    // The materialized view saw the fixture's inserts (duplicates included).
    expect(Number(session!.query(`SELECT sum(inserted) FROM analytics.events_slot_inserts WHERE team_id = ${project.id}`, "TSV").trim())).toBe(events.length);
    const bodies = [
      { series: [{ event: null }, { event: "$pageview" }], interval: "day" },
      { series: [{ event: "signup" }], interval: "hour", timezone: "Asia/Kolkata", date_from: "2024-10-26", date_to: "2024-10-28" },
      { series: [{ event: null }], interval: "week", timezone: "America/New_York" },
    ];
    for (const round of [1, 2]) {
      for (const body of bodies) {
        const a = await post(server, "/api/trends", project.key, { ...RANGE, ...body });
        const b = await post(current, "/api/trends", project.key, { ...RANGE, ...body });
        expect(a.status).toBe(200);
        expect(b.status).toBe(200);
        expect(strip(b.body)).toEqual(strip(a.body));
        // Second round: whole slots at both ends come from the stored counts alone (no recount query).
        if (round === 2) expect(b.body.clickhouse.queries).toBe(body.series.length * 2);
      }
      expect(stored()).toBeGreaterThan(0);
    }
  });

  test("every funnel answer is equal", async () => {
    if (!chdb) throw new Error(chdbError);
    const server = h.app({ cache: null });
    const current = h.app({ cache: null, run: chdbRunner(), table: "analytics.events" });
    for (const body of FUNNELS) {
      const a = await post(server, "/api/funnels", project.key, { ...RANGE, ...body });
      const b = await post(current, "/api/funnels", project.key, { ...RANGE, ...body });
      expect(a.status).toBe(200);
      expect(b.status).toBe(200);
      expect(a.body.results[0].steps[1].count).toBeGreaterThan(0);
      expect(strip(b.body)).toEqual(strip(a.body));
    }
  });

  test("the insights page's read endpoints (events, event names, property keys) answer alike", async () => {
    if (!chdb) throw new Error(chdbError);
    const now = () => FIXTURE_END.getTime();
    const server = h.app({ cache: null, now });
    const current = h.app({ cache: null, now, run: chdbRunner(), table: "analytics.events" });
    const get = async (app: typeof server, path: string) => {
      const res = await app.request(path, { headers: { authorization: `Bearer ${project.key}` } });
      expect(res.status).toBe(200);
      return strip(await res.json());
    };
    for (const path of ["/api/events?limit=200", "/api/events?limit=30&after=2024-11-10T00:00:00Z&event=signup", "/api/events?limit=20&before=2024-11-01T12:00:00%2B01:00"]) {
      const a = await get(server, path);
      expect(a.results.length).toBeGreaterThan(0);
      expect(await get(current, path)).toEqual(a);
    }
    // Counts are stored rows, which a background merge on either engine may lower: compare everything else, and
    // in name order (the answer is in count order, which such a merge can swap for two close counts).
    const names = async (app: typeof server) =>
      (await get(app, "/api/event_names?days=60")).results.map(({ count: _c, ...rest }: any) => rest).sort((x: any, y: any) => (x.event < y.event ? -1 : 1));
    const a = await names(server);
    expect(a.length).toBeGreaterThan(3);
    expect(await names(current)).toEqual(a);
    // 8000 events: fewer than the sample size, so both engines see every event's keys.
    const keys = async (app: typeof server) => (await get(app, "/api/property_keys?days=60")).results.map((r: any) => r.key).sort();
    expect(await keys(current)).toEqual(await keys(server));
  });

  test("GET /api/persons answers alike", async () => {
    if (!chdb) throw new Error(chdbError);
    const server = h.app({ cache: null });
    const current = h.app({ cache: null, run: chdbRunner(), table: "analytics.events" });
    const ids = events.filter((e) => e.event === "$identify").slice(0, 5).flatMap((e) => [e.distinctId, String(e.properties.$anon_distinct_id)]);
    expect(ids.length).toBe(10);
    for (const id of [...ids, "nobody"]) {
      const a = await server.request(`/api/persons/${id}`, { headers: { authorization: `Bearer ${project.key}` } });
      const b = await current.request(`/api/persons/${id}`, { headers: { authorization: `Bearer ${project.key}` } });
      expect(b.status).toBe(a.status);
      expect(strip(await b.json())).toEqual(strip(await a.json()));
    }
  });
});
