/**
 * The pipeline every query endpoint runs, in order: parse JSON -> validate (valibot) -> check the project ->
 * resolve the date range -> cache lookup -> admission (wait for query slots, or 503 `overloaded`) -> ClickHouse
 * -> cache store. Endpoints supply the schema, the computation and its cost (kind and number of concurrent
 * queries); each step rejects with a typed QueryApiError. Cache hits never queue.
 */
import type { Context, Hono } from "hono";
import type * as v from "valibot";
import { AdmissionCancelled, AdmissionRejected, type Admission } from "./admission.ts";
import type { AuthVariables } from "./auth.ts";
import { cacheKey, type ResultCache } from "./cache.ts";
import { QueryApiError } from "./errors.ts";
import { limitConcurrency, type Executor } from "./execute.ts";
import type { QueryContext } from "./query-context.ts";
import type { TrendRollup } from "./trend-rollup.ts";
import { BucketLimitError, DateRangeError, endsBeforeToday, resolveDateRange, type DateRange } from "./time-range.ts";
import { parseRequest } from "./validation.ts";

export interface QueryRouteDeps {
  execute: Executor;
  cache: ResultCache;
  now: () => number;
  table: string;
  /** null: no admission control (every request runs at once). */
  admission: Admission | null;
  /** The trend rollup; absent: trends always scan events. */
  rollup?: TrendRollup | undefined;
}

/** What a request will cost: its kind (admission keeps an average hold time per kind) and concurrent queries. */
export interface QueryCost {
  kind: string;
  queries: number;
}

type Env = { Variables: AuthVariables };

interface CommonRequest {
  project_id?: number | undefined;
  date_from?: string | undefined;
  date_to?: string | undefined;
  timezone: string;
}

export function registerQueryRoute<S extends v.GenericSchema<unknown, CommonRequest>>(
  app: Hono<Env>,
  path: string,
  endpoint: string,
  schema: S,
  deps: QueryRouteDeps,
  run: (ctx: QueryContext, req: v.InferOutput<S>, range: DateRange) => Promise<unknown>,
  cost: (ctx: QueryContext, req: v.InferOutput<S>, range: DateRange) => QueryCost = () => ({ kind: endpoint, queries: 1 }),
): void {
  app.post(path, async (c: Context<Env>) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new QueryApiError("invalid_json", "the request body must be a JSON object");
    }
    const req = parseRequest(schema, body);
    const projectId = c.get("projectId");
    if (req.project_id !== undefined && req.project_id !== projectId) {
      throw new QueryApiError("forbidden_project", "this key belongs to another project", "project_id");
    }
    const now = deps.now();
    let range: DateRange;
    try {
      range = resolveDateRange(req, req.timezone, now);
    } catch (err) {
      if (err instanceof DateRangeError) throw new QueryApiError("invalid_request", `${err.field}: ${err.message}`, err.field);
      throw err;
    }
    const bypass = /no-cache|no-store/i.test(c.req.header("cache-control") ?? "");
    // The key holds the validated request with defaults applied, without project_id (the project is in the key).
    const { project_id: _ignored, ...normalized } = req;
    const key = cacheKey(endpoint, projectId, normalized);
    const ctx: QueryContext = { projectId, execute: deps.execute, table: deps.table, rollup: deps.rollup };
    const { value, status } = await deps.cache.getOrCompute(
      endpoint,
      key,
      async () => {
        try {
          const value = await admitted(deps.admission, ctx, cost(ctx, req, range), c.req.raw.signal, (admittedCtx) => run(admittedCtx, req, range));
          return { value, pastOnly: endsBeforeToday(range, req.timezone, now) };
        } catch (err) {
          if (err instanceof BucketLimitError) throw new QueryApiError("range_too_large", err.message, "interval");
          throw err;
        }
      },
      bypass,
    );
    c.header("X-Cache", status);
    return c.json(value as object);
  });
}

/**
 * Runs `fn` once admitted, its queries limited to the slots granted; a refusal becomes 503 `overloaded` with the
 * admission's Retry-After.
 */
export async function admitted<T>(admission: Admission | null, ctx: QueryContext, cost: QueryCost, signal: AbortSignal, fn: (ctx: QueryContext) => Promise<T>): Promise<T> {
  if (!admission) return fn(ctx);
  try {
    return await admission.run(ctx.projectId, cost.kind, cost.queries, (permit) => fn({ ...ctx, execute: limitConcurrency(ctx.execute, permit.slots) }), signal);
  } catch (err) {
    if (err instanceof AdmissionRejected) {
      throw new QueryApiError("overloaded", "too many queries are running or waiting; retry after the time in Retry-After", undefined, {
        retryAfterS: err.retryAfterS,
        reason: err.reason,
      });
    }
    if (err instanceof AdmissionCancelled) {
      throw new QueryApiError("overloaded", "the request was cancelled while it waited", undefined, { reason: "cancelled" });
    }
    throw err;
  }
}
