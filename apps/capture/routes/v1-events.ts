/**
 * `POST /i/v1/analytics/events`: PostHog's newer capture protocol, as posthog-python's `capture_mode="v1"`
 * speaks it (rust/capture/src/v1 in PostHog):
 *
 *   request   Authorization: Bearer <project token>; Content-Type: application/json; PostHog-Sdk-Info
 *             (`<lib>/<version>`), PostHog-Attempt (1, 2, ...), PostHog-Request-Id (uuid, stable across
 *             attempts), PostHog-Request-Timestamp (RFC 3339, the clock-skew reference); Content-Encoding
 *             none | gzip | deflate (zlib) | zstd. Body `{created_at, historical_migration?, batch: [{event,
 *             uuid, distinct_id, timestamp, session_id?, window_id?, options: {...}, properties?}]}`.
 *   response  200 `{"results": {<uuid>: {"result": "ok" | "drop" | "retry", "details"?}}}` once every event
 *             marked ok was acknowledged by Kafka; `Retry-After` when any says retry. The SDK re-sends only
 *             the `retry` events (same uuids), so a partial failure costs no duplicates.
 *   errors    the whole request: `{error, error_description}` with 400 (malformed request or batch), 401
 *             (no or unknown token), 413, 415, 429 (rate limit, Retry-After), 503 (cannot say now).
 *
 * An event that fails validation is dropped with its code as `details` and the rest are stored; Kafka not
 * acknowledging in time marks every event of the request `retry` (`not_persisted`). Events run through the
 * same rate-limit, normalize and publish steps as every other path.
 */
import type { Context, Hono } from "hono";
import { inflateSync, zstdDecompressSync } from "node:zlib";
import { validateIncomingEvent, type IncomingEvent } from "../../../lib/events/incoming-event.ts";
import type { Logger } from "../../../lib/log/logger.ts";
import type { Project } from "../../../lib/projects/project.ts";
import { newCaptureContext, type CaptureContext, type CaptureInput } from "../capture-context.ts";
import { CaptureError } from "../capture-error.ts";
import { readBodyCapped } from "../capture-request.ts";
import { decodePayload, gunzipCapped } from "../payload-decoder.ts";
import type { CaptureDeps, Step } from "../pipeline.ts";
import { normalizeStep } from "../steps/normalize.ts";
import { publishStep } from "../steps/publish.ts";
import { rateLimitStep } from "../steps/rate-limit.ts";
import { lookupProject } from "./project-lookup.ts";

export const V1_EVENTS_PATH = "/i/v1/analytics/events";

export interface V1EventsDeps extends CaptureDeps {
  /** Body cap after decompression (the batch cap). */
  maxBytes: number;
  now: () => number;
  accepting: () => boolean;
  clientIp: (c: Context) => string;
  logger: Logger;
}

type Outcome = { result: "ok" } | { result: "drop" | "retry"; details: string };

/** A whole-request refusal: status and a machine-readable tag, PostHog's v1 error vocabulary. */
class V1Error extends Error {
  constructor(
    readonly status: 400 | 401 | 413 | 415 | 429 | 500 | 503,
    readonly tag: string,
    readonly description: string,
    readonly retryAfterS?: number,
  ) {
    super(`${tag}: ${description}`);
  }

  response(): Response {
    const headers: Record<string, string> = {};
    if (this.retryAfterS !== undefined) headers["retry-after"] = String(Math.max(1, Math.ceil(this.retryAfterS)));
    return Response.json({ error: this.tag, error_description: this.description }, { status: this.status, headers });
  }
}

const REQUIRED_HEADERS = ["content-type", "posthog-sdk-info", "posthog-attempt", "posthog-request-id", "posthog-request-timestamp"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// RFC 3339: a date, `T` (or space), a time and an offset; Date.parse alone accepts far more.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const isObject = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === "object" && !Array.isArray(x);
const isTime = (x: unknown): x is string => typeof x === "string" && RFC3339.test(x) && !Number.isNaN(Date.parse(x));

/** Options the v1 event carries typed; they become the properties v0 events carry (PostHog does the same). */
const OPTION_PROPERTIES: [option: string, property: string, type: "boolean" | "string"][] = [
  ["cookieless_mode", "$cookieless_mode", "boolean"],
  ["disable_skew_adjustment", "$ignore_sent_at", "boolean"],
  ["product_tour_id", "$product_tour_id", "string"],
  ["process_person_profile", "$process_person_profile", "boolean"],
];

interface Headers {
  token: string;
  sdkLib: string | undefined;
  sdkVersion: string | undefined;
  requestTimestamp: string;
}

function readHeaders(req: Request): Headers {
  const auth = req.headers.get("authorization");
  if (auth === null) throw new V1Error(401, "missing_authorization", "an Authorization: Bearer <project token> header is required");
  const missing = REQUIRED_HEADERS.filter((h) => req.headers.get(h) === null);
  if (missing.length) throw new V1Error(400, "missing_required_headers", `request is missing required headers: ${missing.join(", ")}`);
  if (!/^bearer /i.test(auth)) throw new V1Error(400, "invalid_header_value", "Authorization must use the Bearer scheme");
  const token = auth.slice(7).trim();
  if (token === "") throw new V1Error(401, "invalid_api_token", "The provided API token is not valid.");
  const mime = req.headers.get("content-type")!.split(";")[0]!.trim().toLowerCase();
  if (mime !== "application/json") throw new V1Error(415, "unsupported_content_type", `unsupported content type: ${mime}`);
  if (!UUID.test(req.headers.get("posthog-request-id")!.trim())) throw new V1Error(400, "invalid_header_value", "PostHog-Request-Id is not a valid UUID");
  const attempt = req.headers.get("posthog-attempt")!.trim();
  if (!/^[1-9]\d{0,8}$/.test(attempt)) throw new V1Error(400, "invalid_header_value", "PostHog-Attempt must be a positive integer");
  const requestTimestamp = req.headers.get("posthog-request-timestamp")!.trim();
  if (!isTime(requestTimestamp)) throw new V1Error(400, "invalid_header_value", "PostHog-Request-Timestamp is not valid RFC 3339");
  const sdkInfo = req.headers.get("posthog-sdk-info")!.trim();
  const slash = sdkInfo.lastIndexOf("/");
  const lib = slash > 0 ? sdkInfo.slice(0, slash).trim() : "";
  const version = slash > 0 ? sdkInfo.slice(slash + 1).trim() : "";
  return { token, sdkLib: lib && version ? lib : undefined, sdkVersion: lib && version ? version : undefined, requestTimestamp };
}

function decompress(body: Uint8Array, encoding: string, maxBytes: number): Uint8Array {
  switch (encoding) {
    case "":
    case "identity":
      return body;
    case "gzip":
      return gunzipCapped(body, maxBytes);
    case "deflate":
      try {
        return inflateSync(body, { maxOutputLength: maxBytes });
      } catch (err) {
        if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw new V1Error(413, "payload_too_large", `decompressed body exceeds ${maxBytes} bytes`);
        throw new V1Error(400, "request_decoding_error", "body is not valid zlib (deflate)");
      }
    case "zstd":
      // node:zlib stops at maxOutputLength while it inflates (Bun.zstdDecompressSync has no cap): a 60 KB zstd
      // bomb must not become gigabytes before the size check.
      try {
        return zstdDecompressSync(body, { maxOutputLength: maxBytes });
      } catch (err) {
        if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw new V1Error(413, "payload_too_large", `decompressed body exceeds ${maxBytes} bytes`);
        throw new V1Error(400, "request_decoding_error", "body is not valid zstd");
      }
    default:
      throw new V1Error(415, "unsupported_encoding", `unsupported content encoding: ${encoding}`);
  }
}

/** The request's CaptureErrors (body cap, JSON) in v1's vocabulary. */
function fromCaptureError(err: CaptureError): V1Error {
  if (err.status === 413) return new V1Error(413, "payload_too_large", err.detail);
  if (err.code === "invalid_compression") return new V1Error(400, "request_decoding_error", err.detail);
  return new V1Error(400, "request_parsing_error", err.detail);
}

interface Batch {
  events: Record<string, unknown>[];
  uuids: string[];
}

function readBatch(doc: unknown, maxEvents: number): Batch {
  if (!isObject(doc)) throw new V1Error(400, "request_parsing_error", "the body must be a JSON object");
  if (!Array.isArray(doc.batch)) throw new V1Error(400, "request_parsing_error", "`batch` must be an array of events");
  if (doc.batch.length === 0) throw new V1Error(400, "empty_batch", "request batch is empty");
  if (doc.batch.length > maxEvents) throw new V1Error(413, "payload_too_large", `${doc.batch.length} events in one request; the limit is ${maxEvents}`);
  if (!isTime(doc.created_at)) throw new V1Error(400, "invalid_batch", "created_at is not valid RFC 3339");
  const seen = new Set<string>();
  const uuids: string[] = [];
  for (const e of doc.batch) {
    if (!isObject(e)) throw new V1Error(400, "request_parsing_error", "every batch entry must be an event object");
    const uuid = typeof e.uuid === "string" ? e.uuid.trim().toLowerCase() : "";
    if (!UUID.test(uuid)) throw new V1Error(400, "missing_event_uuid", "every event needs a valid `uuid`");
    if (seen.has(uuid)) throw new V1Error(400, "duplicate_event_uuid", `duplicate event uuid: ${uuid}`);
    seen.add(uuid);
    uuids.push(uuid);
  }
  return { events: doc.batch as Record<string, unknown>[], uuids };
}

/** One v1 event -> the v0 shape our validation and normalisation take, or the reason it is dropped. */
function toIncoming(e: Record<string, unknown>, uuid: string, h: Headers): { ok: true; event: IncomingEvent; skew: boolean } | { ok: false; details: string } {
  if (e.event === "$performance_event") return { ok: false, details: "dropped_performance_event" };
  if (typeof e.distinct_id !== "string" || e.distinct_id === "") return { ok: false, details: "missing_distinct_id" };
  if (!isTime(e.timestamp)) return { ok: false, details: "invalid_event_timestamp" };
  if (e.properties !== undefined && e.properties !== null && !isObject(e.properties)) return { ok: false, details: "malformed_event_properties" };
  const options = isObject(e.options) ? e.options : {};
  const properties: Record<string, unknown> = { ...((e.properties as Record<string, unknown> | null | undefined) ?? {}) };
  if (typeof e.session_id === "string") properties.$session_id = e.session_id;
  if (typeof e.window_id === "string") properties.$window_id = e.window_id;
  for (const [option, property, type] of OPTION_PROPERTIES) {
    if (typeof options[option] === type) properties[property] = options[option];
  }
  if (h.sdkLib !== undefined) {
    properties.$lib = h.sdkLib;
    properties.$lib_version = h.sdkVersion;
  }
  const checked = validateIncomingEvent({ event: e.event, distinct_id: e.distinct_id, uuid, timestamp: e.timestamp, properties });
  if (!checked.ok) return { ok: false, details: checked.code };
  return { ok: true, event: checked.event, skew: options.disable_skew_adjustment !== true };
}

export function registerV1EventsRoute(app: Hono, deps: V1EventsDeps): void {
  const rateLimit = deps.rateLimit ? rateLimitStep(deps.rateLimit) : null;
  const normalize = normalizeStep(deps);
  const publish = publishStep(deps);
  const { metrics } = deps;

  const timed = async (step: Step, ctx: CaptureContext): Promise<void> => {
    const started = performance.now();
    try {
      await step.run(ctx);
    } finally {
      metrics.steps.add(step.name, (performance.now() - started) / 1000);
    }
  };

  const handle = async (c: Context): Promise<Response> => {
    const nowMs = deps.now();
    if (!deps.accepting()) throw new V1Error(503, "service_unavailable", "this capture process is shutting down", 1);
    const h = readHeaders(c.req.raw);
    let doc: unknown;
    try {
      const raw = await readBodyCapped(c.req.raw, deps.maxBytes);
      if (raw.length === 0) throw new V1Error(400, "empty_body", "request body is empty");
      const body = decompress(raw, (c.req.header("content-encoding") ?? "").trim().toLowerCase(), deps.maxBytes);
      doc = decodePayload(body, { contentType: "application/json", contentEncoding: "", compression: undefined, queryData: undefined }, deps.maxBytes);
    } catch (err) {
      if (err instanceof CaptureError) throw fromCaptureError(err);
      throw err;
    }
    const batch = readBatch(doc, deps.limits.maxEventsPerRequest);

    const found = await lookupProject(deps.projects, h.token);
    if (found.kind === "unavailable") throw new V1Error(503, "service_unavailable", "cannot verify the project token right now", deps.retryAfterS);
    if (found.kind === "unknown") throw new V1Error(401, "invalid_api_token", "The provided API token is not valid.");

    const outcomes: Outcome[] = new Array(batch.events.length);
    // Events to store, split by whether the request's clock skew applies (options.disable_skew_adjustment).
    const groups = { skewed: [] as number[], asIs: [] as number[] };
    const incoming: IncomingEvent[] = new Array(batch.events.length);
    for (let i = 0; i < batch.events.length; i++) {
      const r = toIncoming(batch.events[i]!, batch.uuids[i]!, h);
      if (!r.ok) {
        outcomes[i] = { result: "drop", details: r.details };
        metrics.eventsDropped.inc({ reason: r.details });
        continue;
      }
      incoming[i] = r.event;
      (r.skew ? groups.skewed : groups.asIs).push(i);
    }

    const input: CaptureInput = {
      body: new Uint8Array(0),
      hints: { contentType: "application/json", contentEncoding: "", compression: undefined, queryData: undefined },
      maxBytes: deps.maxBytes,
      querySentAt: undefined,
      clientIp: deps.captureIp ? deps.clientIp(c) : "",
      nowMs,
    };
    const stored = [...groups.skewed, ...groups.asIs];
    if (stored.length > 0) {
      const all = newCaptureContext(input);
      all.project = found.project;
      all.isBatch = true;
      all.valid = stored.map((i) => incoming[i]!);
      if (rateLimit) {
        try {
          await timed(rateLimit, all);
        } catch (err) {
          if (err instanceof CaptureError && err.code === "rate_limited") {
            metrics.eventsDropped.inc({ reason: "rate_limited" }, stored.length);
            throw new V1Error(429, "rate_limited", "Rate limit exceeded.", err.retryAfterS);
          }
          throw err;
        }
      }
      const published: number[] = [];
      for (const [positions, sentAt] of [
        [groups.skewed, h.requestTimestamp],
        [groups.asIs, undefined],
      ] as const) {
        const messages = await normalizeGroup(positions, sentAt, found.project, all.overflow);
        all.messages.push(...messages.map((m) => m.message));
        published.push(...messages.map((m) => m.position));
      }
      let failure: Outcome | undefined;
      try {
        if (all.messages.length > 0) await timed(publish, all);
      } catch (err) {
        if (!(err instanceof CaptureError)) throw err;
        // Broker too slow or down: nothing of this request is stored; the SDK re-sends exactly these events.
        failure = err.retryable ? { result: "retry", details: "not_persisted" } : { result: "drop", details: "rejected" };
        metrics.eventsDropped.inc({ reason: err.code }, published.length);
        if (err.retryable) deps.logger.warn({ code: err.code, detail: err.detail }, "capture v1: events not persisted");
      }
      for (const i of published) outcomes[i] = failure ?? { result: "ok" };
    }

    const results: Record<string, Outcome> = {};
    let retry = false;
    for (let i = 0; i < outcomes.length; i++) {
      results[batch.uuids[i]!] = outcomes[i]!;
      retry ||= outcomes[i]!.result === "retry";
    }
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (retry) headers["retry-after"] = String(deps.retryAfterS);
    return new Response(JSON.stringify({ results }), { status: 200, headers });

    /**
     * normalize for one skew group; an event whose encoded form is over the per-event cap is dropped on its
     * own (`event_too_large`) and the group normalised again without it.
     */
    async function normalizeGroup(positions: readonly number[], sentAt: string | undefined, project: Project, overflow: boolean) {
      let left = [...positions];
      while (left.length > 0) {
        const ctx = newCaptureContext(input);
        ctx.project = project;
        ctx.isBatch = true;
        ctx.sentAt = sentAt;
        ctx.overflow = overflow;
        ctx.valid = left.map((i) => incoming[i]!);
        try {
          await timed(normalize, ctx);
          return ctx.messages.map((message, k) => ({ message, position: left[k]! }));
        } catch (err) {
          if (!(err instanceof CaptureError) || err.code !== "event_too_large" || err.index === undefined) throw err;
          const position = left[err.index]!;
          outcomes[position] = { result: "drop", details: "event_too_large" };
          metrics.eventsDropped.inc({ reason: "event_too_large" });
          left = left.filter((_, k) => k !== err.index);
        }
      }
      return [];
    }
  };

  app.post(V1_EVENTS_PATH, async (c) => {
    const started = performance.now();
    let res: Response;
    try {
      res = await handle(c);
    } catch (err) {
      if (err instanceof V1Error) res = err.response();
      else {
        deps.logger.error({ err }, "capture v1: unexpected error");
        res = new V1Error(500, "internal_error", "Internal Server Error").response();
      }
    }
    metrics.requests.inc({ route: V1_EVENTS_PATH, status: res.status });
    metrics.requestDuration.observe({ route: V1_EVENTS_PATH }, (performance.now() - started) / 1000);
    return res;
  });
}
