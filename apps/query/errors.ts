/**
 * The query API's one error type and the one table from error code to HTTP status. Every failure a client sees is
 * `{type, code, detail, path?}`; ClickHouse's own messages (which quote SQL) and stack traces are logged, never
 * returned. Retryable failures (503/504) are apart from the client's own mistakes (400/401/403).
 */
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export const ERRORS = {
  invalid_json: { status: 400, type: "invalid_request" },
  invalid_request: { status: 400, type: "invalid_request" },
  invalid_regex: { status: 400, type: "invalid_request" },
  range_too_large: { status: 400, type: "invalid_request" },
  query_too_complex: { status: 400, type: "invalid_request" },
  missing_key: { status: 401, type: "authentication_error" },
  invalid_key: { status: 401, type: "authentication_error" },
  forbidden_project: { status: 403, type: "authentication_error" },
  not_found: { status: 404, type: "invalid_request" },
  request_too_large: { status: 413, type: "invalid_request" },
  query_timeout: { status: 504, type: "server_error" },
  clickhouse_unavailable: { status: 503, type: "server_error" },
  overloaded: { status: 503, type: "server_error" },
  auth_unavailable: { status: 503, type: "server_error" },
  internal: { status: 500, type: "server_error" },
} as const satisfies Record<string, { status: ContentfulStatusCode; type: string }>;

export type ErrorCode = keyof typeof ERRORS;

export interface ErrorBody {
  type: string;
  code: ErrorCode;
  detail: string;
  path?: string;
  /** For `overloaded`: why the request was shed (queue_full, expected_wait, wait_timeout). */
  reason?: string;
}

export class QueryApiError extends HTTPException {
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly path?: string,
    options?: { cause?: unknown; retryAfterS?: number; reason?: string },
  ) {
    super(ERRORS[code].status, { message: detail, ...(options?.cause !== undefined ? { cause: options.cause } : {}) });
    this.name = "QueryApiError";
    this.retryAfterS = options?.retryAfterS ?? 5;
    this.reason = options?.reason;
  }

  /** Seconds for the `Retry-After` header of a retryable error. */
  readonly retryAfterS: number;
  readonly reason: string | undefined;

  get body(): ErrorBody {
    return {
      type: ERRORS[this.code].type,
      code: this.code,
      detail: this.detail,
      ...(this.path !== undefined ? { path: this.path } : {}),
      ...(this.reason !== undefined ? { reason: this.reason } : {}),
    };
  }

  get retryable(): boolean {
    return this.status === 503 || this.status === 504;
  }
}
