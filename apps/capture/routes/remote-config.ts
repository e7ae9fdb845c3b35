/**
 * posthog-js' start-up configuration, as PostHog serves it (posthog/api/remote_config.py and
 * RemoteConfig.build_config):
 *
 *   GET /array/<token>/config      the project's config as JSON
 *   GET /array/<token>/config.js   the same, as a script that sets window._POSTHOG_REMOTE_CONFIG[<token>]
 *
 * A token of other characters than [A-Za-z0-9_-] or longer than 200: 400 "Invalid token"; a token no project
 * has: 404 - PostHog's answers. The body is built once per cached project object (a WeakMap: when the token
 * cache refreshes a project, its config is rebuilt with it).
 */
import type { Hono } from "hono";
import { type ProjectSettings, projectSettings } from "../../../lib/projects/project-settings.ts";
import type { Project } from "../../../lib/projects/project.ts";
import type { ProjectResolver } from "../../../lib/projects/project-resolver.ts";
import type { CaptureMetrics } from "../capture-metrics.ts";
import { lookupProject, unavailableResponse } from "./project-lookup.ts";

export interface StartupRouteDeps {
  projects: Pick<ProjectResolver, "resolve">;
  retryAfterS: number;
  metrics: CaptureMetrics;
}

export const SUPPORTED_COMPRESSION = ["gzip", "gzip-js"];

function capturePerformance(s: ProjectSettings): false | Record<string, unknown> {
  return s.webVitals || s.networkTiming ? { network_timing: s.networkTiming, web_vitals: s.webVitals, web_vitals_allowed_metrics: null } : false;
}

/** The remote config document (`/array/<token>/config`), key for key as PostHog builds it. */
export function buildRemoteConfig(project: Project): Record<string, unknown> {
  const s = projectSettings(project.settings);
  const config: Record<string, unknown> = {
    token: project.token,
    supportedCompression: SUPPORTED_COMPRESSION,
    hasFeatureFlags: false,
    captureDeadClicks: s.deadClicks,
    capturePerformance: capturePerformance(s),
    autocapture_opt_out: !s.autocapture,
    autocaptureExceptions: s.exceptionAutocapture,
  };
  if (s.analyticsEndpoint) config.analytics = { endpoint: s.analyticsEndpoint };
  if (s.elementsChainAsString) config.elementsChainAsString = true;
  config.errorTracking = { autocaptureExceptions: s.exceptionAutocapture, suppressionRules: [] };
  config.logs = { captureConsoleLogs: false };
  config.sessionRecording = false;
  config.heatmaps = s.heatmaps;
  config.conversations = false;
  config.surveys = false;
  config.productTours = false;
  config.defaultIdentifiedOnly = true;
  config.siteApps = [];
  return config;
}

/**
 * The config fields `/flags?config=true` and `/decide` add to their answer (rust/feature-flags ConfigResponse,
 * built from the same remote config).
 */
export function flagsConfigFields(project: Project): Record<string, unknown> {
  const s = projectSettings(project.settings);
  const fields: Record<string, unknown> = {
    supportedCompression: SUPPORTED_COMPRESSION,
    autocapture_opt_out: !s.autocapture,
    capturePerformance: capturePerformance(s),
    config: { enable_collect_everything: true },
  };
  if (s.analyticsEndpoint) fields.analytics = { endpoint: s.analyticsEndpoint };
  if (s.elementsChainAsString) fields.elementsChainAsString = true;
  fields.autocaptureExceptions = s.exceptionAutocapture ? { endpoint: "/e/" } : false;
  fields.sessionRecording = false;
  fields.surveys = false;
  fields.logs = { captureConsoleLogs: false };
  fields.toolbarParams = {};
  fields.isAuthenticated = false;
  fields.siteApps = [];
  fields.heatmaps = s.heatmaps;
  fields.defaultIdentifiedOnly = true;
  fields.captureDeadClicks = s.deadClicks;
  fields.errorTracking = { autocaptureExceptions: s.exceptionAutocapture, suppressionRules: [] };
  fields.conversations = false;
  return fields;
}

interface Rendered {
  json: string;
  js: string;
}
const rendered = new WeakMap<Project, Rendered>();

function render(project: Project): Rendered {
  let r = rendered.get(project);
  if (!r) {
    const json = JSON.stringify(buildRemoteConfig(project));
    // The token is [A-Za-z0-9_-] (checked before lookup), so it is safe inside the quoted key.
    const js = `(function() {\n  window._POSTHOG_REMOTE_CONFIG = window._POSTHOG_REMOTE_CONFIG || {};\n  window._POSTHOG_REMOTE_CONFIG['${project.token}'] = {\n    config: ${json},\n    siteApps: []\n  }\n})();`;
    r = { json, js };
    rendered.set(project, r);
  }
  return r;
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{1,200}$/;
const VARY = "Origin, Referer";

export function registerRemoteConfigRoutes(app: Hono, deps: StartupRouteDeps): void {
  const serve = (kind: "json" | "js", route: string) => async (token: string): Promise<Response> => {
    const res = await answer(kind, token);
    deps.metrics.requests.inc({ route, status: res.status });
    return res;
  };
  const answer = async (kind: "json" | "js", token: string): Promise<Response> => {
    if (!TOKEN_SHAPE.test(token)) {
      return Response.json({ type: "validation_error", code: "invalid_input", detail: "Invalid token", attr: null }, { status: 400, headers: { vary: VARY } });
    }
    const found = await lookupProject(deps.projects, token);
    if (found.kind === "unavailable") return unavailableResponse(deps.retryAfterS);
    if (found.kind === "unknown") {
      return Response.json({ type: "invalid_request", code: "not_found", detail: "Not found.", attr: null }, { status: 404, headers: { vary: VARY } });
    }
    const r = render(found.project);
    return kind === "json"
      ? new Response(r.json, { headers: { "content-type": "application/json", vary: VARY } })
      : new Response(r.js, { headers: { "content-type": "application/javascript", vary: VARY } });
  };
  const json = serve("json", "/array/:token/config");
  const js = serve("js", "/array/:token/config.js");
  // One pattern for both: Hono's router would read "config.js" as a parameter with an extension otherwise.
  app.get("/array/:token/:file{config(?:\\.js)?}", (c) => (c.req.param("file") === "config.js" ? js : json)(c.req.param("token")));
}
