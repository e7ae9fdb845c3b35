/**
 * The capture HTTP surface: PostHog's paths and ours, CORS for browsers, and the one error handler. Each
 * request is built into a CaptureInput, run through the pipeline, and answered 202 {"status":1} (204 for
 * `?beacon=1`) only once Kafka acknowledged every event.
 */
import { Hono, type Context } from "hono";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import type { Logger } from "../../lib/log/logger.ts";
import { newCaptureContext } from "./capture-context.ts";
import { CaptureError } from "./capture-error.ts";
import { buildCaptureInput } from "./capture-request.ts";
import { captureSteps, runPipeline, type CaptureDeps } from "./pipeline.ts";

/** One event per request by convention (a batch is still accepted, under the smaller cap). */
export const SINGLE_PATHS = ["/capture", "/capture/", "/e", "/e/", "/i/v0/e", "/i/v0/e/", "/track", "/track/"];
export const BATCH_PATHS = ["/batch", "/batch/"];

export interface CaptureAppOptions extends CaptureDeps {
  maxRequestBytes: number;
  maxBatchBytes: number;
  trustProxy: boolean;
  logger: Logger;
  now?: () => number;
  /** False once SIGTERM arrived: new requests get 503 so clients go elsewhere. */
  accepting?: () => boolean;
}

/** At most one log line per error code per this many ms: an outage must not become a log flood. */
const LOG_EVERY_MS = 10_000;

export function createCaptureApp(opts: CaptureAppOptions): Hono {
  const app = new Hono();
  const steps = captureSteps(opts);
  const now = opts.now ?? Date.now;
  const accepting = opts.accepting ?? (() => true);
  const { metrics, logger } = opts;
  const lastLogged = new Map<string, number>();

  app.use(
    "*",
    cors({
      // A public, write-only endpoint: any page may send events, with or without cookies.
      origin: (origin) => origin || "*",
      credentials: true,
      allowMethods: ["GET", "POST", "OPTIONS"],
      maxAge: 86_400,
    }),
  );

  const handle = (maxBytes: number) => async (c: Context) => {
    const started = performance.now();
    const route = c.req.routePath;
    let status = 500;
    try {
      if (!accepting()) {
        throw new CaptureError("shutting_down", "this capture process is shutting down", { retryAfterS: 1 });
      }
      let input;
      try {
        input = await buildCaptureInput(c, { maxBytes, captureIp: opts.captureIp, trustProxy: opts.trustProxy, nowMs: now() });
      } catch (err) {
        // Refused before the pipeline (body over its cap): still a dropped request.
        if (err instanceof CaptureError) metrics.eventsDropped.inc({ reason: err.code });
        throw err;
      }
      await runPipeline(steps, newCaptureContext(input), metrics);
      if (c.req.query("beacon") === "1") {
        status = 204;
        return c.body(null, 204);
      }
      status = 202;
      return c.body('{"status":1}', 202, { "content-type": "application/json" });
    } catch (err) {
      status = err instanceof HTTPException ? err.status : 500;
      throw err;
    } finally {
      metrics.requests.inc({ route, status });
      metrics.requestDuration.observe({ route }, (performance.now() - started) / 1000);
    }
  };

  for (const path of SINGLE_PATHS) app.on(["GET", "POST"], path, handle(opts.maxRequestBytes));
  for (const path of BATCH_PATHS) app.on(["GET", "POST"], path, handle(opts.maxBatchBytes));

  app.onError((err, c) => {
    if (err instanceof CaptureError) {
      if (err.status >= 500) {
        const t = Date.now();
        if ((lastLogged.get(err.code) ?? 0) + LOG_EVERY_MS <= t) {
          lastLogged.set(err.code, t);
          logger.warn({ code: err.code, detail: err.detail, cause: describe(err.cause) }, "capture unavailable");
        }
      }
      return err.getResponse();
    }
    if (err instanceof HTTPException) return err.getResponse();
    logger.error({ err, path: c.req.path }, "unexpected error in capture");
    return c.json({ type: "server_error", code: "internal_error", detail: "internal error" }, 500);
  });

  return app;
}

function describe(cause: unknown): string | undefined {
  return cause === undefined ? undefined : cause instanceof Error ? cause.message : String(cause);
}
