/**
 * Person state against the real PostgreSQL and ClickHouse: PostHog's identify / alias / merge_dangerously
 * semantics, $set / $set_once / $unset, bad input with defined outcomes (nothing half-written), idempotence,
 * and two consumers merging the two ids of one person at the same moment.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Registry } from "prom-client";
import { createClickHouse } from "../../lib/clickhouse/client.ts";
import { CAPTURED_EVENT_VERSION, type CapturedEvent } from "../../lib/events/captured-event.ts";
import { createLogger } from "../../lib/log/logger.ts";
import { createPostgres, type Sql } from "../../lib/postgres/client.ts";
import { ClickHousePersonRows } from "../../apps/consumer/persons/person-rows.ts";
import { PersonStore } from "../../apps/consumer/persons/person-store.ts";
import { personUpdateOf } from "../../apps/consumer/persons/person-update.ts";
import { Persons } from "../../apps/consumer/persons/persons.ts";
import { ch, CLICKHOUSE, CH_DB, uniqueTeamId } from "../support/stack.ts";

const PG = process.env.POSTGRES_URL ?? "postgres://ingest:ingest@127.0.0.1:5432/ingest";
const MAX_BYTES = 2048;
let pg1: Sql;
let pg2: Sql;
const clickhouse = createClickHouse({ url: CLICKHOUSE, database: CH_DB });
const log = createLogger("persons-test", process.env.TEST_LOG_LEVEL ?? "silent");
const teams: number[] = [];

beforeAll(() => {
  pg1 = createPostgres(PG, { max: 2 });
  pg2 = createPostgres(PG, { max: 2 });
});
afterAll(async () => {
  if (teams.length) {
    await pg1`DELETE FROM person_distinct_ids WHERE team_id IN ${pg1(teams)}`;
    await pg1`DELETE FROM persons WHERE team_id IN ${pg1(teams)}`;
    for (const t of ["persons", "person_distinct_id"]) await clickhouse.command({ query: `ALTER TABLE ${t} DELETE WHERE team_id IN (${teams.join(",")})` }).catch(() => {});
  }
  await Promise.all([pg1.end({ timeout: 2 }), pg2.end({ timeout: 2 }), clickhouse.close()]);
});

function setup(pg: Sql = pg1) {
  const registry = new Registry();
  const persons = new Persons(new PersonStore(pg, { maxPropertiesBytes: MAX_BYTES }), new ClickHousePersonRows(clickhouse), registry, log);
  return { persons, registry, store: new PersonStore(pg, { maxPropertiesBytes: MAX_BYTES }) };
}

function team(): number {
  const t = uniqueTeamId();
  teams.push(t);
  return t;
}

let clock = Date.parse("2026-11-01T00:00:00Z");
function event(teamId: number, name: string, distinctId: string, extra: Partial<CapturedEvent> = {}): CapturedEvent {
  clock += 1000;
  return {
    v: CAPTURED_EVENT_VERSION,
    uuid: crypto.randomUUID(),
    team_id: teamId,
    event: name,
    distinct_id: distinctId,
    timestamp: new Date(clock).toISOString(),
    properties: {},
    ip: "",
    received_at: new Date(clock).toISOString(),
    ...extra,
  };
}
const identify = (t: number, id: string, anon: unknown, extra: Partial<CapturedEvent> = {}) =>
  event(t, "$identify", id, { ...extra, properties: { $anon_distinct_id: anon, ...(extra.properties ?? {}) } });
const alias = (t: number, id: string, other: unknown, name = "$create_alias") => event(t, name, id, { properties: { alias: other } });

async function run(persons: Persons, events: CapturedEvent[]) {
  await persons.apply(events.map((e) => personUpdateOf(e)).filter((u) => u !== null));
}

/** ClickHouse's view: distinct_id -> person (highest version), person -> properties (highest version). */
async function chView(teamId: number) {
  const ids = new Map((await ch(`SELECT distinct_id, argMax(person_id, version) FROM person_distinct_id WHERE team_id = ${teamId} GROUP BY distinct_id`)).map(([d, p]) => [d!, p!]));
  const props = new Map(
    (await ch(`SELECT id, argMax(properties, version), argMax(is_deleted, version) FROM persons WHERE team_id = ${teamId} GROUP BY id`)).map(([id, p, del]) => [id!, { properties: JSON.parse(p!), deleted: del === "1" }]),
  );
  return { ids, props };
}

async function counted(registry: Registry, kind: string, outcome: string): Promise<number> {
  const m = (await registry.getSingleMetric("consumer_person_updates_total")!.get()).values.find((v) => v.labels.kind === kind && v.labels.outcome === outcome);
  return m?.value ?? 0;
}

describe("persons: PostHog semantics", () => {
  test("identify merges the anonymous person into the identified id; ClickHouse agrees with PostgreSQL", async () => {
    const t = team();
    const { persons, store, registry } = setup();
    await run(persons, [
      event(t, "$pageview", "anon-1", { $set_once: { first_url: "/a" }, $set: { plan: "free" } }),
      identify(t, "user@x", "anon-1", { $set: { email: "user@x" } }),
    ]);
    const found = await store.find(t, "user@x");
    expect(found!.distinctIds).toEqual(["anon-1", "user@x"]);
    expect(found!.person.isIdentified).toBe(true);
    expect(found!.person.properties).toEqual({ first_url: "/a", plan: "free", email: "user@x" });
    const view = await chView(t);
    expect(view.ids.get("anon-1")).toBe(found!.person.id);
    expect(view.ids.get("user@x")).toBe(found!.person.id);
    expect(view.props.get(found!.person.id)!.properties).toEqual(found!.person.properties);
    expect(await counted(registry, "merge", "added_id")).toBe(1);
  });

  test("identify with neither id known creates one person with both", async () => {
    const t = team();
    const { persons, store } = setup();
    await run(persons, [identify(t, "u", "a")]);
    const found = await store.find(t, "a");
    expect(found!.distinctIds).toEqual(["a", "u"]);
  });

  test("two anonymous persons merge; the identified one keeps its values, created_at is the earlier", async () => {
    const t = team();
    const { persons, store, registry } = setup();
    await run(persons, [
      event(t, "e", "anon", { $set: { plan: "free", ref: "google" } }),
      event(t, "e", "user", { $set: { plan: "pro" } }),
      identify(t, "user", "anon"),
    ]);
    const found = await store.find(t, "anon");
    expect(found!.distinctIds).toEqual(["anon", "user"]);
    expect(found!.person.properties).toEqual({ plan: "pro", ref: "google" });
    expect(await counted(registry, "merge", "merged")).toBe(1);
    const view = await chView(t);
    expect(view.ids.get("anon")).toBe(found!.person.id);
    // The merged-away person is marked deleted in ClickHouse.
    expect([...view.props.values()].filter((p) => p.deleted).length).toBe(1);
    const rows = await pg1`SELECT count(*)::int AS n FROM persons WHERE team_id = ${t}`;
    expect(rows[0]!.n).toBe(1);
  });

  test("alias merges alias into distinct_id's person", async () => {
    const t = team();
    const { persons, store } = setup();
    await run(persons, [event(t, "e", "server-id", { $set: { a: 1 } }), alias(t, "server-id", "frontend-id")]);
    expect((await store.find(t, "frontend-id"))!.distinctIds).toEqual(["frontend-id", "server-id"]);
  });

  test("two identified persons are never merged by identify or alias (refused, counted); merge_dangerously does", async () => {
    const t = team();
    const { persons, store, registry } = setup();
    await run(persons, [identify(t, "alice", "anon-a"), identify(t, "bob", "anon-b")]);
    await run(persons, [identify(t, "alice", "bob"), alias(t, "alice", "anon-b")]);
    expect((await store.find(t, "bob"))!.distinctIds).toEqual(["anon-b", "bob"]);
    expect(await counted(registry, "merge", "refused_identified")).toBe(2);
    await run(persons, [alias(t, "alice", "bob", "$merge_dangerously")]);
    expect((await store.find(t, "bob"))!.distinctIds).toEqual(["alice", "anon-a", "anon-b", "bob"]);
  });

  test("$set_once never overwrites; $unset removes; $set wins within one event", async () => {
    const t = team();
    const { persons, store } = setup();
    await run(persons, [
      event(t, "e", "u", { $set_once: { first: 1 }, $set: { x: 1, gone: true } }),
      event(t, "e", "u", { $set_once: { first: 2, later: 3 }, properties: { $unset: ["gone", 7] } }),
    ]);
    expect((await store.find(t, "u"))!.person.properties).toEqual({ first: 1, x: 1, later: 3 });
  });
});

describe("persons: bad input has defined outcomes", () => {
  test("$identify without $anon_distinct_id, into itself, with a non-id: no merge, counted; the id is identified", async () => {
    const t = team();
    const { persons, store, registry } = setup();
    await run(persons, [identify(t, "u1", undefined), identify(t, "u2", "u2"), identify(t, "u3", { not: "an id" }), alias(t, "u4", "")]);
    for (const id of ["u1", "u2", "u3"]) {
      const f = await store.find(t, id);
      expect(f!.distinctIds).toEqual([id]);
      expect(f!.person.isIdentified).toBe(true);
    }
    expect(await counted(registry, "merge", "no_other_id")).toBe(2);
    expect(await counted(registry, "merge", "self")).toBe(1);
    expect(await counted(registry, "merge", "invalid_other_id")).toBe(1);
  });

  test("merge cycles and repeats are no-ops (already_merged); re-applying a whole batch changes nothing", async () => {
    const t = team();
    const { persons, store, registry } = setup();
    const batch = [alias(t, "a", "b"), alias(t, "b", "a"), identify(t, "a", "b"), event(t, "e", "a", { $set: { k: "v" } })];
    await run(persons, batch);
    const first = await store.find(t, "a");
    const view1 = await chView(t);
    await run(persons, batch);
    const second = await store.find(t, "a");
    expect(second).toEqual(first);
    expect(await chView(t)).toEqual(view1);
    expect(await counted(registry, "merge", "already_merged")).toBe(2 + 3);
  });

  test("a ClickHouse copy that failed after PostgreSQL committed is sent again by the retry: every moved id, the person's properties", async () => {
    const t = team();
    const { store } = setup();
    const rows = new ClickHousePersonRows(clickhouse);
    let failNext = true;
    const flaky = {
      write: async (p: Parameters<typeof rows.write>[0], d: Parameters<typeof rows.write>[1]) => {
        if (failNext) {
          failNext = false;
          throw new Error("ClickHouse unavailable");
        }
        await rows.write(p, d);
      },
    };
    const persons = new Persons(store, flaky, new Registry(), log);
    const good = new Persons(store, rows, new Registry(), log);
    // A person with two ids, and another with one and properties; then one merged into the other.
    await run(good, [alias(t, "b1", "b2"), event(t, "e", "a", { $set: { plan: "pro" } })]);
    const batch = [alias(t, "a", "b1", "$merge_dangerously")];
    await expect(run(persons, batch)).rejects.toThrow("ClickHouse unavailable");
    // PostgreSQL has the merge already; the retry finds nothing to change and must still copy it.
    await run(persons, batch);
    const f = await store.find(t, "a");
    expect(f!.distinctIds).toEqual(["a", "b1", "b2"]);
    const view = await chView(t);
    for (const id of ["a", "b1", "b2"]) expect(view.ids.get(id)).toBe(f!.person.id);
    expect(view.props.get(f!.person.id)!.properties).toEqual(f!.person.properties);
    expect(f!.person.properties).toEqual({ plan: "pro" });
  });

  test("a merge whose combined properties pass the size limit merges the ids and keeps the survivor's properties whole", async () => {
    const t = team();
    const { persons, store, registry } = setup();
    await run(persons, [event(t, "e", "b", { $set: { b: "x".repeat(1200) } }), event(t, "e", "a", { $set: { a: "y".repeat(1200) } })]);
    await run(persons, [alias(t, "a", "b", "$merge_dangerously")]);
    const f = await store.find(t, "a");
    expect(f!.distinctIds).toEqual(["a", "b"]);
    expect(f!.person.properties).toEqual({ a: "y".repeat(1200) });
    expect((await chView(t)).props.get(f!.person.id)!.properties).toEqual({ a: "y".repeat(1200) });
    expect(await counted(registry, "properties", "too_large")).toBe(1);
  });

  test("a $set over the size limit is refused whole: properties unchanged in PostgreSQL and ClickHouse", async () => {
    const t = team();
    const { persons, store, registry } = setup();
    await run(persons, [event(t, "e", "u", { $set: { keep: 1 } })]);
    const before = await store.find(t, "u");
    await run(persons, [event(t, "e", "u", { $set: { small: 2, big: "x".repeat(MAX_BYTES) }, $set_once: { other: 1 } })]);
    const after = await store.find(t, "u");
    expect(after).toEqual(before);
    expect((await chView(t)).props.get(before!.person.id)!.properties).toEqual({ keep: 1 });
    expect(await counted(registry, "properties", "too_large")).toBe(1);
  });

  test("an update PostgreSQL refuses as data (a lone surrogate produced straight onto the topic) is skipped and counted; the others apply", async () => {
    const t = team();
    const { persons, store, registry } = setup();
    await run(persons, [
      event(t, "e", "good-1", { $set: { a: 1 } }),
      event(t, "e", "bad", { $set: { title: "Hi \ud83d" } }),
      event(t, "e", "good-2", { $set: { b: 2 } }),
    ]);
    expect((await store.find(t, "good-1"))!.person.properties).toEqual({ a: 1 });
    expect((await store.find(t, "good-2"))!.person.properties).toEqual({ b: 2 });
    expect(await store.find(t, "bad")).toBeFalsy();
    expect(await counted(registry, "update", "rejected")).toBe(1);
  });

  test("$set on an anonymous id creates a person that is not identified; identify later merges it", async () => {
    const t = team();
    const { persons, store } = setup();
    await run(persons, [event(t, "e", "anon", { $set: { utm: "x" } })]);
    expect((await store.find(t, "anon"))!.person.isIdentified).toBe(false);
    await run(persons, [identify(t, "known", "anon")]);
    const f = await store.find(t, "known");
    expect(f!.distinctIds).toEqual(["anon", "known"]);
    expect(f!.person.properties).toEqual({ utm: "x" });
  });
});

describe("persons: concurrency", () => {
  test("two consumers merging the ids of the same persons at once end with one person per user, no orphans", async () => {
    const t = team();
    const a = setup(pg1);
    const b = setup(pg2);
    const N = 25;
    // Consumer A: identify(anon_i -> user_i); consumer B at the same time: alias(user_i, device_i) and a $set on
    // anon_i. Every user must end with exactly {anon_i, device_i, user_i}, whatever the interleaving.
    const runA = run(a.persons, Array.from({ length: N }, (_, i) => identify(t, `user-${i}`, `anon-${i}`)));
    const runB = run(b.persons, Array.from({ length: N }, (_, i) => [alias(t, `user-${i}`, `device-${i}`), event(t, "e", `anon-${i}`, { $set: { n: i } })]).flat());
    await Promise.all([runA, runB]);
    for (let i = 0; i < N; i++) {
      const f = await a.store.find(t, `anon-${i}`);
      expect(f!.distinctIds).toEqual([`anon-${i}`, `device-${i}`, `user-${i}`]);
      expect(f!.person.properties).toEqual({ n: i });
    }
    const n = await pg1`SELECT count(*)::int AS n FROM persons WHERE team_id = ${t}`;
    expect(n[0]!.n).toBe(N);
    // ClickHouse's highest versions agree with PostgreSQL.
    const view = await chView(t);
    const pgIds = await pg1`SELECT distinct_id, person_id::text AS person_id FROM person_distinct_ids WHERE team_id = ${t}`;
    expect(new Map(pgIds.map((r) => [r.distinct_id as string, r.person_id as string]))).toEqual(view.ids);
  });
});
