/**
 * The native stack answers for real: Kafka through its own CLI tools, ClickHouse through @clickhouse/client-web,
 * PostgreSQL and Redis round trips, and the runbook's topic/group commands through the wrappers.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createClickHouse } from "../../lib/clickhouse/client.ts";
import { createPostgres } from "../../lib/postgres/client.ts";
import { createRedis, redisReady } from "../../lib/redis/client.ts";
import { CH_DB, CLICKHOUSE, ROOT, uniqueName } from "../support/stack.ts";

const BIN = join(ROOT, "infrastructure/kafka/bin");

async function run(cmd: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const proc = Bun.spawn(cmd, { stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out, err };
}

describe("native stack", () => {
  test("Kafka: the CLI wrappers create a topic, produce and consume a round trip", async () => {
    const topic = uniqueName("infra-roundtrip");
    const created = await run([`${BIN}/kafka-topics`, "--bootstrap-server", "127.0.0.1:9092", "--create", "--topic", topic, "--partitions", "3", "--replication-factor", "1"]);
    expect(created.code).toBe(0);
    const lines = ["k1:alpha", "k2:beta", "k3:gamma"];
    const produced = await run(
      [`${BIN}/kafka-console-producer`, "--bootstrap-server", "127.0.0.1:9092", "--topic", topic, "--property", "parse.key=true", "--property", "key.separator=:"],
      `${lines.join("\n")}\n`,
    );
    expect(produced.code).toBe(0);
    const consumed = await run([
      `${BIN}/kafka-console-consumer`, "--bootstrap-server", "127.0.0.1:9092", "--topic", topic, "--from-beginning",
      "--max-messages", "3", "--timeout-ms", "20000", "--formatter-property", "print.key=true", "--formatter-property", "key.separator=:",
    ]);
    expect(consumed.code).toBe(0);
    expect(consumed.out.trim().split("\n").sort()).toEqual(lines);
  }, 90_000);

  test("Kafka: the runbook's --alter --partitions and consumer-groups --describe work through the wrappers", async () => {
    const topic = uniqueName("infra-alter");
    expect((await run([`${BIN}/kafka-topics`, "--bootstrap-server", "localhost:9092", "--create", "--topic", topic, "--partitions", "12", "--replication-factor", "1"])).code).toBe(0);
    const alter = await run([`${BIN}/kafka-topics`, "--alter", "--topic", topic, "--partitions", "24", "--bootstrap-server", "localhost:9092"]);
    expect(alter.code).toBe(0);
    const described = await run([`${BIN}/kafka-topics`, "--describe", "--topic", topic, "--bootstrap-server", "localhost:9092"]);
    expect(described.out).toContain("PartitionCount: 24");
    // A group that has consumed something, so --describe has rows to print.
    const group = uniqueName("infra-group");
    await run([`${BIN}/kafka-console-producer`, "--bootstrap-server", "localhost:9092", "--topic", topic], "one\n");
    await run([`${BIN}/kafka-console-consumer`, "--bootstrap-server", "localhost:9092", "--topic", topic, "--group", group, "--from-beginning", "--max-messages", "1", "--timeout-ms", "20000"]);
    const groups = await run([`${BIN}/kafka-consumer-groups`, "--bootstrap-server", "localhost:9092", "--group", group, "--describe"]);
    expect(groups.code).toBe(0);
    expect(groups.out).toContain("LOG-END-OFFSET");
    expect(groups.out).toContain(topic);
  }, 120_000);

  test("ClickHouse: insert and select through @clickhouse/client-web; the events table exists", async () => {
    const client = createClickHouse({ url: CLICKHOUSE, database: CH_DB });
    const table = `infra_${uniqueName("t").replaceAll("-", "_")}`;
    try {
      await client.command({ query: `CREATE TABLE ${table} (id UInt32, name String) ENGINE = MergeTree ORDER BY id` });
      await client.insert({ table, values: [{ id: 1, name: "a" }, { id: 2, name: "b'c" }], format: "JSONEachRow" });
      const rows = await (await client.query({ query: `SELECT id, name FROM ${table} ORDER BY id`, format: "JSONEachRow" })).json();
      expect(rows).toEqual([{ id: 1, name: "a" }, { id: 2, name: "b'c" }]);
      const cols = await (await client.query({ query: "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'events'", format: "JSONEachRow" })).json<{ name: string }>();
      expect(cols.map((c) => c.name)).toEqual(expect.arrayContaining(["uuid", "team_id", "event", "distinct_id", "timestamp", "prop_keys", "prop_values", "kafka_offset"]));
    } finally {
      await client.command({ query: `DROP TABLE IF EXISTS ${table}` });
      await client.close();
    }
  });

  test("PostgreSQL: round trip, and the projects migration is applied", async () => {
    const sql = createPostgres(process.env.POSTGRES_URL ?? "postgres://ingest:ingest@127.0.0.1:5432/ingest", { max: 1 });
    try {
      const [row] = await sql<{ v: string }[]>`SELECT ${"round trip"}::text AS v`;
      expect(row!.v).toBe("round trip");
      const applied = await sql<{ name: string }[]>`SELECT name FROM schema_migrations ORDER BY name`;
      expect(applied.map((r) => r.name)).toContain("001_projects.sql");
    } finally {
      await sql.end();
    }
  });

  test("Redis: round trip", async () => {
    const redis = createRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    try {
      await redisReady(redis);
      const key = uniqueName("infra");
      await redis.set(key, "value", "EX", 10);
      expect(await redis.get(key)).toBe("value");
    } finally {
      redis.disconnect();
    }
  });

  test("init-clickhouse.sh is idempotent", async () => {
    const first = await run([join(ROOT, "infrastructure/init-clickhouse.sh"), "127.0.0.1:8123"]);
    const second = await run([join(ROOT, "infrastructure/init-clickhouse.sh"), "127.0.0.1:8123"]);
    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    expect(second.out).toContain("applied 001_events.sql");
  });
});
