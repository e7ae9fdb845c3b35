/** Consumer metrics (Prometheus). */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export function consumerMetrics(registry: Registry) {
  return {
    batchRows: new Histogram({
      name: "consumer_batch_rows",
      help: "Rows per ClickHouse insert",
      buckets: [10, 100, 1000, 5000, 10_000, 25_000, 50_000, 100_000, 250_000],
      registers: [registry],
    }),
    batchBytes: new Histogram({
      name: "consumer_batch_bytes",
      help: "Kafka value bytes per ClickHouse insert",
      buckets: [1e3, 1e4, 1e5, 1e6, 4e6, 16e6, 64e6],
      registers: [registry],
    }),
    insertSeconds: new Histogram({
      name: "consumer_insert_duration_seconds",
      help: "ClickHouse insert latency per batch",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    insertErrors: new Counter({
      name: "consumer_insert_errors_total",
      help: "Failed ClickHouse insert attempts by kind: transient (retried), rows (the batch is split), unknown",
      labelNames: ["kind"],
      registers: [registry],
    }),
    splitInserts: new Counter({
      name: "consumer_split_inserts_total",
      help: "Inserts of part of a batch while isolating rows ClickHouse rejected",
      registers: [registry],
    }),
    eventsInserted: new Counter({ name: "consumer_events_inserted_total", help: "Events inserted into ClickHouse", registers: [registry] }),
    dlq: new Counter({ name: "consumer_dlq_total", help: "Messages the DLQ confirmed, by reason (insert_rejected, undecodable, schema_violation, ingest_error)", labelNames: ["reason"], registers: [registry] }),
    commits: new Counter({ name: "consumer_commits_total", help: "Offset commits after a confirmed insert", registers: [registry] }),
    lag: new Gauge({ name: "consumer_partition_lag", help: "Messages behind the log end, per partition", labelNames: ["topic", "partition"], registers: [registry] }),
    paused: new Gauge({ name: "consumer_paused", help: "1 while partitions are paused because ClickHouse is failing", registers: [registry] }),
  };
}

export type ConsumerMetrics = ReturnType<typeof consumerMetrics>;
