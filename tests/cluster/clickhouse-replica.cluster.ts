/**
 * kill -9 one ClickHouse replica (ch-3: the first replica of shard 2, the one the Distributed table tries first):
 * the consumers' inserts and the query API go on through the other replica; once it is back it catches up
 * from its peer through ZooKeeper's replication log.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { waitFor } from "../support/stack.ts";
import { captureLoad, chCount, chRows, cluster, figure, requireCluster, testProject, waitAllStored, type TestProject } from "./support.ts";

let env: Record<string, string>;
let project: TestProject;

beforeAll(async () => {
  env = await requireCluster();
  project = await testProject("cluster replica kill");
});
afterAll(async () => {
  await cluster("start", "ch-3").catch(() => {});
  await project?.drop();
});

const local = (url: string) => chCount(url, `SELECT count() FROM events WHERE team_id = ${project.id}`);

async function apiTotal(): Promise<{ status: number; total: number }> {
  const res = await fetch(`${env.CLUSTER_QUERY}/api/trends`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${project.key}` },
    body: JSON.stringify({ series: [{ event: "$pageview", math: "total" }], interval: "day", date_from: "-1d" }),
  });
  const body = (await res.json()) as { series?: { total: number }[] };
  return { status: res.status, total: body.series?.[0]?.total ?? -1 };
}

test("a dead replica: inserts and queries go on; back, it catches up", async () => {
  await cluster("kill", "ch-3");
  const load = captureLoad(env.CLUSTER_CAPTURE!, project.token, { prefix: `rk${project.id}`, workers: 2, batch: 20 });
  await waitFor("events acknowledged with ch-3 down", 60_000, () => load.result.acked.size >= 2000, 100);
  const r = await load.stop();

  // Inserts went on: the consumers stored everything (shard 2's rows on ch-4 alone) and queries answer.
  const storedInMs = await waitAllStored(env.CLUSTER_CH_1!, project.id, r.acked);
  const api = await apiTotal();
  expect(api.status).toBe(200);
  expect(api.total).toBe(r.acked.size);
  const onCh4 = await local(env.CLUSTER_CH_4!);
  expect(onCh4).toBeGreaterThan(0);
  // The shard key spread the users over both shards.
  expect(await local(env.CLUSTER_CH_1!)).toBeGreaterThan(0);

  const t0 = Date.now();
  await cluster("start", "ch-3");
  await waitFor("ch-3 to hold what ch-4 holds", 180_000, async () => (await local(env.CLUSTER_CH_3!)) === onCh4, 1000);
  const caughtUpInMs = Date.now() - t0;
  const [queue] = await chRows(env.CLUSTER_CH_3!, "SELECT queue_size, absolute_delay, is_readonly FROM system.replicas WHERE table = 'events'");
  expect(queue![2]).toBe("0");

  figure("clickhouse-replica-kill", {
    acknowledged_events: r.acked.size,
    unanswered: r.unanswered,
    rejected: Object.fromEntries(r.rejected),
    all_stored_after_ms: storedInMs,
    rows_on_shard2: onCh4,
    replica_caught_up_after_ms: caughtUpInMs,
  });
});
