/** Consumer process: wires config, Kafka, ClickHouse and the health/metrics server around the ingest loop. */
import { Hono } from "hono";
import { configOrExit } from "../../lib/config/env.ts";
import { createClickHouse, pingClickHouse } from "../../lib/clickhouse/client.ts";
import { healthRoutes } from "../../lib/http/health.ts";
import { createRegistry, metricsRoute } from "../../lib/http/metrics.ts";
import { Consumer } from "../../lib/kafka/consumer.ts";
import { librdkafkaVersion } from "../../lib/kafka/librdkafka.ts";
import { KafkaProbe } from "../../lib/kafka/probe.ts";
import { consumerProperties, probeProperties, producerProperties } from "../../lib/kafka/props.ts";
import { Producer } from "../../lib/kafka/producer.ts";
import { createLogger } from "../../lib/log/logger.ts";
import { ClickHouseSink } from "./clickhouse-sink.ts";
import { loadConsumerConfig } from "./config.ts";
import { DeadLetters } from "./dead-letters.ts";
import { Ingest } from "./ingest.ts";
import { createPostgres, pingPostgres } from "../../lib/postgres/client.ts";
import { ClickHousePersonRows } from "./persons/person-rows.ts";
import { PersonStore } from "./persons/person-store.ts";
import { Persons } from "./persons/persons.ts";
import { consumerMetrics } from "./metrics.ts";

const config = configOrExit(() => loadConsumerConfig());
// Declared before anything that can call shutdown().
let stopping = false;
let exitCode = 0;
const log = createLogger("consumer", config.LOG_LEVEL);
const registry = createRegistry("consumer");
const metrics = consumerMetrics(registry);

const ch = createClickHouse({
  url: config.CLICKHOUSE_URL,
  database: config.CLICKHOUSE_DATABASE,
  username: config.CLICKHOUSE_USER,
  password: config.CLICKHOUSE_PASSWORD,
});
// Every handle gets the operator's CONSUMER_KAFKA_* properties (security, client.id, ...), narrowed to its kind.
const producer = new Producer(producerProperties(config.kafka), { onError: (err) => log.warn({ err: err.message }, "dlq producer error") });
const probe = new KafkaProbe(probeProperties(config.kafka));
const pg = createPostgres(config.POSTGRES_URL, { max: 2 });
const persons = new Persons(new PersonStore(pg, { maxPropertiesBytes: config.CONSUMER_PERSON_PROPERTIES_MAX_BYTES }), new ClickHousePersonRows(ch), registry, log);
const ingest = new Ingest(new ClickHouseSink(ch, config.CONSUMER_EVENTS_TABLE), new DeadLetters(producer, config.CONSUMER_DLQ_TOPIC), metrics, log, {
  limits: { maxRows: config.CONSUMER_BATCH_MAX_ROWS, maxBytes: config.CONSUMER_BATCH_MAX_BYTES, lingerMs: config.CONSUMER_BATCH_LINGER_MS },
  retryMaxBackoffMs: config.CONSUMER_RETRY_MAX_BACKOFF_MS,
  revokeFlushTimeoutMs: config.CONSUMER_REVOKE_FLUSH_TIMEOUT_MS,
  unknownErrorRetryMs: config.CONSUMER_UNKNOWN_ERROR_RETRY_MS,
  // Exit non-zero after committing what was processed: a restart resumes from the committed offsets.
  onFatal: () => void shutdown("fatal", 1),
  persons,
});
let accepting = true;
const app = new Hono();
app.route(
  "/",
  healthRoutes({
    checks: {
      kafka: () => probe.metadata(1500, config.topics[0]),
      clickhouse: () => pingClickHouse(ch),
      postgres: () => pingPostgres(pg),
    },
    info: () => ({ librdkafka: librdkafkaVersion(), group: config.kafka["group.id"], assigned: consumer.assignment().length }),
    accepting: () => accepting,
  }),
);
app.route("/", metricsRoute(registry));
// The port is taken before joining the group: with static membership a second process started by mistake on the
// same slot fails here, instead of joining under the running member's group.instance.id and fencing it.
const server = Bun.serve({ port: config.CONSUMER_PORT, hostname: "0.0.0.0", fetch: app.fetch });
const consumer = new Consumer(consumerProperties(config.kafka), {
  onRebalance: ingest.onRebalance,
  onError: (err) => log.warn({ err: err.message, code: err.codeName }, "kafka consumer error"),
});
consumer.subscribe(config.topics);
ingest.start(consumer);


// Lag per partition, sampled off the event loop (the probe runs in a worker thread).
const lagTimer = setInterval(async () => {
  try {
    for (const topic of config.topics) {
      for (const p of await probe.lag(config.kafka["group.id"]!, topic, 5000)) {
        metrics.lag.set({ topic: p.topic, partition: String(p.partition) }, Number(p.lag));
      }
    }
  } catch (err) {
    log.debug({ err: String(err) }, "lag sample failed");
  }
}, config.CONSUMER_LAG_INTERVAL_MS);

log.info({ port: server.port, group: config.kafka["group.id"], instance: config.kafka["group.instance.id"], topics: config.topics, librdkafka: librdkafkaVersion() }, "consumer started");

async function shutdown(signal: string, code = 0): Promise<void> {
  // A fatal stop during a SIGTERM shutdown still ends in a non-zero exit.
  exitCode = Math.max(exitCode, code);
  if (stopping) return;
  stopping = true;
  accepting = false;
  log.info({ signal }, "stopping: flushing, committing, leaving the group");
  clearInterval(lagTimer);
  try {
    await ingest.stop();
    await producer.close(10_000);
    probe.close();
    await pg.end({ timeout: 5 });
    server.stop();
    log.info("stopped");
  } catch (err) {
    log.error({ err: String(err) }, "stop failed");
    exitCode = Math.max(exitCode, 1);
  } finally {
    process.exit(exitCode);
  }
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
