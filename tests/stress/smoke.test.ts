/**
 * 20-second smoke runs of `make stress-capture` and `make stress-query` against apps started on free ports, so
 * the scripts keep working in CI. The figures that matter come from `make bench` on a quiet machine; results of
 * these runs go to a temporary folder, not bench/results/.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClickHouse } from "../../lib/clickhouse/client.ts";
import { generateEvents } from "../../lib/events/generator.ts";
import { loadEvents } from "../../lib/events/generator-loader.ts";
import { createPostgres } from "../../lib/postgres/client.ts";
import { createProject } from "../../lib/projects/create-project.ts";
import { type AppProcess, startApp } from "../support/apps.ts";
import { CH_DB, CLICKHOUSE, KAFKA, ROOT, uniqueName } from "../support/stack.ts";

const apps: AppProcess[] = [];
afterAll(async () => {
  for (const a of apps) if (a.proc.exitCode === null) await a.stop();
});

async function runScript(script: string, env: Record<string, string>): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn(["bun", join(ROOT, script)], { cwd: ROOT, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out: `${out}\n${err}` };
}

async function project(name: string) {
  const sql = createPostgres(process.env.POSTGRES_URL ?? "postgres://ingest:ingest@127.0.0.1:5432/ingest", { max: 1 });
  try {
    return await createProject(sql, uniqueName(name));
  } finally {
    await sql.end();
  }
}

describe("stress scripts (smoke)", () => {
  test("stress-capture: two short stages pass and the pipeline monitor sees the probes", async () => {
    const topic = uniqueName("smoke_events").replaceAll("-", "_");
    const group = uniqueName("smoke");
    Bun.spawnSync([join(ROOT, "infrastructure/kafka/bin/kafka-topics"), "--bootstrap-server", KAFKA, "--create", "--topic", topic, "--partitions", "12", "--replication-factor", "1"]);
    const capture = await startApp("capture", { CAPTURE_EVENTS_TOPIC: topic });
    const consumer = await startApp("consumer", { CONSUMER_EVENTS_TOPIC: topic, CONSUMER_KAFKA_GROUP_ID: group, CONSUMER_DLQ_TOPIC: `${topic}_dlq`, CONSUMER_BATCH_LINGER_MS: "200" });
    apps.push(capture, consumer);
    const { project: p } = await project("smoke-capture");
    const { code, out } = await runScript("tests/stress-capture.ts", {
      RATES: "20,100",
      STAGE: "8s",
      CAPTURE_URL: capture.url,
      CAPTURE_TOKEN: p.token,
      CAPTURE_TEAM_ID: String(p.id),
      CONSUMER_EVENTS_TOPIC: topic,
      CONSUMER_KAFKA_GROUP_ID: group,
      BENCH_RESULTS_DIR: await mkdtemp(join(tmpdir(), "smoke-")),
    });
    expect(out).toContain("stress-capture: pass");
    expect(out).toMatch(/capture -> queryable p50 \d+ ms/);
    expect(code).toBe(0);
  }, 180_000);

  test("stress-query: a short mixed run on a small seeded project passes", async () => {
    const { project: p, secretKey } = await project("smoke-query");
    const ch = createClickHouse({ url: CLICKHOUSE, database: CH_DB });
    try {
      const end = new Date(Math.floor(Date.now() / 3600_000) * 3600_000);
      await loadEvents(ch, generateEvents({ seed: 7, teamId: p.id, users: 300, events: 20_000, days: 30, end }));
    } finally {
      await ch.close();
    }
    const query = await startApp("query", {});
    apps.push(query);
    const { code, out } = await runScript("tests/stress-query.ts", {
      RATE: "4",
      DURATION: "10s",
      QUERY_URL: query.url,
      QUERY_KEY: secretKey,
      BENCH_RESULTS_DIR: await mkdtemp(join(tmpdir(), "smoke-")),
    });
    expect(out).toContain("stress-query: pass");
    expect(code).toBe(0);
  }, 120_000);
});
