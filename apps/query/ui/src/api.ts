/** Calls to the query API of the origin that served the page, with the signed-in key as a Bearer token. */
import { storedKey } from "./session.ts";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly path?: string,
  ) {
    super(detail);
  }
  /** The key was refused: the page must ask for it again. */
  get unauthorized(): boolean {
    return this.status === 401;
  }
}

/** Called when any request answers 401, so the page can return to sign-in with a message. */
let onUnauthorized: (err: ApiError) => void = () => {};
export function setUnauthorizedHandler(fn: (err: ApiError) => void): void {
  onUnauthorized = fn;
}

export async function api<T>(path: string, body?: unknown, key = storedKey(), signal?: AbortSignal): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(signal ? { signal } : {}),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "cannot reach the query API; is it running?");
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // fall through: a non-JSON answer (a proxy's error page) is reported by status below
  }
  if (!res.ok) {
    const e = (json ?? {}) as { code?: string; detail?: string; path?: string };
    const err = new ApiError(res.status, e.code ?? "http_error", e.detail ?? `the query API answered ${res.status}`, e.path);
    // Only for the signed-in key: a candidate key being tried at sign-in is reported by the sign-in form.
    if (err.unauthorized && key !== null && key === storedKey()) onUnauthorized(err);
    throw err;
  }
  return json as T;
}

/** A failed query in words: the client's mistake (4xx, naming the field) apart from a server that cannot answer now. */
export function queryError(err: ApiError): string {
  if (err.status === 0 || err.status >= 500) return `The query could not run right now: ${err.detail}`;
  return `The query was refused: ${err.detail}`;
}

export interface EventRecord {
  uuid: string;
  event: string;
  distinct_id: string;
  timestamp: string;
  properties: Record<string, unknown> | null;
  properties_bytes: number;
}

export interface EventName {
  event: string;
  count: number;
  last_seen: string;
}

export interface TrendSeries {
  series: number;
  event: string | null;
  math: string;
  breakdown_value: string[] | null;
  data: number[];
  total: number;
}

export interface TrendsResult {
  labels: string[];
  series: TrendSeries[];
  interval: string;
  date_from: string;
  date_to: string;
}

export interface FunnelStep {
  step: number;
  event: string;
  count: number;
  conversion_from_first: number;
  conversion_from_previous: number;
  drop_off: number;
  avg_seconds_from_previous: number | null;
  median_seconds_from_previous: number | null;
}

export interface FunnelsResult {
  results: { breakdown_value: string | null; steps: FunnelStep[] }[];
  notes: string[];
  window_seconds: number;
}
