/** A missing or malformed setting stops an app at start-up with the variable's name and the expected form. */
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { bool, ConfigError, int, kafkaProperties, loadConfig, port, postgresUrl } from "../../lib/config/env.ts";
import { loadQueryConfig } from "../../apps/query/config.ts";
import { ROOT } from "../support/stack.ts";

async function startWith(app: string, env: Record<string, string>): Promise<{ code: number; err: string }> {
  const proc = Bun.spawn(["bun", join(ROOT, `apps/${app}/main.ts`)], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
  const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, err };
}

describe("configuration", () => {
  const schema = v.object({ P: port(8000), N: int(5, 1, 10), B: bool(false), U: postgresUrl("postgres://a@b/c") });

  test("defaults apply to unset and empty variables", () => {
    expect(loadConfig(schema, { N: "" })).toEqual({ P: 8000, N: 5, B: false, U: "postgres://a@b/c" });
  });

  test("every bad variable is named with the expected form", () => {
    try {
      loadConfig(schema, { P: "http", N: "11", B: "maybe", U: "mysql://x" });
      throw new Error("should have failed");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const msg = (err as ConfigError).message;
      expect(msg).toContain('P: expected an integer between 1 and 65535 (got "http")');
      expect(msg).toContain('N: expected an integer between 1 and 10 (got "11")');
      expect(msg).toContain("B: expected true or false");
      expect(msg).toContain("U: expected a URL such as postgres://");
    }
  });

  test("a bad value is quoted without secrets: URL credentials and secret-named variables are not shown", () => {
    const s = v.object({ POSTGRES_URL: postgresUrl("postgres://a@b/c"), CLICKHOUSE_PASSWORD: int(1), URL2: postgresUrl("postgres://a@b/c") });
    try {
      loadConfig(s, { POSTGRES_URL: "postgres://ingest:hunter2 with space@db:5432/x", CLICKHOUSE_PASSWORD: "hunter3", URL2: "pg:/u:hun/ter4@@h" });
      throw new Error("should have failed");
    } catch (err) {
      const msg = (err as ConfigError).message;
      expect(msg).toContain('POSTGRES_URL: expected a URL such as postgres://user:password@127.0.0.1:5432/db (got "postgres://***@db:5432/x")');
      expect(msg).toContain("CLICKHOUSE_PASSWORD: expected an integer between 0 and 9007199254740991 (got a value of 7 characters (not shown))");
      expect(msg).toContain('URL2: expected a URL such as postgres://user:password@127.0.0.1:5432/db (got "***@h")');
      for (const secret of ["hunter2", "hunter3", "hun", "ter4", "ingest"]) expect(msg).not.toContain(secret);
    }
  });

  test("query exits at start-up naming a malformed POSTGRES_URL without printing its password", async () => {
    const { code, err } = await startWith("query", { POSTGRES_URL: "postgresql://ingest:s3cr3t pass@127.0.0.1:5432/ingest" });
    expect(code).toBe(2);
    expect(err).toContain("POSTGRES_URL");
    expect(err).not.toContain("s3cr3t");
  }, 30_000);

  test("query: the trend rollup is on for the single-node table only; asking for it on a Distributed table stops start-up", () => {
    expect(loadQueryConfig({}).QUERY_TREND_ROLLUP).toBe(true);
    expect(loadQueryConfig({ QUERY_TREND_ROLLUP: "false" }).QUERY_TREND_ROLLUP).toBe(false);
    expect(loadQueryConfig({ QUERY_EVENTS_TABLE: "events_distributed" }).QUERY_TREND_ROLLUP).toBe(false);
    expect(loadQueryConfig({ QUERY_EVENTS_TABLE: "events_distributed", QUERY_TREND_ROLLUP: "false" }).QUERY_TREND_ROLLUP).toBe(false);
    expect(() => loadQueryConfig({ QUERY_EVENTS_TABLE: "events_distributed", QUERY_TREND_ROLLUP: "true" })).toThrow(/QUERY_TREND_ROLLUP/);
  });

  test("librdkafka properties come from <PREFIX>_* variables", () => {
    expect(kafkaProperties("CAPTURE_KAFKA", { CAPTURE_KAFKA_LINGER_MS: "10", CAPTURE_KAFKA_BOOTSTRAP_SERVERS: "h:1", OTHER: "x" })).toEqual({
      "linger.ms": "10",
      "bootstrap.servers": "h:1",
    });
  });

  for (const [app, variable] of [
    ["consumer", "CONSUMER_PORT"],
    ["capture", "CAPTURE_PORT"],
    ["query", "QUERY_PORT"],
  ] as const) {
    test.if(existsSync(join(ROOT, `apps/${app}/main.ts`)))(`${app} exits at start-up naming a malformed ${variable}`, async () => {
      const { code, err } = await startWith(app, { [variable]: "eighty" });
      expect(code).not.toBe(0);
      expect(err).toContain(variable);
      expect(err).toContain("expected an integer between 1 and 65535");
    }, 30_000);
  }

  test("consumer exits at start-up naming a bad librdkafka property", async () => {
    const { code, err } = await startWith("consumer", { CONSUMER_KAFKA_LINGER_MS: "-5", CONSUMER_PORT: "18999" });
    expect(code).not.toBe(0);
    expect(err).toMatch(/linger\.ms|queue\.buffering\.max\.ms/);
  }, 30_000);

  test("consumer refuses a cooperative assignment strategy at start-up", async () => {
    const { code, err } = await startWith("consumer", { CONSUMER_KAFKA_PARTITION_ASSIGNMENT_STRATEGY: "cooperative-sticky", CONSUMER_PORT: "18998" });
    expect(code).not.toBe(0);
    expect(err).toContain("CONSUMER_KAFKA_PARTITION_ASSIGNMENT_STRATEGY: expected an eager strategy");
  }, 30_000);
});
