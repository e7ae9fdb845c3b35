/**
 * publish: hand every message to the sink and wait for all acknowledgements, at most `produceTimeoutMs`. Only
 * then may the request be answered 202. Too slow or broker unreachable: 503 + Retry-After (the client retries
 * with the same uuids, so a retry is idempotent downstream). A message the broker refuses as too large: 413.
 */
import { CaptureError } from "../capture-error.ts";
import { EventSinkError } from "../event-sink.ts";
import type { CaptureDeps, Step } from "../pipeline.ts";

export function publishStep(deps: Pick<CaptureDeps, "sink" | "produceTimeoutMs" | "retryAfterS" | "metrics">): Step {
  const { sink, produceTimeoutMs, retryAfterS, metrics } = deps;
  return {
    name: "publish",
    async run(ctx) {
      const started = performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new CaptureError("produce_timeout", `Kafka did not acknowledge within ${produceTimeoutMs} ms`, { retryAfterS })),
          produceTimeoutMs,
        );
      });
      try {
        await Promise.race([sink.publish(ctx.messages), deadline]);
      } catch (err) {
        if (err instanceof CaptureError) throw err;
        if (err instanceof EventSinkError && err.failure === "too_large") {
          throw new CaptureError("event_too_large", err.message, { cause: err });
        }
        throw new CaptureError("kafka_unavailable", `Kafka refused the events: ${err instanceof Error ? err.message : String(err)}`, {
          retryAfterS,
          cause: err,
        });
      } finally {
        clearTimeout(timer);
        metrics.produceDuration.observe((performance.now() - started) / 1000);
      }
      metrics.eventsAccepted.inc({ destination: ctx.overflow ? "overflow" : "events" }, ctx.messages.length);
    },
  };
}
