/**
 * The whole write path with real processes: 200,000 events through the capture API (batches, as SDKs send them)
 * -> Kafka -> the consumer -> ClickHouse; every uuid acknowledged with a 200 is present exactly once.
 */
import { afterAll, expect, test } from "bun:test";
import { createProject } from "../../lib/projects/create-project.ts";
import { createPostgres } from "../../lib/postgres/client.ts";
import { type AppProcess, startApp } from "../support/apps.ts";
import { ch, KAFKA, ROOT, uniqueName, waitFor } from "../support/stack.ts";

const apps: AppProcess[] = [];
afterAll(async () => {
  for (const a of apps) if (a.proc.exitCode === null) await a.stop();
});

test("200,000 events through capture are all in ClickHouse exactly once per uuid", async () => {
  const sql = createPostgres(process.env.POSTGRES_URL ?? "postgres://ingest:ingest@127.0.0.1:5432/ingest", { max: 1 });
  const { project } = await createProject(sql, uniqueName("e2e"));
  await sql.end();
  // Topic names here are identifiers (capture validates them): no dashes.
  const topic = uniqueName("e2e_events").replaceAll("-", "_");
  // Capture's /ready wants the topic to exist: create it the way an operator would.
  const created = Bun.spawnSync([`${ROOT}/infrastructure/kafka/bin/kafka-topics`, "--bootstrap-server", KAFKA, "--create", "--topic", topic, "--partitions", "12", "--replication-factor", "1"]);
  expect(created.exitCode).toBe(0);
  const capture = await startApp("capture", { CAPTURE_EVENTS_TOPIC: topic, CAPTURE_KAFKA_BOOTSTRAP_SERVERS: KAFKA });
  apps.push(capture);

  const TOTAL = 200_000;
  const PER_REQUEST = 1000;
  const names = ["$pageview", "signup", "purchase", "$autocapture"];
  const sent = new Map<string, number>();
  const uuids = new Set<string>();
  let next = 0;
  async function sender(): Promise<void> {
    while (next < TOTAL) {
      const start = next;
      next += PER_REQUEST;
      const batch = [];
      for (let i = start; i < Math.min(TOTAL, start + PER_REQUEST); i++) {
        batch.push({ event: names[i % names.length], distinct_id: `user-${i % 5000}`, uuid: crypto.randomUUID(), properties: { i } });
      }
      const res = await fetch(`${capture.url}/batch`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ api_key: project.token, batch }),
      });
      expect(res.status).toBe(200);
      for (const e of batch) {
        uuids.add(e.uuid);
        sent.set(e.event!, (sent.get(e.event!) ?? 0) + 1);
      }
    }
  }
  await Promise.all(Array.from({ length: 6 }, sender));
  expect(uuids.size).toBe(TOTAL);

  apps.push(await startApp("consumer", { CONSUMER_EVENTS_TOPIC: topic, CONSUMER_KAFKA_GROUP_ID: uniqueName("e2e"), CONSUMER_DLQ_TOPIC: `${topic}_dlq` }));
  await waitFor("all rows visible", 180_000, async () => Number((await ch(`SELECT count() FROM events WHERE team_id = ${project.id}`))[0]![0]) >= TOTAL, 500);

  const rows = await ch(`SELECT toString(uuid), count() FROM events WHERE team_id = ${project.id} GROUP BY uuid`);
  expect(rows.length).toBe(TOTAL);
  expect(rows.filter(([, n]) => n !== "1")).toEqual([]);
  expect(rows.filter(([u]) => !uuids.has(u!))).toEqual([]);
  const perEvent = new Map((await ch(`SELECT event, count() FROM events WHERE team_id = ${project.id} GROUP BY event`)).map(([e, n]) => [e!, Number(n)]));
  expect(perEvent).toEqual(sent);
}, 300_000);
