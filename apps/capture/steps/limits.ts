/** limits: a request carries at least one and at most `maxEventsPerRequest` events. (Byte caps are enforced
 * while reading and decompressing; the per-event cap on the encoded event in `normalize`.) */
import { CaptureError } from "../capture-error.ts";
import type { CaptureLimits, Step } from "../pipeline.ts";

export function limitsStep(limits: CaptureLimits): Step {
  return {
    name: "limits",
    run(ctx) {
      const n = ctx.events.length;
      if (n === 0) throw new CaptureError("empty_batch", "the request contains no events");
      if (n > limits.maxEventsPerRequest) {
        throw new CaptureError("too_many_events", `${n} events in one request; the limit is ${limits.maxEventsPerRequest}`);
      }
    },
  };
}
