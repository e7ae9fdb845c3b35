/** The Prometheus series of apps/capture. One place, so names and labels stay consistent. */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export interface CaptureMetrics {
  requests: Counter<"route" | "status">;
  requestDuration: Histogram<"route">;
  eventsAccepted: Counter<"destination">;
  /** Every rejected event, by the code that rejected it (undecodable requests count as one). */
  eventsDropped: Counter<"reason">;
  /** Time per pipeline step, accumulated in plain numbers on the hot path and published on scrape. */
  steps: StepTimes;
  produceDuration: Histogram;
  storeErrors: Counter<"store">;
  rateLimitErrors: Counter;
}

/**
 * Per-step time as two counters (seconds and runs; rate(seconds)/rate(runs) = mean time per step). A prom-client
 * histogram observation costs ~1 us in label hashing; seven per request was a measurable share of the request,
 * so steps add into numbers here and prom-client reads them only when scraped.
 */
export class StepTimes {
  readonly seconds = new Map<string, number>();
  readonly runs = new Map<string, number>();
  add(step: string, seconds: number): void {
    this.seconds.set(step, (this.seconds.get(step) ?? 0) + seconds);
    this.runs.set(step, (this.runs.get(step) ?? 0) + 1);
  }
}

export function createCaptureMetrics(registry: Registry, queueDepth: () => number): CaptureMetrics {
  const steps = new StepTimes();
  new Counter({
    name: "capture_step_seconds_total",
    help: "Time spent in each pipeline step",
    labelNames: ["step"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [step, seconds] of steps.seconds) this.inc({ step }, seconds);
    },
  });
  new Counter({
    name: "capture_step_runs_total",
    help: "Pipeline step executions",
    labelNames: ["step"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [step, runs] of steps.runs) this.inc({ step }, runs);
    },
  });
  new Gauge({
    name: "capture_kafka_queue_depth",
    help: "Messages handed to librdkafka and not yet acknowledged",
    registers: [registry],
    collect() {
      this.set(queueDepth());
    },
  });
  return {
    requests: new Counter({
      name: "capture_requests_total",
      help: "HTTP requests by route and status",
      labelNames: ["route", "status"],
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: "capture_request_duration_seconds",
      help: "Time from request to response, by route",
      labelNames: ["route"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    eventsAccepted: new Counter({
      name: "capture_events_accepted_total",
      help: "Events acknowledged by Kafka, by destination (events or overflow)",
      labelNames: ["destination"],
      registers: [registry],
    }),
    eventsDropped: new Counter({
      name: "capture_events_dropped_total",
      help: "Events rejected, by reason (the error code)",
      labelNames: ["reason"],
      registers: [registry],
    }),
    steps,
    produceDuration: new Histogram({
      name: "capture_produce_duration_seconds",
      help: "Time from handing a request's events to Kafka until every delivery report arrived",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    storeErrors: new Counter({
      name: "capture_project_store_errors_total",
      help: "Failed token lookups in Redis or PostgreSQL (capture continues from cache when it can)",
      labelNames: ["store"],
      registers: [registry],
    }),
    rateLimitErrors: new Counter({
      name: "capture_rate_limit_errors_total",
      help: "Rate-limit checks that failed (Redis unreachable); the request was let through",
      registers: [registry],
    }),
  };
}
