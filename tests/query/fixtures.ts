/**
 * Shared set-up for the query tests: real ClickHouse (127.0.0.1:8123), PostgreSQL and Redis; projects with random
 * ids far above the serial range (so fixture rows never mix with anyone else's data in analytics.events); the
 * generated events loaded with their duplicates in a separate insert; the app built in-process.
 */
import { Registry } from "prom-client";
import { createClickHouse, type ClickHouse } from "../../lib/clickhouse/client.ts";
import { clickHouseRunner, type QueryRunner } from "../../lib/clickhouse/run.ts";
import { generateEvents, type GeneratedEvent } from "../../lib/events/generator.ts";
import { loadEvents } from "../../lib/events/generator-loader.ts";
import { createLogger } from "../../lib/log/logger.ts";
import { createPostgres, type Sql } from "../../lib/postgres/client.ts";
import { createRedis, type Redis } from "../../lib/redis/client.ts";
import { createQueryApp, type QueryAppDeps } from "../../apps/query/app.ts";
import { KeyResolver, postgresKeyLookup, sha256Hex } from "../../apps/query/auth.ts";
import { redisQueryCache } from "../../apps/query/cache.ts";
import { ClickHousePersonRows } from "../../apps/consumer/persons/person-rows.ts";
import { PersonStore } from "../../apps/consumer/persons/person-store.ts";
import { personUpdateOf, type PersonUpdate } from "../../apps/consumer/persons/person-update.ts";
import { Persons } from "../../apps/consumer/persons/persons.ts";
import { CAPTURED_EVENT_VERSION, type CapturedEvent } from "../../lib/events/captured-event.ts";

export const CLICKHOUSE_URL = process.env.CLICKHOUSE_URL ?? "http://127.0.0.1:8123";
export const POSTGRES_URL = process.env.POSTGRES_URL ?? "postgres://ingest:ingest@127.0.0.1:5432/ingest";
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** The fixture period spans both DST ends of autumn 2024: Europe (Oct 27) and the US (Nov 3). */
export const FIXTURE_END = new Date("2024-11-15T00:00:00Z");
export const FIXTURE_DAYS = 40;

export interface Project {
  id: number;
  key: string;
}

export interface Harness {
  ch: ClickHouse;
  pg: Sql;
  redis: Redis;
  projects: Project[];
  createProject(): Promise<Project>;
  load(events: GeneratedEvent[]): Promise<void>;
  /** Inserts rows into a table of the analytics database (what the query app's rollup stores with). */
  write(table: string, rows: Record<string, unknown>[]): Promise<void>;
  /** Runs the events' person updates (identify, alias, $set, ...) through the consumer's person processing. */
  applyPersons(events: GeneratedEvent[]): Promise<void>;
  app(overrides?: Partial<QueryAppDeps>): ReturnType<typeof createQueryApp>;
  close(): Promise<void>;
}

export async function createHarness(): Promise<Harness> {
  const ch = createClickHouse({ url: CLICKHOUSE_URL, database: "analytics" });
  const pg = createPostgres(POSTGRES_URL, { max: 2 });
  const redis = createRedis(REDIS_URL);
  const projects: Project[] = [];
  const log = createLogger("query-test", process.env.TEST_LOG_LEVEL ?? "silent");
  const keys = new KeyResolver({ lookup: postgresKeyLookup(pg) });

  return {
    ch,
    pg,
    redis,
    projects,
    async createProject() {
      // Random ids in [1e9, 2^31): unique per run, never produced by the SERIAL column.
      const id = 1_000_000_000 + Math.floor(Math.random() * 1_147_483_000);
      const key = `phx_test_${crypto.randomUUID().replaceAll("-", "")}`;
      await pg`INSERT INTO projects (id, name, token, secret_key_hash) VALUES (${id}, ${"query test " + id}, ${"tok_" + crypto.randomUUID()}, ${sha256Hex(key)})`;
      const p = { id, key };
      projects.push(p);
      return p;
    },
    async load(events) {
      // Duplicates go in a second insert, i.e. a separate part: until a merge they are physically there.
      await loadEvents(ch, events.filter((e) => !e.duplicate));
      const dups = events.filter((e) => e.duplicate);
      if (dups.length) await loadEvents(ch, dups);
    },
    async write(table, rows) {
      await ch.insert({ table, values: rows, format: "JSONEachRow" });
    },
    async applyPersons(events) {
      const persons = new Persons(new PersonStore(pg, { maxPropertiesBytes: 65_536 }), new ClickHousePersonRows(ch), new Registry(), log);
      const updates = events.filter((e) => !e.duplicate).map((e) => personUpdateOf(capturedEventOf(e)));
      await persons.apply(updates.filter((u): u is PersonUpdate => u !== null));
    },
    app(overrides = {}) {
      return createQueryApp({
        run: clickHouseRunner(ch),
        keys,
        cache: redisQueryCache(redis),
        cacheTtlSeconds: 30,
        cachePastTtlSeconds: 60,
        maxExecutionTimeS: 30,
        log,
        registry: new Registry(),
        readiness: {},
        ...overrides,
      });
    },
    async close() {
      const ids = projects.map((p) => p.id);
      if (ids.length) {
        await pg`DELETE FROM person_distinct_ids WHERE team_id IN ${pg(ids)}`;
        await pg`DELETE FROM persons WHERE team_id IN ${pg(ids)}`;
        await pg`DELETE FROM projects WHERE id IN ${pg(ids)}`;
        for (const t of ["persons", "person_distinct_id"]) {
          await ch.command({ query: `ALTER TABLE ${t} DELETE WHERE team_id IN (${ids.map(Number).join(", ")})` }).catch(() => {});
        }
        // Asynchronous mutation on 18.16; it only rewrites the parts holding these teams' rows.
        for (const table of ["events", "events_slot_inserts", "events_slot_counts"]) {
          await ch.command({ query: `ALTER TABLE ${table} DELETE WHERE team_id IN (${ids.map(Number).join(", ")})` }).catch(() => {});
        }
      }
      await Promise.allSettled([ch.close(), pg.end({ timeout: 2 }), redis.quit()]);
    },
  };
}

/** A generated event as capture would have put it on Kafka. */
export function capturedEventOf(e: GeneratedEvent): CapturedEvent {
  const at = new Date(e.timestamp * 1000 + e.msec).toISOString();
  return {
    v: CAPTURED_EVENT_VERSION,
    uuid: e.uuid,
    team_id: e.teamId,
    event: e.event,
    distinct_id: e.distinctId,
    timestamp: at,
    properties: e.properties,
    ip: "",
    received_at: at,
    ...(e.set ? { $set: e.set } : {}),
  };
}

export function fixtureEvents(teamId: number, seed = 42, users = 300, events = 12_000): GeneratedEvent[] {
  return [...generateEvents({ seed, teamId, users, events, days: FIXTURE_DAYS, end: FIXTURE_END, duplicateRate: 0.05 })];
}

type App = ReturnType<typeof createQueryApp>;

export async function post(app: App, path: string, key: string | null, body: unknown, headers: Record<string, string> = {}) {
  const res = await app.request(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}

/** A runner that counts the queries it forwards (to prove cache hits do not reach ClickHouse). */
export function countingRunner(inner: QueryRunner): QueryRunner & { calls: number } {
  const r = (async (q, o) => {
    r.calls++;
    return inner(q, o);
  }) as QueryRunner & { calls: number };
  r.calls = 0;
  return r;
}

/** Strings that would change a query's meaning if they reached SQL unescaped. */
export const HOSTILE = [
  "plain",
  "it's",
  "''",
  "\\",
  "\\'",
  "a\\'; DROP TABLE events; --",
  "x' OR 1=1 --",
  "x' UNION ALL SELECT name FROM system.tables --",
  "/* comment */ 1",
  "-- trailing",
  "nul\u0000byte",
  "new\nline\rcarriage\ttab",
  "\u007f\u0001\u001f",
  "unicode ü 日本 🎉",
  "backslash at end\\",
  "' || '",
  "${x}",
  "%s %d ?",
];
