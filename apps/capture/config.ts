/**
 * apps/capture configuration: one valibot schema, a default for every setting; a bad value stops start-up with
 * the variable's name. librdkafka properties are NOT listed here: every CAPTURE_KAFKA_<NAME> variable is passed
 * to librdkafka as <name> (CAPTURE_KAFKA_BOOTSTRAP_SERVERS -> bootstrap.servers, CAPTURE_KAFKA_LINGER_MS ->
 * linger.ms), so no other setting may start with CAPTURE_KAFKA_.
 */
import * as v from "valibot";
import { bool, identifier, int, kafkaProperties, loadConfig, logLevel, oneOf, port, postgresUrl, redisUrl, str } from "../../lib/config/env.ts";

const metricsPort = (fallback: "public" | "off") =>
  v.pipe(
    v.optional(v.string(), fallback),
    v.regex(/^(public|off|\d{1,5})$/, "expected public, off or a port number"),
    v.transform((s) => (s === "public" || s === "off" ? s : Number(s))),
    v.check((p) => typeof p === "string" || (p >= 1 && p <= 65535), "expected public, off or a port number"),
  );

export const CaptureConfigSchema = v.object({
  CAPTURE_PORT: port(8000),
  CAPTURE_HOST: str("0.0.0.0"),
  /** SO_REUSEPORT: several capture processes on one host share CAPTURE_PORT; the kernel spreads connections. */
  CAPTURE_REUSE_PORT: bool(false),
  POSTGRES_URL: postgresUrl("postgres://ingest:ingest@127.0.0.1:5432/ingest"),
  REDIS_URL: redisUrl("redis://127.0.0.1:6379"),
  LOG_LEVEL: logLevel(),

  CAPTURE_EVENTS_TOPIC: identifier("events"),
  CAPTURE_OVERFLOW_TOPIC: identifier("events_overflow"),
  /** Longest wait for the broker's acknowledgements before answering 503 (also librdkafka message.timeout.ms
   * unless CAPTURE_KAFKA_MESSAGE_TIMEOUT_MS says otherwise, so an unanswered event is not delivered much later). */
  CAPTURE_PRODUCE_TIMEOUT_MS: int(5000, 100, 300_000),
  CAPTURE_RETRY_AFTER_S: int(5, 1, 3600),

  /** Request body caps, bytes, after decompression: /batch, and every other path. */
  CAPTURE_MAX_BATCH_BYTES: int(20 * 1024 * 1024, 1024),
  CAPTURE_MAX_REQUEST_BYTES: int(2 * 1024 * 1024, 1024),
  /** Encoded event cap: 1 MB, under Kafka's default 1,048,588-byte record limit with key and framing. */
  CAPTURE_MAX_EVENT_BYTES: int(1_000_000, 1024),
  CAPTURE_MAX_EVENTS_PER_REQUEST: int(10_000, 1),

  /** Store the client address on events ("" when off). */
  CAPTURE_IP_ENABLED: bool(true),
  /** Read the client address from X-Forwarded-For: only behind a proxy that sets it. */
  CAPTURE_TRUST_PROXY: bool(false),

  /** Token -> project cache: in-process TTL, entries, Redis TTL, and how long "unknown token" is believed. */
  CAPTURE_TOKEN_CACHE_TTL_S: int(60, 1),
  CAPTURE_TOKEN_CACHE_SIZE: int(10_000, 1),
  CAPTURE_TOKEN_REDIS_TTL_S: int(600, 1),
  CAPTURE_TOKEN_NEGATIVE_TTL_S: int(10, 1),

  /** Per-token rate limit (off by default). */
  CAPTURE_RATE_LIMIT: oneOf(["off", "fixed_window", "token_bucket"] as const, "off"),
  CAPTURE_RATE_LIMIT_EVENTS_PER_S: int(1000, 1),
  CAPTURE_RATE_LIMIT_BURST: int(10_000, 1),
  CAPTURE_RATE_LIMIT_WINDOW_S: int(1, 1, 3600),
  /** Over the limit: 429 + Retry-After (reject), or accept into the overflow topic without key (overflow). */
  CAPTURE_RATE_LIMIT_ACTION: oneOf(["reject", "overflow"] as const, "reject"),

  /** SIGTERM: how long in-flight requests and the producer flush may take before exiting anyway. */
  CAPTURE_SHUTDOWN_TIMEOUT_MS: int(15_000, 0),
  /** SIGTERM: first answer /ready 503 this long while still serving, so a load balancer stops sending here
   * before the listener closes (it polls /ready every few seconds). 0: close at once. */
  CAPTURE_DRAIN_MS: int(5000, 0, 300_000),
  /** Where /metrics is served: `public` (the capture port), a port number (its own listener on CAPTURE_HOST,
   * and not on the capture port), or `off`. */
  CAPTURE_METRICS_PORT: metricsPort("public"),
});

export type CaptureConfig = v.InferOutput<typeof CaptureConfigSchema> & { kafka: Record<string, string> };

export function loadCaptureConfig(env: Record<string, string | undefined> = process.env): CaptureConfig {
  const config = loadConfig(CaptureConfigSchema, env);
  const kafka = {
    "bootstrap.servers": "127.0.0.1:9092",
    "message.timeout.ms": String(config.CAPTURE_PRODUCE_TIMEOUT_MS),
    ...kafkaProperties("CAPTURE_KAFKA", env),
  };
  return { ...config, kafka };
}
