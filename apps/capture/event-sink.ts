/**
 * Where accepted events go. Routing (topic, key) is decided before the sink and written on each message: a sink
 * is pure mechanism. `publish` resolves only when EVERY message is stored (for Kafka: acknowledged by the
 * broker with acks=all), and rejects with an EventSinkError otherwise.
 */

export interface OutgoingEvent {
  topic: string;
  /** distinct_id; null spreads the message over partitions (overflow traffic). */
  key: string | null;
  value: string;
}

export interface EventSink {
  publish(batch: OutgoingEvent[]): Promise<void>;
  /** Messages handed over but not yet acknowledged (librdkafka's queue depth), for /metrics. */
  queueDepth(): number;
  /** Resolves when the sink can reach its store within `timeoutMs` (for /ready). */
  ping(timeoutMs: number): Promise<void>;
  /** Delivers what is queued (bounded by `timeoutMs`) and releases the sink. */
  close(timeoutMs: number): Promise<void>;
}

/**
 * `retriable` failures (broker unreachable, queue full, timeouts) may succeed later: the client gets 503.
 * `too_large` is permanent for that request: 413.
 */
export type EventSinkFailure = "retriable" | "too_large" | "fatal";

export class EventSinkError extends Error {
  constructor(readonly failure: EventSinkFailure, message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = "EventSinkError";
  }
}
