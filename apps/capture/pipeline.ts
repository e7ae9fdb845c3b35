/**
 * Capture as a list of named steps. Read top to bottom, `captureSteps` is the specification of what happens to
 * a request; `runPipeline` goes through it, stops at the first rejection, counts the rejected events under the
 * rejection's code in `capture_events_dropped_total{reason}`, and times every step by name
 * (`capture_step_seconds_total{step}`).
 */
import type { CaptureContext } from "./capture-context.ts";
import { CaptureError } from "./capture-error.ts";
import type { CaptureMetrics } from "./capture-metrics.ts";
import type { ProjectResolver } from "../../lib/projects/project-resolver.ts";
import type { EventSink } from "./event-sink.ts";
import type { RateLimiter } from "./rate-limiter.ts";
import { authenticateStep } from "./steps/authenticate.ts";
import { decodeStep } from "./steps/decode.ts";
import { limitsStep } from "./steps/limits.ts";
import { normalizeStep } from "./steps/normalize.ts";
import { publishStep } from "./steps/publish.ts";
import { rateLimitStep } from "./steps/rate-limit.ts";
import { validateStep } from "./steps/validate.ts";

export interface Step {
  readonly name: string;
  run(ctx: CaptureContext): void | Promise<void>;
}

export interface CaptureLimits {
  maxEventsPerRequest: number;
  /** Encoded CapturedEvent, bytes. */
  maxEventBytes: number;
}

export interface CaptureDeps {
  limits: CaptureLimits;
  projects: Pick<ProjectResolver, "resolve">;
  /** null: rate limiting off. */
  rateLimit: { limiter: RateLimiter; action: "reject" | "overflow"; onError: (err: unknown) => void } | null;
  sink: EventSink;
  topics: { events: string; overflow: string };
  produceTimeoutMs: number;
  /** Retry-After for 503s. */
  retryAfterS: number;
  captureIp: boolean;
  newUuid: (ms: number) => string;
  metrics: CaptureMetrics;
}

export function captureSteps(deps: CaptureDeps): Step[] {
  return [
    decodeStep(),
    limitsStep(deps.limits),
    authenticateStep(deps.projects, deps.retryAfterS),
    validateStep(),
    ...(deps.rateLimit ? [rateLimitStep(deps.rateLimit)] : []),
    normalizeStep(deps),
    publishStep(deps),
  ];
}

export async function runPipeline(steps: Step[], ctx: CaptureContext, metrics: CaptureMetrics): Promise<void> {
  for (const step of steps) {
    const started = performance.now();
    try {
      const pending = step.run(ctx);
      if (pending) await pending;
    } catch (err) {
      const reason = err instanceof CaptureError ? err.code : "internal_error";
      metrics.eventsDropped.inc({ reason }, Math.max(1, ctx.events.length));
      throw err;
    } finally {
      metrics.steps.add(step.name, (performance.now() - started) / 1000);
    }
  }
}
