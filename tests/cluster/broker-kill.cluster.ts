/**
 * kill -9 one of the three Kafka nodes while capture is under load: capture keeps answering, no event it
 * acknowledged (202) is lost on the way to ClickHouse, and the node rejoins and catches up (back in every ISR).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { waitFor } from "../support/stack.ts";
import { captureLoad, cluster, figure, missing, percentile, requireCluster, testProject, underReplicated, waitAllStored, type TestProject } from "./support.ts";

let env: Record<string, string>;
let project: TestProject;

beforeAll(async () => {
  env = await requireCluster();
  project = await testProject("cluster broker kill");
});
afterAll(async () => {
  // Leave the cluster whole whatever happened above.
  await cluster("start", "kafka-2").catch(() => {});
  await project?.drop();
});

test("kill -9 a broker under capture load: 0 acknowledged events lost, the node catches up", async () => {
  const load = captureLoad(env.CLUSTER_CAPTURE!, project.token, { prefix: `bk${project.id}`, workers: 4, batch: 20 });
  await waitFor("load under way", 30_000, () => load.result.acked.size >= 2000, 100);
  const killedAt = Date.now();
  await cluster("kill", "kafka-2");
  // Keep the load on while the cluster moves the dead node's leaders, and a while after.
  await waitFor("acks after the kill", 60_000, () => load.result.timeline.filter(([at, s]) => at > killedAt + 5000 && s === 202).length >= 50, 200);
  const r = await load.stop();

  const afterKill = r.timeline.filter(([at]) => at >= killedAt);
  const slowest = percentile(r.latenciesMs, 100);
  // Capture answered every request (a 503 is an answer: "not stored, retry"); none hung or was refused.
  expect(r.unanswered).toBe(0);
  expect(afterKill.some(([, s]) => s === 202)).toBe(true);

  const storedInMs = await waitAllStored(env.CLUSTER_CH_1!, project.id, r.acked);

  const t0 = Date.now();
  await cluster("start", "kafka-2");
  const restartedInMs = Date.now() - t0;
  await waitFor("kafka-2 back in every ISR of events", 180_000, async () => (await underReplicated(env.CLUSTER_KAFKA!, "events")).length === 0, 2000);
  const caughtUpInMs = Date.now() - t0;

  figure("broker-kill", {
    requests: r.requests,
    acknowledged_events: r.acked.size,
    lost: (await missing(env.CLUSTER_CH_1!, project.id, r.acked)).length,
    rejected: Object.fromEntries(r.rejected),
    unanswered: r.unanswered,
    requests_after_kill: afterKill.length,
    p50_ms: Math.round(percentile(r.latenciesMs, 50)),
    p99_ms: Math.round(percentile(r.latenciesMs, 99)),
    max_ms: Math.round(slowest),
    all_stored_after_ms: storedInMs,
    node_restart_ms: restartedInMs,
    node_in_isr_after_ms: caughtUpInMs,
  });
});
