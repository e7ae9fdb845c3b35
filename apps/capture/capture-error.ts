/**
 * The one error type of apps/capture. Every rejection has a code; the code alone decides the status (one table,
 * below), the response body, and the `reason` label of `capture_events_dropped_total`. Permanent errors (4xx)
 * tell the client not to retry the same request; retryable ones (429, 503) carry `Retry-After`.
 */
import { HTTPException } from "hono/http-exception";
import type { EventValidationCode } from "../../lib/events/incoming-event.ts";

const STATUS = {
  // The body cannot be read as events.
  invalid_payload: 400,
  invalid_compression: 400,
  invalid_json: 400,
  empty_batch: 400,
  // Limits.
  request_too_large: 413,
  event_too_large: 413,
  too_many_events: 413,
  // Credentials.
  missing_token: 401,
  invalid_token: 401,
  mixed_tokens: 401,
  // Retry later.
  rate_limited: 429,
  produce_timeout: 503,
  kafka_unavailable: 503,
  project_lookup_unavailable: 503,
  shutting_down: 503,
} as const;

export type CaptureErrorCode = keyof typeof STATUS | EventValidationCode;
export type CaptureErrorStatus = (typeof STATUS)[keyof typeof STATUS];

/** Event-field validation codes are all "400 validation_error": one entry per code would only repeat it. */
export function statusOf(code: CaptureErrorCode): 400 | 401 | 413 | 429 | 503 {
  return (STATUS as Record<string, CaptureErrorStatus>)[code] ?? 400;
}

function typeOf(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 429) return "rate_limited";
  if (status === 503) return "unavailable";
  return "validation_error";
}

export interface CaptureErrorOptions {
  /** Position of the offending event in the request's batch. */
  index?: number;
  /** The offending field of that event, as a dotted path (`distinct_id`, `properties`). */
  field?: string;
  /** Seconds, for 429/503. */
  retryAfterS?: number;
  cause?: unknown;
}

export class CaptureError extends HTTPException {
  readonly code: CaptureErrorCode;
  readonly detail: string;
  readonly index: number | undefined;
  readonly field: string | undefined;
  readonly retryAfterS: number | undefined;

  constructor(code: CaptureErrorCode, detail: string, opts: CaptureErrorOptions = {}) {
    super(statusOf(code), { message: `${code}: ${detail}`, cause: opts.cause });
    this.code = code;
    this.detail = detail;
    this.index = opts.index;
    this.field = opts.field;
    this.retryAfterS = opts.retryAfterS;
  }

  get retryable(): boolean {
    return this.status === 429 || this.status === 503;
  }

  override getResponse(): Response {
    const body: Record<string, unknown> = { type: typeOf(this.status), code: this.code, detail: this.detail };
    if (this.field) body.field = this.field;
    if (this.index !== undefined) body.index = this.index;
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.retryAfterS !== undefined) headers["retry-after"] = String(Math.max(1, Math.ceil(this.retryAfterS)));
    return new Response(JSON.stringify(body), { status: this.status, headers });
  }
}
