/**
 * Moving a running single-node deployment to the cluster without losing an event, as runbooks/scaling.md
 * ("Moving a single node to the cluster") tells it, for one project: events already in the single node's Kafka
 * are drained by its consumer while capture already writes to the cluster, then the single node's ClickHouse rows
 * are copied into the Distributed table with remote(). The old side is a private topic and consumer group on the
 * single-node stack (tests never use the shared `events` topic).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startApp, type AppProcess } from "../support/apps.ts";
import { produceEvents } from "../support/events.ts";
import { ch, uniqueName, waitFor } from "../support/stack.ts";
import { captureLoad, chCount, figure, requireCluster, testProject, waitAllStored, type TestProject } from "./support.ts";

let env: Record<string, string>;
let project: TestProject;
let oldConsumer: AppProcess | undefined;

beforeAll(async () => {
  env = await requireCluster();
  project = await testProject("cluster migration");
});
afterAll(async () => {
  await oldConsumer?.stop();
  if (project) {
    await ch(`ALTER TABLE events DELETE WHERE team_id = ${project.id}`).catch(() => {});
    for (const url of [env?.CLUSTER_CH_1, env?.CLUSTER_CH_3]) {
      await fetch(`${url}/?database=analytics`, { method: "POST", body: `ALTER TABLE events DELETE WHERE team_id = ${project.id}` }).catch(() => {});
    }
    await project.drop();
  }
});

test("single node -> cluster: drain the old topic, copy the old rows, nothing lost or doubled", async () => {
  const topic = uniqueName("migrate");
  // 1. What the single node acknowledged before the switch: in its Kafka, not yet in its ClickHouse.
  const before = 3000;
  await produceEvents(topic, project.id, before);

  // 2. Capture now writes to the cluster (here: the cluster's capture), while the old consumer drains the old topic.
  const load = captureLoad(env.CLUSTER_CAPTURE!, project.token, { prefix: `mg${project.id}`, workers: 2, batch: 20 });
  oldConsumer = await startApp("consumer", { CONSUMER_TOPICS: topic, CONSUMER_KAFKA_GROUP_ID: uniqueName("migrate-old"), CONSUMER_KAFKA_AUTO_OFFSET_RESET: "earliest" });
  await waitFor("the old consumer to drain the old topic", 120_000, async () => Number((await ch(`SELECT uniqExact(uuid) FROM events WHERE team_id = ${project.id}`))[0]![0]) === before, 500);
  await oldConsumer.stop();
  oldConsumer = undefined;
  const r = await load.stop();
  await waitAllStored(env.CLUSTER_CH_1!, project.id, r.acked);

  // 3. Copy the single node's rows into the cluster: sharded by distinct_id on the way in (insert_distributed_sync).
  const t0 = Date.now();
  const res = await fetch(`${env.CLUSTER_CH_1}/?database=analytics`, {
    method: "POST",
    body: `INSERT INTO events_distributed SELECT * FROM remote('127.0.0.1:9000', analytics.events) WHERE team_id = ${project.id}`,
  });
  expect(res.status).toBe(200);
  const copyMs = Date.now() - t0;

  // 4. Verify: every old and every new event once, per shard and through the query API.
  const onCluster = await chCount(env.CLUSTER_CH_1!, `SELECT uniqExact(uuid) FROM events_distributed WHERE team_id = ${project.id}`);
  expect(onCluster).toBe(before + r.acked.size);
  const single = await ch(`SELECT count(), uniqExact(uuid) FROM events WHERE team_id = ${project.id}`);
  const api = await fetch(`${env.CLUSTER_QUERY}/api/trends`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${project.key}` },
    body: JSON.stringify({ series: [{ event: null, math: "total" }], interval: "day", date_from: "-2d" }),
  });
  expect(api.status).toBe(200);
  expect(((await api.json()) as { series: { total: number }[] }).series[0]!.total).toBe(before + r.acked.size);

  figure("migration", { old_events: before, old_rows_single_node: Number(single[0]![0]), new_events_during_switch: r.acked.size, on_cluster: onCluster, copy_ms: copyMs });
});
