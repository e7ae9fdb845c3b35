/** validate: every event against the valibot schema; the first invalid event rejects the whole request. */
import { validateIncomingEvent } from "../../../lib/events/incoming-event.ts";
import { CaptureError } from "../capture-error.ts";
import type { Step } from "../pipeline.ts";

export function validateStep(): Step {
  return {
    name: "validate",
    run(ctx) {
      const valid = new Array(ctx.events.length);
      for (let i = 0; i < ctx.events.length; i++) {
        const result = validateIncomingEvent(ctx.events[i]);
        if (!result.ok) {
          throw new CaptureError(result.code, result.detail, { index: ctx.isBatch ? i : undefined, field: result.field });
        }
        valid[i] = result.event;
      }
      ctx.valid = valid;
    },
  };
}
