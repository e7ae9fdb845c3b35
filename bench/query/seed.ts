/**
 * `bun run seed --events 10000000 --users 200000 --days 30 [--seed 1] [--anonymous-share 0.33] [--batch 100000] [--via direct|capture]`
 *
 * `--anonymous-share` (default 0.33): that fraction of users start anonymous and are identified mid-journey by an
 * `$identify` event (extra rows beyond `--events`). Directly loaded, their persons go straight into ClickHouse's
 * person tables (what queries read; PostgreSQL's person state is the consumer's and is not needed to query);
 * through capture, the consumer processes the identifies as it would any SDK's.
 *
 * Loads deterministic generated events (lib/events/generator.ts) for the bench project straight into ClickHouse in
 * large JSONEachRow batches, with a progress line. Idempotent: if the project already holds exactly that many
 * unique events it reuses them. The events end at the start of the current UTC hour.
 *
 * `--via capture` sends the same events through the capture API instead (POST /v1/batch, our native 202 path, with the project's token,
 * several requests in flight): slower, but every event takes the production path capture -> Kafka -> consumer.
 * Either way the project's id, token and a fresh secret key are written to .local/seed-project.json, which
 * `make stress-query` reads.
 */
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { createClickHouse } from "../../lib/clickhouse/client.ts";
import { generateEvents } from "../../lib/events/generator.ts";
import { loadEvents } from "../../lib/events/generator-loader.ts";
import { createPostgres } from "../../lib/postgres/client.ts";
import { findOrCreateProject, rotateKey, type SeedShape } from "./bench-project.ts";
import type { GeneratedEvent } from "../../lib/events/generator.ts";
import { personRow } from "../../apps/consumer/persons/person-rows.ts";

/** About a third of users start anonymous (issue 14: the bench measures counting persons on realistic data). */
export const DEFAULT_ANONYMOUS_SHARE = 0.33;

export const SEED_PROJECT_FILE = join(process.env.INGEST_STATE_DIR ?? join(import.meta.dir, "../../.local"), "seed-project.json");

/** Records the seeded project for the stress scripts, with a newly issued secret key (only its hash is stored). */
async function recordProject(pg: ReturnType<typeof createPostgres>, id: number, shape: SeedShape): Promise<string> {
  const [row] = await pg<{ token: string }[]>`SELECT token FROM projects WHERE id = ${id}`;
  const key = await rotateKey(pg, id);
  await mkdir(dirname(SEED_PROJECT_FILE), { recursive: true });
  await Bun.write(SEED_PROJECT_FILE, `${JSON.stringify({ id, token: row!.token, secret_key: key, shape }, null, 2)}\n`);
  console.error(`project ${id} recorded in ${SEED_PROJECT_FILE}`);
  return key;
}

/** The PostHog shape capture accepts, with the generator's uuid and timestamp (to the ms) kept. */
function toCaptureEvent(e: GeneratedEvent): Record<string, unknown> {
  return {
    event: e.event,
    distinct_id: e.distinctId,
    uuid: e.uuid,
    timestamp: new Date(e.timestamp * 1000 + e.msec).toISOString(),
    properties: e.properties,
    ...(e.set ? { $set: e.set } : {}),
  };
}

/**
 * Person rows of the seed's identified users, as the consumer would have written them: one person per `$identify`
 * (its uuid as the person's id), holding the anonymous and the identified id, with the `$set` properties.
 */
class SeedPersons {
  readonly persons: ReturnType<typeof personRow>[] = [];
  readonly ids: { team_id: number; distinct_id: string; person_id: string; version: number }[] = [];

  *track(events: Iterable<GeneratedEvent>): Generator<GeneratedEvent> {
    for (const e of events) {
      if (e.event === "$identify" && !e.duplicate && typeof e.properties.$anon_distinct_id === "string") {
        this.persons.push(
          personRow({ id: e.uuid, teamId: e.teamId, properties: e.set ?? {}, isIdentified: true, isDeleted: false, createdAt: new Date(e.timestamp * 1000), version: 0 }),
        );
        for (const id of [e.properties.$anon_distinct_id, e.distinctId]) this.ids.push({ team_id: e.teamId, distinct_id: id, person_id: e.uuid, version: 0 });
      }
      yield e;
    }
  }

  async load(ch: ReturnType<typeof createClickHouse>): Promise<void> {
    for (let i = 0; i < this.persons.length; i += 100_000) await ch.insert({ table: "persons", values: this.persons.slice(i, i + 100_000), format: "JSONEachRow" });
    for (let i = 0; i < this.ids.length; i += 100_000) await ch.insert({ table: "person_distinct_id", values: this.ids.slice(i, i + 100_000), format: "JSONEachRow" });
  }
}

async function sendViaCapture(captureUrl: string, token: string, events: Iterable<GeneratedEvent>, onProgress: (n: number) => void): Promise<number> {
  const PER_REQUEST = 1000;
  const IN_FLIGHT = 8;
  const it = events[Symbol.iterator]();
  let sent = 0;
  let done = false;
  async function worker(): Promise<void> {
    while (!done) {
      const batch: Record<string, unknown>[] = [];
      for (let r = it.next(); batch.length < PER_REQUEST; r = it.next()) {
        if (r.done) {
          done = true;
          break;
        }
        if (!r.value.duplicate) batch.push(toCaptureEvent(r.value));
        if (batch.length === PER_REQUEST) break;
      }
      if (batch.length === 0) return;
      const body = JSON.stringify({ api_key: token, batch });
      for (let attempt = 1; ; attempt++) {
        const res = await fetch(`${captureUrl}/v1/batch`, { method: "POST", headers: { "content-type": "application/json" }, body });
        if (res.status === 202) break;
        // 503 is back-pressure (Kafka slow): wait as told and send the same batch again (uuids make it idempotent).
        if (res.status !== 503 || attempt >= 10) throw new Error(`capture answered ${res.status}: ${await res.text()}`);
        await Bun.sleep(Number(res.headers.get("retry-after") ?? 1) * 1000);
      }
      sent += batch.length;
      onProgress(sent);
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return sent;
}

export async function seed(shape: SeedShape & { batch: number; via?: "direct" | "capture"; captureUrl?: string }): Promise<{ teamId: number; reused: boolean; secretKey: string }> {
  const ch = createClickHouse({
    url: process.env.CLICKHOUSE_URL ?? "http://127.0.0.1:8123",
    database: process.env.CLICKHOUSE_DATABASE ?? "analytics",
    requestTimeoutMs: 300_000,
  });
  const pg = createPostgres(process.env.POSTGRES_URL ?? "postgres://ingest:ingest@127.0.0.1:5432/ingest", { max: 1 });
  try {
    const { id } = await findOrCreateProject(pg, shape);
    // `--events` counts the generated journeys' events; the $identify events come on top.
    const rs = await ch.query({
      query: `SELECT uniqExactIf(uuid, event != '$identify') AS n, (SELECT count() FROM person_distinct_id WHERE team_id = ${Number(id)}) AS p FROM events WHERE team_id = ${Number(id)}`,
      format: "JSONEachRow",
    });
    const first = ((await rs.json()) as { n: string; p: string }[])[0];
    const existing = Number(first?.n ?? 0);
    const personsThere = Number(first?.p ?? 0) > 0 || !shape.anonymousShare || shape.via === "capture";
    if (existing === shape.events && personsThere) {
      console.error(`project ${id} already holds ${existing} events: reusing them`);
      return { teamId: id, reused: true, secretKey: await recordProject(pg, id, shape) };
    }
    if (existing > 0) {
      throw new Error(
        `project ${id} holds ${existing} events, not ${shape.events} (an interrupted seed?); delete them with ` +
          `ALTER TABLE events DELETE WHERE team_id = ${id}, then seed again`,
      );
    }
    const end = new Date(Math.floor(Date.now() / 3600_000) * 3600_000);
    const started = performance.now();
    const progress = (n: number) => {
      const s = (performance.now() - started) / 1000;
      const rate = n / s;
      const pct = (100 * n) / shape.events;
      const bar = "#".repeat(Math.floor(pct / 4)).padEnd(25, ".");
      process.stderr.write(`\r[${bar}] ${pct.toFixed(1)}% ${n.toLocaleString("en")} rows, ${Math.round(rate).toLocaleString("en")} rows/s, ETA ${Math.round((shape.events - n) / rate)} s   `);
    };
    const events = generateEvents({ ...shape, teamId: id, end });
    let n: number;
    if (shape.via === "capture") {
      const [row] = await pg<{ token: string }[]>`SELECT token FROM projects WHERE id = ${id}`;
      n = await sendViaCapture(shape.captureUrl ?? "http://127.0.0.1:8000", row!.token, events, progress);
    } else {
      const persons = new SeedPersons();
      n = await loadEvents(ch, persons.track(events), { batchSize: shape.batch, onProgress: progress });
      await persons.load(ch);
      console.error(`\n${persons.persons.length.toLocaleString("en")} identified persons, ${persons.ids.length.toLocaleString("en")} distinct_ids mapped`);
    }
    process.stderr.write("\n");
    console.error(`${shape.via === "capture" ? "sent" : "loaded"} ${n.toLocaleString("en")} events for project ${id} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return { teamId: id, reused: false, secretKey: await recordProject(pg, id, shape) };
  } finally {
    await Promise.allSettled([ch.close(), pg.end({ timeout: 2 })]);
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      events: { type: "string", default: "10000000" },
      users: { type: "string", default: "200000" },
      days: { type: "string", default: "30" },
      seed: { type: "string", default: "1" },
      "anonymous-share": { type: "string", default: String(DEFAULT_ANONYMOUS_SHARE) },
      batch: { type: "string", default: "100000" },
      via: { type: "string", default: "direct" },
      "capture-url": { type: "string", default: process.env.CAPTURE_URL ?? "http://127.0.0.1:8000" },
    },
  });
  if (values.via !== "direct" && values.via !== "capture") {
    console.error(`--via must be direct or capture, got ${values.via}`);
    process.exit(2);
  }
  const num = (name: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n <= 0) {
      console.error(`--${name} must be a positive integer, got ${v}`);
      process.exit(2);
    }
    return n;
  };
  const share = (v: string | undefined) => {
    const n = Number(v);
    if (!(n >= 0 && n < 1)) {
      console.error(`--anonymous-share must be in [0, 1), got ${v}`);
      process.exit(2);
    }
    return n;
  };
  await seed({
    events: num("events", values.events),
    users: num("users", values.users),
    days: num("days", values.days),
    seed: num("seed", values.seed),
    anonymousShare: share(values["anonymous-share"]),
    batch: num("batch", values.batch),
    via: values.via,
    captureUrl: values["capture-url"],
  });
}
