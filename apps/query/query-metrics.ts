/**
 * Prometheus metrics of the query app: latency per endpoint, ClickHouse time, cache results and hit ratio, and
 * admission control (queue length, slots in use, wait before admission, shed requests by reason).
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Admission, ShedReason } from "./admission.ts";
import type { CacheStatus } from "./cache.ts";

export interface QueryMetrics {
  observeRequest(endpoint: string, status: number, seconds: number): void;
  observeClickHouse(endpoint: string, seconds: number): void;
  cacheResult(endpoint: string, status: CacheStatus | "error"): void;
  admitted(kind: string, waitedMs: number): void;
  shed(kind: string, reason: ShedReason): void;
  /** Exposes the queue length and slots in use of this admission as gauges. */
  watch(admission: Admission): void;
}

export function queryMetrics(registry: Registry): QueryMetrics {
  const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 1.5, 2, 5, 10, 30];
  const requests = new Histogram({
    name: "query_http_request_duration_seconds",
    help: "Query API request latency by endpoint and status",
    labelNames: ["endpoint", "status"],
    buckets,
    registers: [registry],
  });
  const clickhouse = new Histogram({
    name: "query_clickhouse_duration_seconds",
    help: "Round-trip time of the generated ClickHouse queries by endpoint",
    labelNames: ["endpoint"],
    buckets,
    registers: [registry],
  });
  const cache = new Counter({
    name: "query_cache_requests_total",
    help: "Result cache lookups by endpoint and result (hit, miss, bypass, error = Redis unavailable)",
    labelNames: ["endpoint", "result"],
    registers: [registry],
  });
  let hits = 0;
  let misses = 0;
  new Gauge({
    name: "query_cache_hit_ratio",
    help: "Cache hits / (hits + misses) since start",
    registers: [registry],
    collect() {
      this.set(hits + misses === 0 ? 0 : hits / (hits + misses));
    },
  });
  const wait = new Histogram({
    name: "query_admission_wait_seconds",
    help: "Time admitted requests waited for their query slots, by kind",
    labelNames: ["kind"],
    buckets: [0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5],
    registers: [registry],
  });
  const shed = new Counter({
    name: "query_admission_shed_total",
    help: "Requests refused with 503 overloaded, by kind and reason (queue_full, expected_wait, wait_timeout)",
    labelNames: ["kind", "reason"],
    registers: [registry],
  });
  let admission: Admission | null = null;
  new Gauge({
    name: "query_admission_queue_length",
    help: "Requests waiting for query slots",
    registers: [registry],
    collect() {
      this.set(admission?.queued ?? 0);
    },
  });
  new Gauge({
    name: "query_admission_slots_in_use",
    help: "Query slots held by running requests",
    registers: [registry],
    collect() {
      this.set(admission?.slotsInUse ?? 0);
    },
  });
  return {
    admitted: (kind, waitedMs) => wait.observe({ kind }, waitedMs / 1000),
    shed: (kind, reason) => shed.inc({ kind, reason }),
    watch: (a) => void (admission = a),
    observeRequest: (endpoint, status, s) => requests.observe({ endpoint, status: String(status) }, s),
    observeClickHouse: (endpoint, s) => clickhouse.observe({ endpoint }, s),
    cacheResult: (endpoint, result) => {
      if (result === "hit") hits++;
      if (result === "miss") misses++;
      cache.inc({ endpoint, result });
    },
  };
}
