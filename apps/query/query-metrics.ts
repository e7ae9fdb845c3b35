/** Prometheus metrics of the query app: latency per endpoint, ClickHouse time, cache results and hit ratio. */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { CacheStatus } from "./cache.ts";

export interface QueryMetrics {
  observeRequest(endpoint: string, status: number, seconds: number): void;
  observeClickHouse(endpoint: string, seconds: number): void;
  cacheResult(endpoint: string, status: CacheStatus | "error"): void;
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
  return {
    observeRequest: (endpoint, status, s) => requests.observe({ endpoint, status: String(status) }, s),
    observeClickHouse: (endpoint, s) => clickhouse.observe({ endpoint }, s),
    cacheResult: (endpoint, result) => {
      if (result === "hit") hits++;
      if (result === "miss") misses++;
      cache.inc({ endpoint, result });
    },
  };
}
