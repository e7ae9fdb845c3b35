/**
 * Persons end to end with real processes: posthog-node's `identify` (with `$anon_distinct_id`) and `alias`, and the
 * README's curl example, through the capture process -> Kafka (a topic of this test's own) -> the consumer process
 * (person state in PostgreSQL, copied to ClickHouse) -> the query API.
 */
import { afterAll, expect, test } from "bun:test";
import { PostHog } from "posthog-node";
import { createProject } from "../../lib/projects/create-project.ts";
import { createPostgres } from "../../lib/postgres/client.ts";
import { type AppProcess, startApp } from "../support/apps.ts";
import { KAFKA, ROOT, uniqueName, waitFor } from "../support/stack.ts";
import { createHarness, post, type Harness } from "../query/fixtures.ts";

const apps: AppProcess[] = [];
let h: Harness | undefined;
afterAll(async () => {
  for (const a of apps) if (a.proc.exitCode === null) await a.stop();
  await h?.close();
});

test("anonymous page view, identify, signup, purchase, alias: one person in trends, funnels and /api/persons; README batch converts 1/1/1", async () => {
  h = await createHarness();
  const sql = createPostgres(process.env.POSTGRES_URL ?? "postgres://ingest:ingest@127.0.0.1:5432/ingest", { max: 1 });
  const { project, secretKey } = await createProject(sql, uniqueName("persons-e2e"));
  await sql.end();
  // The harness deletes its projects' events, persons and project rows when done.
  h.projects.push({ id: project.id, key: secretKey });

  const topic = uniqueName("persons_e2e").replaceAll("-", "_");
  const created = Bun.spawnSync([`${ROOT}/infrastructure/kafka/bin/kafka-topics`, "--bootstrap-server", KAFKA, "--create", "--topic", topic, "--partitions", "4", "--replication-factor", "1"]);
  expect(created.exitCode).toBe(0);
  const capture = await startApp("capture", { CAPTURE_EVENTS_TOPIC: topic, CAPTURE_KAFKA_BOOTSTRAP_SERVERS: KAFKA });
  apps.push(capture);
  apps.push(await startApp("consumer", { CONSUMER_EVENTS_TOPIC: topic, CONSUMER_KAFKA_GROUP_ID: uniqueName("persons-e2e"), CONSUMER_DLQ_TOPIC: `${topic}_dlq`, CONSUMER_BATCH_LINGER_MS: "200" }));

  // One SDK instance, as a server would use it: the visitor's anonymous id first, then identify, then the
  // identified id's events; later the server links another id of the same user with alias.
  const client = new PostHog(project.token, { host: capture.url, flushAt: 1, flushInterval: 0 });
  client.capture({ distinctId: "anon-7f3", event: "$pageview", properties: { $current_url: "/pricing" } });
  await client.flush();
  client.identify({ distinctId: "user@x", properties: { $anon_distinct_id: "anon-7f3", email: "user@x" } });
  await client.flush();
  client.capture({ distinctId: "user@x", event: "signup" });
  client.capture({ distinctId: "user@x", event: "purchase", properties: { amount: 42 } });
  client.alias({ distinctId: "user@x", alias: "crm-77" });
  await client.shutdown();

  // The README's curl example: a page view, then signup + purchase in one batch (stored at the same instant).
  const send = async (path: string, body: object) => {
    const res = await fetch(`${capture.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ api_key: project.token, ...body }) });
    expect(res.status).toBeLessThan(300);
  };
  await send("/capture", { event: "$pageview", distinct_id: "user-1", properties: { $current_url: "/pricing" } });
  await send("/batch", { batch: [{ event: "signup", distinct_id: "user-1" }, { event: "purchase", distinct_id: "user-1", properties: { amount: 42 } }] });

  const app = h.app({ cache: null });
  const get = async (id: string) => {
    const res = await app.request(`/api/persons/${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${secretKey}` } });
    return res.status === 200 ? ((await res.json()) as { id: string; distinct_ids: string[]; properties: Record<string, unknown>; is_identified: boolean }) : null;
  };
  const person = await waitFor("the person with all three ids", 90_000, async () => {
    const p = await get("user@x");
    return p && p.distinct_ids.length === 3 ? p : null;
  }, 300);
  expect(person.distinct_ids).toEqual(["anon-7f3", "crm-77", "user@x"]);
  expect(person.properties).toEqual({ email: "user@x" });
  expect(person.is_identified).toBe(true);
  expect((await get("anon-7f3"))!.id).toBe(person.id);

  const range = { date_from: "-1d" };
  await waitFor("all 8 events stored", 60_000, async () => {
    const r = await post(app, "/api/trends", secretKey, { series: [{ event: null, math: "total" }], ...range });
    return r.body.series?.[0]?.total === 8;
  }, 300);
  const trend = await post(app, "/api/trends", secretKey, {
    series: [
      { event: "$pageview", math: "unique_users" },
      { event: null, math: "unique_users" },
      { event: null, math: "unique_users", filters: [{ type: "person", key: "email", operator: "is_set" }] },
    ],
    ...range,
  });
  expect(trend.status).toBe(200);
  // user@x (three ids) and user-1: two people, one of them with an email.
  expect(trend.body.series.map((s: { total: number }) => s.total)).toEqual([2, 2, 1]);

  const funnel = await post(app, "/api/funnels", secretKey, { steps: [{ event: "$pageview" }, { event: "signup" }, { event: "purchase" }], ...range });
  expect(funnel.status).toBe(200);
  // Both convert fully: user@x across its anonymous page view, user-1 with signup + purchase at one instant.
  expect(funnel.body.results[0].steps.map((s: { count: number }) => s.count)).toEqual([2, 2, 2]);
  const readme = await post(app, "/api/funnels", secretKey, { steps: [{ event: "$pageview" }, { event: "signup" }, { event: "purchase" }], filters: [{ type: "person", key: "email", operator: "is_not_set" }], ...range });
  expect(readme.body.results[0].steps.map((s: { count: number }) => s.count)).toEqual([1, 1, 1]);
}, 240_000);
