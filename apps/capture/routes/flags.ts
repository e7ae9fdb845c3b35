/**
 * Feature flags for SDKs, as PostHog's rust/feature-flags service answers a project that has none:
 *
 *   /flags, /flags/      POST evaluates for the body's `token` (or `api_key`) and `distinct_id`; GET answers
 *                        the minimal document without looking at anything (PostHog does the same).
 *   /decide, /decide/    the older endpoint: always with the config fields, shaped by `v` (1, 2, 3, >= 4).
 *
 * Versions: /flags `v>=2` -> `{flags: {...}}` (v2), otherwise the legacy `{featureFlags, featureFlagPayloads}`;
 * neither `v` nor `config` given -> v2 with config. /decide `v` 1 or absent -> `featureFlags: []`, 2 ->
 * `featureFlags: {}`, 3 -> legacy, >= 4 -> v2. With no flags every shape is empty, so posthog-js starts with
 * nothing enabled and no console error. Errors keep PostHog's statuses (missing or unknown token 401, no
 * distinct_id 400) with our JSON error body.
 */
import type { Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { readBodyCapped } from "../capture-request.ts";
import { decodePayload } from "../payload-decoder.ts";
import { lookupProject, unavailableResponse } from "./project-lookup.ts";
import { flagsConfigFields, type StartupRouteDeps, SUPPORTED_COMPRESSION } from "./remote-config.ts";

export interface FlagsRouteDeps extends StartupRouteDeps {
  /** Body cap, bytes after decompression. */
  maxBytes: number;
}

type Shape = "v2" | "legacy" | "decide_v1" | "decide_v2";

function shapeFor(isDecide: boolean, version: number | undefined): Shape {
  if (isDecide) {
    if (version === 2) return "decide_v2";
    if (version === 3) return "legacy";
    if (version !== undefined && version >= 4) return "v2";
    return "decide_v1";
  }
  return version !== undefined && version >= 2 ? "v2" : "legacy";
}

/** An empty flag set in the given shape, plus config fields when asked for. */
function flagsBody(shape: Shape, config: Record<string, unknown> | null): Record<string, unknown> {
  const requestId = crypto.randomUUID();
  let body: Record<string, unknown>;
  switch (shape) {
    case "v2":
      body = { errorsWhileComputingFlags: false, flags: {}, requestId };
      break;
    case "legacy":
      body = { errorsWhileComputingFlags: false, featureFlags: {}, featureFlagPayloads: {}, requestId };
      break;
    case "decide_v1":
      body = { featureFlags: [], requestId };
      break;
    case "decide_v2":
      body = { featureFlags: {}, requestId };
      break;
  }
  return config ? { ...body, ...config } : body;
}

function parseVersion(v: string | undefined): number | undefined {
  if (v === undefined || v === "") return undefined;
  const n = Number.parseInt(v, 10);
  return Number.isNaN(n) ? 1 : n;
}

function parseBool(v: string | undefined): boolean | undefined {
  if (v === undefined || v === "") return undefined;
  return v === "true" || v === "1";
}

function error(status: 400 | 401, code: string, detail: string, attr: string | null = null): Response {
  return Response.json({ type: status === 401 ? "authentication_error" : "validation_error", code, detail, attr }, { status });
}

const isObject = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === "object" && !Array.isArray(x);

export function registerFlagsRoutes(app: Hono, deps: FlagsRouteDeps): void {
  const handle = (isDecide: boolean) => async (c: Context): Promise<Response> => {
    const route = c.req.routePath;
    let status = 500;
    try {
      const res = await answer(c, isDecide);
      status = res.status;
      return res;
    } catch (err) {
      // A body that does not decode: the app's error handler renders the CaptureError (400/413).
      status = err instanceof HTTPException ? err.status : 500;
      throw err;
    } finally {
      deps.metrics.requests.inc({ route, status });
    }
  };

  const answer = async (c: Context, isDecide: boolean): Promise<Response> => {
    let version = parseVersion(c.req.query("v"));
    let config = parseBool(c.req.query("config"));
    if (c.req.method === "GET") {
      // PostHog answers GET without a token: the minimal document, for health checks and old clients.
      const minimal = { supportedCompression: SUPPORTED_COMPRESSION };
      return Response.json(flagsBody(version !== undefined && version >= 2 ? "v2" : "legacy", minimal));
    }
    if (isDecide) config ??= true;
    else if (version === undefined && config === undefined) {
      version = 2;
      config = true;
    }
    const req = c.req.raw;
    const raw = await readBodyCapped(req, deps.maxBytes);
    const body = decodePayload(
      raw,
      {
        contentType: req.headers.get("content-type")?.toLowerCase() ?? "",
        contentEncoding: req.headers.get("content-encoding")?.toLowerCase() ?? "",
        compression: c.req.query("compression")?.toLowerCase(),
        queryData: undefined,
      },
      deps.maxBytes,
    );
    if (!isObject(body)) return error(400, "invalid_payload", "the body must be a JSON object");
    const token = body.token ?? body.api_key ?? body.$token;
    if (typeof token !== "string" || token === "") {
      return error(401, "missing_token", "No API token provided. Please include a valid API token in your request.", "token");
    }
    const found = await lookupProject(deps.projects, token);
    if (found.kind === "unavailable") return unavailableResponse(deps.retryAfterS);
    if (found.kind === "unknown") {
      return error(401, "invalid_token", "The provided API key is invalid or has expired. Please check your API key and try again.", "token");
    }
    const distinctId = body.distinct_id ?? body.$distinct_id;
    if ((typeof distinctId !== "string" || distinctId === "") && typeof distinctId !== "number") {
      return error(400, "missing_distinct_id", "The distinct_id field is missing from the request. Please include a valid identifier.", "distinct_id");
    }
    return Response.json(flagsBody(shapeFor(isDecide, version), config ? flagsConfigFields(found.project) : null));
  };

  for (const path of ["/flags", "/flags/"]) app.on(["GET", "POST"], path, handle(false));
  for (const path of ["/decide", "/decide/"]) app.on(["GET", "POST"], path, handle(true));
}
