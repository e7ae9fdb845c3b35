/**
 * `bun bench/persons/throughput.ts [--updates 3000] [--batch 500]`: how fast the consumer's person processing
 * (apps/consumer/persons) applies person updates against the real PostgreSQL and ClickHouse, one transaction per
 * update in Kafka order, as the ingest loop runs it. The mix: a third `$identify` merges (anonymous id -> user),
 * two thirds `$set` on ids that already have a person. Writes bench/results/persons-<time>.json.
 */
import { parseArgs } from "node:util";
import { Registry } from "prom-client";
import { ClickHousePersonRows } from "../../apps/consumer/persons/person-rows.ts";
import { PersonStore } from "../../apps/consumer/persons/person-store.ts";
import { personUpdateOf, type PersonUpdate } from "../../apps/consumer/persons/person-update.ts";
import { Persons } from "../../apps/consumer/persons/persons.ts";
import { createClickHouse } from "../../lib/clickhouse/client.ts";
import { CAPTURED_EVENT_VERSION, type CapturedEvent } from "../../lib/events/captured-event.ts";
import { createLogger } from "../../lib/log/logger.ts";
import { createPostgres } from "../../lib/postgres/client.ts";
import { writeResult } from "../lib/results.ts";

const { values } = parseArgs({ options: { updates: { type: "string", default: "3000" }, batch: { type: "string", default: "500" } } });
const N = Number(values.updates);
const BATCH = Number(values.batch);
const team = 1_000_000 + Math.floor(Math.random() * 3_000_000_000);
const pg = createPostgres(process.env.POSTGRES_URL ?? "postgres://ingest:ingest@127.0.0.1:5432/ingest", { max: 2 });
const ch = createClickHouse({ url: process.env.CLICKHOUSE_URL ?? "http://127.0.0.1:8123", database: process.env.CLICKHOUSE_DATABASE ?? "analytics" });
const persons = new Persons(new PersonStore(pg, { maxPropertiesBytes: 65_536 }), new ClickHousePersonRows(ch), new Registry(), createLogger("bench-persons", "warn"));

const event = (name: string, distinctId: string, extra: Partial<CapturedEvent>): CapturedEvent => ({
  v: CAPTURED_EVENT_VERSION,
  uuid: crypto.randomUUID(),
  team_id: team,
  event: name,
  distinct_id: distinctId,
  timestamp: new Date().toISOString(),
  properties: {},
  ip: "",
  received_at: new Date().toISOString(),
  ...extra,
});
const updates: PersonUpdate[] = [];
for (let i = 0; i < N; i++) {
  const user = Math.floor(i / 3);
  const e =
    i % 3 === 0
      ? event("$identify", `user-${user}`, { properties: { $anon_distinct_id: `anon-${user}` }, $set: { email: `u${user}@example.com` } })
      : event("$pageview", `user-${user}`, { $set: { last_seen: i, plan: i % 2 ? "pro" : "free" } });
  updates.push(personUpdateOf(e)!);
}

const batches: number[] = [];
const started = performance.now();
for (let i = 0; i < N; i += BATCH) {
  const t = performance.now();
  await persons.apply(updates.slice(i, i + BATCH));
  batches.push(performance.now() - t);
}
const seconds = (performance.now() - started) / 1000;
const perSecond = N / seconds;
console.log(`${N} person updates in ${seconds.toFixed(1)} s: ${Math.round(perSecond)} updates/s (batches of ${BATCH}: ${batches.map((b) => Math.round(b)).join(", ")} ms)`);

const file = await writeResult("persons", {
  updates: N,
  batch: BATCH,
  mix: "1/3 $identify merges (new anonymous id -> user), 2/3 $set on an existing person",
  seconds,
  updates_per_s: perSecond,
  batch_ms: batches,
  loadavg_at_end: (await Bun.file("/proc/loadavg").text()).trim(),
});
console.error(`wrote ${file}`);
await pg`DELETE FROM person_distinct_ids WHERE team_id = ${team}`;
await pg`DELETE FROM persons WHERE team_id = ${team}`;
for (const t of ["persons", "person_distinct_id"]) await ch.command({ query: `ALTER TABLE ${t} DELETE WHERE team_id = ${team}` });
await Promise.allSettled([pg.end({ timeout: 2 }), ch.close()]);
