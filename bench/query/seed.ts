/**
 * `bun run seed --events 10000000 --users 200000 --days 30 [--seed 1] [--batch 100000] [--via direct|capture]`
 *
 * Loads deterministic generated events (lib/events/generator.ts) for the bench project straight into ClickHouse in
 * large JSONEachRow batches, with a progress line. Idempotent: if the project already holds exactly that many
 * unique events it reuses them. The events end at the start of the current UTC hour.
 */
import { parseArgs } from "node:util";
import { createClickHouse } from "../../lib/clickhouse/client.ts";
import { generateEvents } from "../../lib/events/generator.ts";
import { loadEvents } from "../../lib/events/generator-loader.ts";
import { createPostgres } from "../../lib/postgres/client.ts";
import { findOrCreateProject, type SeedShape } from "./bench-project.ts";

export async function seed(shape: SeedShape & { batch: number }): Promise<{ teamId: number; reused: boolean }> {
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
      return { teamId: id, reused: true };
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
    const n = await loadEvents(ch, generateEvents({ ...shape, teamId: id, end }), { batchSize: shape.batch, onProgress: progress });
    process.stderr.write("\n");
    console.error(`loaded ${n.toLocaleString("en")} events for project ${id} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return { teamId: id, reused: false };
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
    },
  });
  if (values.via === "capture") {
    console.error("--via capture is not available yet (it needs the capture app; use the default --via direct)");
    process.exit(2);
  }
  if (values.via !== "direct") {
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
  });
}
