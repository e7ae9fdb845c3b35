/**
 * rate_limit: the project token's events against its Redis limit. Over the limit the request is either refused
 * (429 + Retry-After) or diverted to the overflow topic without a key - config. If Redis cannot answer, the
 * request passes: losing events costs more than briefly not limiting.
 */
import { CaptureError } from "../capture-error.ts";
import type { CaptureDeps, Step } from "../pipeline.ts";

export function rateLimitStep(rate: NonNullable<CaptureDeps["rateLimit"]>): Step {
  return {
    name: "rate_limit",
    async run(ctx) {
      let decision;
      try {
        decision = await rate.limiter.take(ctx.project!.token, ctx.valid.length, ctx.input.nowMs);
      } catch (err) {
        rate.onError(err);
        return;
      }
      if (decision.allowed) return;
      if (rate.action === "overflow") {
        ctx.overflow = true;
        return;
      }
      throw new CaptureError("rate_limited", "too many events for this project token", { retryAfterS: decision.retryAfterS });
    },
  };
}
