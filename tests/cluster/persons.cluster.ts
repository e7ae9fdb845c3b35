/**
 * Persons through the whole cluster: anonymous ids on both shards, then `$identify` calls through capture, the
 * consumers' person processing (PostgreSQL, then the ClickHouse copy on their entry node), replication of the
 * person tables to every node, and the query API counting each identified user once although its events sit on
 * two shards.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { waitFor } from "../support/stack.ts";
import { chCount, chRows, requireCluster, testProject, type TestProject } from "./support.ts";

let env: Record<string, string>;
let project: TestProject;

beforeAll(async () => {
  env = await requireCluster();
  project = await testProject("cluster persons");
});
afterAll(async () => {
  for (const url of [env?.CLUSTER_CH_1, env?.CLUSTER_CH_3]) {
    if (url && project) await fetch(`${url}/?database=analytics`, { method: "POST", body: `ALTER TABLE events DELETE WHERE team_id = ${project.id}` }).catch(() => {});
  }
  await project?.drop();
});

async function send(batch: Record<string, unknown>[]): Promise<void> {
  const res = await fetch(`${env.CLUSTER_CAPTURE}/v1/batch`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ api_key: project.token, batch }) });
  expect(res.status).toBe(202);
}

async function uniqueUsers(): Promise<number> {
  const res = await fetch(`${env.CLUSTER_QUERY}/api/trends`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${project.key}` },
    body: JSON.stringify({ series: [{ event: "$pageview", math: "unique_users" }], interval: "day", date_from: "-1d" }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { series: { total: number }[] }).series[0]!.total;
}

test("identified users count once though their anonymous and known ids are on different shards", async () => {
  const users = 12;
  const pairs = Array.from({ length: users }, (_, i) => ({ anon: `anon-${project.id}-${i}`, known: `user-${project.id}-${i}` }));
  await send(pairs.flatMap((p) => [{ event: "$pageview", distinct_id: p.anon }, { event: "$pageview", distinct_id: p.known }]));
  const all = `SELECT uniqExact(uuid) FROM events_distributed WHERE team_id = ${project.id}`;
  await waitFor("the page views stored", 60_000, async () => (await chCount(env.CLUSTER_CH_1!, all)) === users * 2, 500);

  // The ids really are spread: some pair has its two ids on different shards.
  const shardOf = async (url: string) => new Set((await chRows(url, `SELECT DISTINCT distinct_id FROM events WHERE team_id = ${project.id}`)).map((r) => r[0]));
  const s1 = await shardOf(env.CLUSTER_CH_1!);
  const split = pairs.filter((p) => s1.has(p.anon) !== s1.has(p.known)).length;
  expect(split).toBeGreaterThan(0);

  const before = await uniqueUsers();
  expect(before).toBe(users * 2);
  await send(pairs.map((p) => ({ event: "$identify", distinct_id: p.known, properties: { $anon_distinct_id: p.anon } })));
  // The mapping reaches every node, whichever consumer wrote it (ch-1 or ch-2).
  for (const url of [env.CLUSTER_CH_1!, env.CLUSTER_CH_2!, env.CLUSTER_CH_3!, env.CLUSTER_CH_4!]) {
    await waitFor(`person_distinct_id on ${url}`, 90_000, async () => (await chCount(url, `SELECT uniqExact(distinct_id) FROM person_distinct_id WHERE team_id = ${project.id}`)) >= users * 2, 500);
  }
  // The query app caches results for a while; a new range form asks ClickHouse again.
  const res = await fetch(`${env.CLUSTER_QUERY}/api/trends`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${project.key}` },
    body: JSON.stringify({ series: [{ event: "$pageview", math: "unique_users" }], interval: "hour", date_from: "-1d" }),
  });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { series: { total: number }[] }).series[0]!.total).toBe(users);
  console.log(`FIGURE persons {"pairs":${users},"pairs_split_over_shards":${split},"unique_users_before":${before},"after":${users}}`);
});
