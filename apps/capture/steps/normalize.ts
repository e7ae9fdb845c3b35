/**
 * normalize: validated events -> CapturedEvent (lib/events/normalize.ts) -> encoded Kafka messages, routed:
 * topic `events` keyed by distinct_id, or the overflow topic without key. The skew is computed once here for
 * the whole request. An encoded event over the per-event cap rejects the request (413).
 */
import { encodeCapturedEvent } from "../../../lib/events/captured-event.ts";
import { clockSkewMs } from "../../../lib/events/event-time.ts";
import { normalizeEvent, type RequestFacts } from "../../../lib/events/normalize.ts";
import { CaptureError } from "../capture-error.ts";
import type { OutgoingEvent } from "../event-sink.ts";
import type { CaptureDeps, Step } from "../pipeline.ts";

export function normalizeStep(deps: Pick<CaptureDeps, "limits" | "topics" | "captureIp" | "newUuid">): Step {
  const maxBytes = deps.limits.maxEventBytes;
  return {
    name: "normalize",
    run(ctx) {
      const { nowMs, clientIp } = ctx.input;
      const sentAt = ctx.sentAt;
      const facts: RequestFacts = {
        nowMs,
        skewMs: clockSkewMs(typeof sentAt === "string" || typeof sentAt === "number" ? sentAt : undefined, nowMs),
        teamId: ctx.project!.id,
        ip: deps.captureIp ? clientIp : "",
        captureIp: deps.captureIp,
        newUuid: deps.newUuid,
      };
      const topic = ctx.overflow ? deps.topics.overflow : deps.topics.events;
      const messages: OutgoingEvent[] = new Array(ctx.valid.length);
      for (let i = 0; i < ctx.valid.length; i++) {
        const event = normalizeEvent(ctx.valid[i]!, facts);
        const value = encodeCapturedEvent(event);
        // UTF-8 is at most 3 bytes per UTF-16 unit: only measure exactly when the cheap bound is not enough.
        if (value.length * 3 > maxBytes && Buffer.byteLength(value) > maxBytes) {
          throw new CaptureError("event_too_large", `event of ${Buffer.byteLength(value)} bytes exceeds ${maxBytes}`, {
            index: ctx.isBatch ? i : undefined,
          });
        }
        messages[i] = { topic, key: ctx.overflow ? null : event.distinct_id, value };
      }
      ctx.messages = messages;
    },
  };
}
