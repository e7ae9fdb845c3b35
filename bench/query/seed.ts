/**
 * `bun run seed --events 10000000 --users 200000 --days 30 [--seed 1] [--batch 100000] [--via direct|capture]`
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

/** The PostHog shape capture accepts, with the generator's uuid and timestamp kept. */
function toCaptureEvent(e: GeneratedEvent): Record<string, unknown> {
  return { event: e.event, distinct_id: e.distinctId, uuid: e.uuid, timestamp: new Date(e.timestamp * 1000).toISOString(), properties: e.properties };
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
    const rs = await ch.query({ query: `SELECT uniqExact(uuid) AS n FROM events WHERE team_id = ${Number(id)}`, format: "JSONEachRow" });
    const existing = Number(((await rs.json()) as { n: string }[])[0]?.n ?? 0);
    if (existing === shape.events) {
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
      n = await loadEvents(ch, events, { batchSize: shape.batch, onProgress: progress });
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
  await seed({
    events: num("events", values.events),
    users: num("users", values.users),
    days: num("days", values.days),
    seed: num("seed", values.seed),
    batch: num("batch", values.batch),
    via: values.via,
    captureUrl: values["capture-url"],
  });
}
