/**
 * The capture HTTP surface: PostHog's paths and ours, CORS for browsers, and the one error handler. Each
 * request is built into a CaptureInput, run through the pipeline, and answered only once Kafka acknowledged
 * every event: 200 {"status":1} on PostHog's paths (204 for `?beacon=1`), as PostHog answers - posthog-js and
 * posthog-python re-send anything else - and 202 {"status":1} on our native /v1/capture and /v1/batch.
 */
import { Hono, type Context } from "hono";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import type { Logger } from "../../lib/log/logger.ts";
import { newCaptureContext } from "./capture-context.ts";
import { CaptureError } from "./capture-error.ts";
import { buildCaptureInput, clientAddress } from "./capture-request.ts";
import { captureSteps, runPipeline, type CaptureDeps } from "./pipeline.ts";
import { registerFlagsRoutes } from "./routes/flags.ts";
import { registerRemoteConfigRoutes } from "./routes/remote-config.ts";
import { registerSdkAssetRoutes } from "./routes/sdk-assets.ts";
import { registerV1EventsRoute } from "./routes/v1-events.ts";

/** PostHog's paths. One event per request by convention (a batch is still accepted, under the smaller cap). */
export const SINGLE_PATHS = ["/capture", "/capture/", "/e", "/e/", "/i/v0/e", "/i/v0/e/", "/track", "/track/", "/engage", "/engage/"];
export const BATCH_PATHS = ["/batch", "/batch/"];
/** Ours: the same pipeline, answered 202 (what the runbook's stress test counts). */
export const NATIVE_SINGLE_PATH = "/v1/capture";
export const NATIVE_BATCH_PATH = "/v1/batch";

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

  const handle = (maxBytes: number, ok: 200 | 202) => async (c: Context) => {
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
      if (ok === 200 && c.req.query("beacon") === "1") {
        status = 204;
        return c.body(null, 204);
      }
      status = ok;
      return c.body('{"status":1}', ok, { "content-type": "application/json" });
    } catch (err) {
      status = err instanceof HTTPException ? err.status : 500;
      throw err;
    } finally {
      metrics.requests.inc({ route, status });
      metrics.requestDuration.observe({ route }, (performance.now() - started) / 1000);
    }
  };

  for (const path of SINGLE_PATHS) app.on(["GET", "POST"], path, handle(opts.maxRequestBytes, 200));
  for (const path of BATCH_PATHS) app.on(["GET", "POST"], path, handle(opts.maxBatchBytes, 200));
  app.post(NATIVE_SINGLE_PATH, handle(opts.maxRequestBytes, 202));
  app.post(NATIVE_BATCH_PATH, handle(opts.maxBatchBytes, 202));
  // What posthog-js asks for before it sends events: remote config and flags (none; autocapture on).
  const startup = { projects: opts.projects, retryAfterS: opts.retryAfterS, metrics };
  registerRemoteConfigRoutes(app, startup);
  registerFlagsRoutes(app, { ...startup, maxBytes: opts.maxRequestBytes });
  registerSdkAssetRoutes(app);
  // PostHog's newer protocol (posthog-python capture_mode="v1"): per-event results in a 200.
  registerV1EventsRoute(app, { ...opts, maxBytes: opts.maxBatchBytes, now, accepting, clientIp: (c) => clientAddress(c, opts.trustProxy) });

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
