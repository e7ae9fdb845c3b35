/** Consumer configuration: one valibot schema over the environment; CONSUMER_KAFKA_* passes to librdkafka. */
import * as v from "valibot";
import { hostname } from "node:os";
import { bool, ConfigError, httpUrl, identifier, int, kafkaProperties, loadConfig, logLevel, port, postgresUrl, str } from "../../lib/config/env.ts";

const schema = v.object({
  CONSUMER_PORT: port(8002),
  /** Topics read, comma-separated: events and the overflow topic capture's rate limiter routes to. */
  CONSUMER_TOPICS: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*$/, "expected topic names separated by commas"))),
  /** The single topic read when CONSUMER_TOPICS is not set (the setting from before there were two). */
  CONSUMER_EVENTS_TOPIC: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9._-]+$/, "expected a topic name"))),
  CONSUMER_DLQ_TOPIC: str("events_dlq"),
  /** Flush when the batch holds this many rows... */
  CONSUMER_BATCH_MAX_ROWS: int(50_000, 1, 10_000_000),
  /** ...or this many bytes of Kafka values... */
  CONSUMER_BATCH_MAX_BYTES: int(33_554_432, 1024, 1_073_741_824),
  /** ...or when its first row has waited this long. */
  CONSUMER_BATCH_LINGER_MS: int(1000, 1, 600_000),
  /** Cap of the exponential backoff between ClickHouse insert retries. */
  CONSUMER_RETRY_MAX_BACKOFF_MS: int(10_000, 10, 600_000),
  /** How long a revoke waits for ClickHouse before letting the partition go uncommitted (redelivered). */
  CONSUMER_REVOKE_FLUSH_TIMEOUT_MS: int(15_000, 100, 600_000),
  /**
   * How long an insert failure whose ClickHouse error code is in neither list of insert-errors.ts is retried as
   * transient before the batch is split and rows still failing alone go to the DLQ.
   */
  CONSUMER_UNKNOWN_ERROR_RETRY_MS: int(60_000, 0, 86_400_000),
  /**
   * Static group membership (KIP-345): group.instance.id = "<host name>:<CONSUMER_PORT>", stable for a process
   * slot, so a restarted consumer (after kill -9, an OOM, a deploy) gets its partitions back at once instead of
   * after the session timeout. CONSUMER_KAFKA_GROUP_INSTANCE_ID sets the id explicitly.
   */
  CONSUMER_STATIC_MEMBERSHIP: bool(true),
  CONSUMER_LAG_INTERVAL_MS: int(10_000, 500, 3_600_000),
  /** Person state (apps/consumer/persons): PostgreSQL holds it, ClickHouse gets a versioned copy. */
  POSTGRES_URL: postgresUrl("postgres://ingest:ingest@127.0.0.1:5432/ingest"),
  /** Largest person properties (JSON bytes) a $set may produce; a larger result is refused whole and counted. */
  CONSUMER_PERSON_PROPERTIES_MAX_BYTES: int(65_536, 1024, 16_777_216),
  CLICKHOUSE_URL: httpUrl("http://127.0.0.1:8123"),
  CLICKHOUSE_DATABASE: identifier("analytics"),
  /** The table batches go into: `events_distributed` on a sharded cluster (runbooks/scaling.md). */
  CONSUMER_EVENTS_TABLE: identifier("events"),
  CLICKHOUSE_USER: str("default"),
  CLICKHOUSE_PASSWORD: v.optional(v.string(), ""),
  LOG_LEVEL: logLevel(),
});

export type ConsumerConfig = v.InferOutput<typeof schema> & { kafka: Record<string, string>; topics: string[] };

export const DEFAULT_TOPICS = ["events", "events_overflow"];

export function loadConsumerConfig(env: Record<string, string | undefined> = process.env): ConsumerConfig {
  const config = loadConfig(schema, env);
  const kafka: Record<string, string> = {
    "bootstrap.servers": "127.0.0.1:9092",
    "group.id": "event-consumers",
    ...kafkaProperties("CONSUMER_KAFKA", env),
  };
  // A revoke that cannot flush in time drops the uncommitted batch for redelivery; that is only safe when a
  // rebalance takes every partition away (eager protocols), never with cooperative-sticky's partial revokes.
  if (/cooperative/i.test(kafka["partition.assignment.strategy"] ?? "")) {
    throw new ConfigError([
      `CONSUMER_KAFKA_PARTITION_ASSIGNMENT_STRATEGY: expected an eager strategy (range, roundrobin) (got "${kafka["partition.assignment.strategy"]}")`,
    ]);
  }
  if (config.CONSUMER_STATIC_MEMBERSHIP && !kafka["group.instance.id"]) kafka["group.instance.id"] = `${hostname()}:${config.CONSUMER_PORT}`;
  if (!config.CONSUMER_STATIC_MEMBERSHIP) delete kafka["group.instance.id"];
  const topics = config.CONSUMER_TOPICS ? [...new Set(config.CONSUMER_TOPICS.split(","))] : config.CONSUMER_EVENTS_TOPIC ? [config.CONSUMER_EVENTS_TOPIC] : DEFAULT_TOPICS;
  return { ...config, kafka, topics };
}
