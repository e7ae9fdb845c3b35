/**
 * kill -9 one capture process and one consumer under load: the other capture (same port, SO_REUSEPORT) takes
 * every new connection, the other consumer takes every partition after the group's session timeout, and every
 * acknowledged event reaches ClickHouse (the dead consumer's uncommitted batch is redelivered, deduplicated by uuid).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { waitFor } from "../support/stack.ts";
import { captureLoad, chCount, cluster, figure, requireCluster, testProject, waitAllStored, type TestProject } from "./support.ts";

let env: Record<string, string>;
let project: TestProject;

beforeAll(async () => {
  env = await requireCluster();
  project = await testProject("cluster app kill");
});
afterAll(async () => {
  await cluster("start", "capture-2", "consumer-2").catch(() => {});
  await project?.drop();
});

test("a dead capture and a dead consumer: the others carry the load, nothing acknowledged is lost", async () => {
  const load = captureLoad(env.CLUSTER_CAPTURE!, project.token, { prefix: `ak${project.id}`, workers: 4, batch: 20 });
  await waitFor("load under way", 30_000, () => load.result.acked.size >= 2000, 100);
  const killedAt = Date.now();
  await cluster("kill", "capture-2", "consumer-2");
  await waitFor("acks after the kill", 60_000, () => load.result.timeline.filter(([at, s]) => at > killedAt + 2000 && s === 202).length >= 50, 200);
  const r = await load.stop();

  // Requests caught on the dead process's connections got no answer and were retried; after that, all answered.
  const lateFailures = r.timeline.filter(([at, s]) => at > killedAt + 2000 && s !== 202).length;
  expect(lateFailures).toBe(0);

  // consumer-1 alone must store everything, including what consumer-2 had polled and not committed.
  const storedInMs = await waitAllStored(env.CLUSTER_CH_1!, project.id, r.acked);
  const physical = await chCount(env.CLUSTER_CH_1!, `SELECT count() FROM events_distributed WHERE team_id = ${project.id}`);

  figure("app-kill", {
    acknowledged_events: r.acked.size,
    requests: r.requests,
    unanswered_then_retried: r.unanswered,
    rejected: Object.fromEntries(r.rejected),
    all_stored_after_ms: storedInMs,
    physical_rows: physical,
    redelivered_rows: physical - r.acked.size,
  });
});
