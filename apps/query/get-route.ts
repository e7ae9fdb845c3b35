/**
 * The pipeline of the read-only GET endpoints (events, event names, property keys): query string -> validate
 * (valibot, unknown parameters rejected like unknown body fields) -> the authenticated project -> admission
 * (the same query slots as trends and funnels) -> compute. No
 * date-range resolution and, unless the endpoint asks for it, no result cache: these feed the insights page.
 */
import type { Context, Hono } from "hono";
import * as v from "valibot";
import type { AuthVariables } from "./auth.ts";
import { cacheKey } from "./cache.ts";
import type { QueryContext } from "./query-context.ts";
import { admitted, type QueryRouteDeps } from "./query-route.ts";
import { parseRequest } from "./validation.ts";

type Env = { Variables: AuthVariables };

/** A query-string integer within [min, max] (query strings are text). */
export function intParam(fallback: number, min: number, max: number, description: string) {
  return v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d{1,9}$/, "must be a whole number"),
      // Before the transform: the OpenAPI conversion stops there.
      v.description(description),
      v.transform(Number),
      v.minValue(min, `must be at least ${min}`),
      v.maxValue(max, `must be at most ${max}`),
    ),
    String(fallback),
  );
}

export interface GetRouteOptions {
  /** Cache the answer under the endpoint name (the app's result-cache TTL); `Cache-Control: no-cache` bypasses. */
  cached?: boolean;
}

export function registerGetRoute<S extends v.GenericSchema<Record<string, string | undefined>, unknown>>(
  app: Hono<Env>,
  path: string,
  endpoint: string,
  schema: S,
  deps: QueryRouteDeps,
  run: (ctx: QueryContext, req: v.InferOutput<S>, now: number) => Promise<unknown>,
  opts: GetRouteOptions = {},
): void {
  app.get(path, async (c: Context<Env>) => {
    const req = parseRequest(schema, c.req.query());
    const projectId = c.get("projectId");
    const ctx: QueryContext = { projectId, execute: deps.execute, table: deps.table };
    const now = deps.now();
    // These queries share the ClickHouse slots with trends and funnels (one slot each).
    const compute = () => admitted(deps.admission, ctx, { kind: endpoint, queries: 1 }, c.req.raw.signal, (admittedCtx) => run(admittedCtx, req, now));
    if (!opts.cached) {
      c.header("Cache-Control", "no-store");
      return c.json((await compute()) as object);
    }
    const bypass = /no-cache|no-store/i.test(c.req.header("cache-control") ?? "");
    const { value, status } = await deps.cache.getOrCompute(
      endpoint,
      cacheKey(endpoint, projectId, req),
      async () => ({ value: await compute(), pastOnly: false }),
      bypass,
    );
    c.header("X-Cache", status);
    return c.json(value as object);
  });
}
