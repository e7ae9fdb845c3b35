/**
 * The running capture service: dependencies built from configuration, the app, the HTTP server, and an orderly
 * stop. main.ts starts it from the environment; integration tests start it in-process on a random port.
 */
import type { Server } from "bun";
import { healthRoutes } from "../../lib/http/health.ts";
import { createRegistry, metricsRoute } from "../../lib/http/metrics.ts";
import { librdkafkaVersion } from "../../lib/kafka/librdkafka.ts";
import { KafkaProbe } from "../../lib/kafka/probe.ts";
import { Producer } from "../../lib/kafka/producer.ts";
import type { Logger } from "../../lib/log/logger.ts";
import { createPostgres, pingPostgres } from "../../lib/postgres/client.ts";
import { PostgresProjects } from "../../lib/projects/postgres-projects.ts";
import { ProjectResolver } from "../../lib/projects/project-resolver.ts";
import { createRedis, pingRedis } from "../../lib/redis/client.ts";
import { createCaptureApp } from "./capture-app.ts";
import { createCaptureMetrics } from "./capture-metrics.ts";
import type { CaptureConfig } from "./config.ts";
import { KafkaEventSink } from "./kafka-sink.ts";
import { RedisRateLimiter } from "./rate-limiter.ts";

export interface CaptureService {
  server: Server<undefined>;
  url: string;
  /**
   * Answer /ready 503 for CAPTURE_DRAIN_MS while still serving, then stop accepting, let in-flight requests
   * finish, flush Kafka, close the stores (CAPTURE_SHUTDOWN_TIMEOUT_MS bounds what follows the drain). Idempotent.
   */
  stop(): Promise<void>;
}

/** Keeps only what a metadata client needs to reach the cluster (not producer settings). */
function connectionProperties(kafka: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(kafka).filter(([k]) => /^(bootstrap\.servers|security\.|ssl\.|sasl\.|client\.id)/.test(k)));
}

export function startCaptureService(config: CaptureConfig, logger: Logger): CaptureService {
  const sql = createPostgres(config.POSTGRES_URL);
  const redis = createRedis(config.REDIS_URL);

  let lastKafkaLog = 0;
  const producer = new Producer(config.kafka, {
    onError(err, fatal) {
      // Broker-down errors repeat every few ms; one line per 10 s is enough to see them.
      const now = Date.now();
      if (fatal || now - lastKafkaLog > 10_000) {
        lastKafkaLog = now;
        logger[fatal ? "error" : "warn"]({ code: err.codeName, fatal }, `kafka: ${err.message}`);
      }
    },
  });
  const sink = new KafkaEventSink(producer, new KafkaProbe(connectionProperties(config.kafka)), config.CAPTURE_EVENTS_TOPIC);

  const registry = createRegistry("capture");
  const metrics = createCaptureMetrics(registry, () => sink.queueDepth());

  const projects = new ProjectResolver({
    source: new PostgresProjects(sql),
    redis,
    ttlMs: config.CAPTURE_TOKEN_CACHE_TTL_S * 1000,
    redisTtlMs: config.CAPTURE_TOKEN_REDIS_TTL_S * 1000,
    negativeTtlMs: config.CAPTURE_TOKEN_NEGATIVE_TTL_S * 1000,
    capacity: config.CAPTURE_TOKEN_CACHE_SIZE,
    onStoreError: (store) => metrics.storeErrors.inc({ store }),
  });

  const rateLimit =
    config.CAPTURE_RATE_LIMIT === "off"
      ? null
      : {
          limiter: new RedisRateLimiter(redis, {
            algorithm: config.CAPTURE_RATE_LIMIT,
            ratePerSecond: config.CAPTURE_RATE_LIMIT_EVENTS_PER_S,
            burst: config.CAPTURE_RATE_LIMIT_BURST,
            windowSeconds: config.CAPTURE_RATE_LIMIT_WINDOW_S,
          }),
          action: config.CAPTURE_RATE_LIMIT_ACTION,
          onError: () => metrics.rateLimitErrors.inc(),
        };

  // serving -> (SIGTERM) draining: /ready says 503, requests are still served -> closing: new requests 503.
  let phase: "serving" | "draining" | "closing" = "serving";
  const app = createCaptureApp({
    limits: { maxEventsPerRequest: config.CAPTURE_MAX_EVENTS_PER_REQUEST, maxEventBytes: config.CAPTURE_MAX_EVENT_BYTES },
    maxRequestBytes: config.CAPTURE_MAX_REQUEST_BYTES,
    maxBatchBytes: config.CAPTURE_MAX_BATCH_BYTES,
    projects,
    rateLimit,
    sink,
    topics: { events: config.CAPTURE_EVENTS_TOPIC, overflow: config.CAPTURE_OVERFLOW_TOPIC },
    produceTimeoutMs: config.CAPTURE_PRODUCE_TIMEOUT_MS,
    retryAfterS: config.CAPTURE_RETRY_AFTER_S,
    captureIp: config.CAPTURE_IP_ENABLED,
    trustProxy: config.CAPTURE_TRUST_PROXY,
    newUuid: (ms) => Bun.randomUUIDv7(undefined, ms),
    metrics,
    logger,
    accepting: () => phase !== "closing",
  });
  app.route(
    "/",
    healthRoutes({
      checks: { kafka: () => sink.ping(1500), postgres: () => pingPostgres(sql), redis: () => pingRedis(redis) },
      info: () => ({ librdkafka: librdkafkaVersion(), topic: config.CAPTURE_EVENTS_TOPIC }),
      accepting: () => phase === "serving",
    }),
  );
  const metricsPort = config.CAPTURE_METRICS_PORT;
  if (metricsPort === "public") app.route("/", metricsRoute(registry));
  const metricsServer =
    typeof metricsPort === "number" ? Bun.serve({ port: metricsPort, hostname: config.CAPTURE_HOST, fetch: metricsRoute(registry).fetch }) : null;

  const server = Bun.serve({
    port: config.CAPTURE_PORT,
    hostname: config.CAPTURE_HOST,
    reusePort: config.CAPTURE_REUSE_PORT,
    fetch: app.fetch,
    // Bun refuses larger bodies itself; below this our handler answers with a JSON 413 naming the route's cap.
    maxRequestBodySize: Math.max(config.CAPTURE_MAX_BATCH_BYTES, config.CAPTURE_MAX_REQUEST_BYTES) + 65_536,
    // Keep-alive connections outlive clients' and proxies' own idle timeouts (typically 60-90 s): a server that
    // closes first races the client's next request on that connection, which then fails with EOF (seen under
    // load with Bun's default of 10 s).
    idleTimeout: 120,
  });
  logger.info(
    {
      port: server.port,
      metrics: metricsServer ? metricsServer.port : metricsPort,
      topic: config.CAPTURE_EVENTS_TOPIC,
      rateLimit: config.CAPTURE_RATE_LIMIT,
      librdkafka: librdkafkaVersion(),
    },
    "capture listening",
  );

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      phase = "draining";
      if (config.CAPTURE_DRAIN_MS > 0) {
        logger.info({ ms: config.CAPTURE_DRAIN_MS }, "draining: /ready answers 503, requests still served");
        await Bun.sleep(config.CAPTURE_DRAIN_MS);
      }
      phase = "closing";
      const started = Date.now();
      const left = () => Math.max(0, config.CAPTURE_SHUTDOWN_TIMEOUT_MS - (Date.now() - started));
      // Stop listening; in-flight requests finish (they are waiting for their delivery reports).
      await Promise.race([server.stop(false), Bun.sleep(left())]);
      try {
        await sink.close(Math.max(1000, left()));
      } catch (err) {
        logger.error({ err }, "kafka flush on shutdown failed");
      }
      metricsServer?.stop(true);
      redis.disconnect();
      await sql.end({ timeout: 2 }).catch(() => {});
      logger.info({ ms: Date.now() - started }, "capture stopped");
    })());

  return { server, url: `http://127.0.0.1:${server.port}`, stop };
}
