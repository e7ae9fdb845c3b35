/**
 * What posthog-js asks for at start-up - /array/<token>/config(.js), /flags, /decide - answered in process
 * (app.request) over in-memory projects, in PostHog's shapes and statuses.
 */
import { describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { counter, postJson, post, testApp, TOKEN } from "./support.ts";

const json = async (res: Response) => (await res.json()) as Record<string, unknown>;

describe("remote config: /array/<token>/config and config.js", () => {
  test("a known token: PostHog's document for a project with no flags, surveys or recordings; autocapture on", async () => {
    const t = testApp();
    const res = await t.app.request(`/array/${TOKEN}/config`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("vary")).toContain("Referer");
    expect(await json(res)).toEqual({
      token: TOKEN,
      supportedCompression: ["gzip", "gzip-js"],
      hasFeatureFlags: false,
      captureDeadClicks: false,
      capturePerformance: false,
      autocapture_opt_out: false,
      autocaptureExceptions: false,
      analytics: { endpoint: "/i/v0/e/" },
      elementsChainAsString: true,
      errorTracking: { autocaptureExceptions: false, suppressionRules: [] },
      logs: { captureConsoleLogs: false },
      sessionRecording: false,
      heatmaps: false,
      conversations: false,
      surveys: false,
      productTours: false,
      defaultIdentifiedOnly: true,
      siteApps: [],
    });
  });

  test("config.js is a script that sets window._POSTHOG_REMOTE_CONFIG[token] to the same document", async () => {
    const t = testApp();
    const res = await t.app.request(`/array/${TOKEN}/config.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/javascript");
    const window: { _POSTHOG_REMOTE_CONFIG?: Record<string, { config: unknown; siteApps: unknown[] }> } = {};
    new Function("window", await res.text())(window);
    const doc = await json(await t.app.request(`/array/${TOKEN}/config`));
    expect(window._POSTHOG_REMOTE_CONFIG?.[TOKEN]).toEqual({ config: doc, siteApps: [] });
  });

  test("unknown token: 404; a token PostHog would not accept: 400; nothing cached wrongly", async () => {
    const t = testApp();
    const unknown = await t.app.request("/array/phc_unknown/config");
    expect(unknown.status).toBe(404);
    expect(await json(unknown)).toMatchObject({ code: "not_found" });
    expect((await t.app.request("/array/phc_unknown/config.js")).status).toBe(404);
    const bad = await t.app.request(`/array/${encodeURIComponent("phc_<script>")}/config.js`);
    expect(bad.status).toBe(400);
    expect(await json(bad)).toMatchObject({ code: "invalid_input", detail: "Invalid token" });
    expect((await t.app.request(`/array/${"a".repeat(201)}/config`)).status).toBe(400);
  });

  test("project stores down and token not cached: 503 with Retry-After, never 404", async () => {
    const t = testApp();
    t.source.down = true;
    const res = await t.app.request(`/array/${TOKEN}/config`);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
  });

  test("per-project settings override the defaults; the project comes from the token cache (one lookup)", async () => {
    const t = testApp();
    t.source.projects.set("phc_custom", { id: 9, name: "custom", token: "phc_custom", settings: { autocapture: false, heatmaps: true, webVitals: true } });
    const first = await json(await t.app.request("/array/phc_custom/config"));
    expect(first).toMatchObject({
      autocapture_opt_out: true,
      heatmaps: true,
      capturePerformance: { network_timing: false, web_vitals: true, web_vitals_allowed_metrics: null },
    });
    await t.app.request("/array/phc_custom/config.js");
    const flags = await json(await postJson(t, "/flags/?v=2&config=true", { token: "phc_custom", distinct_id: "d" }));
    expect(flags).toMatchObject({ autocapture_opt_out: true, heatmaps: true });
    expect(t.source.lookups).toBe(1);
    expect(await counter(t.registry, "capture_requests_total", { route: "/array/:token/config", status: "200" })).toBe(1);
  });
});

describe("/flags and /decide", () => {
  const body = { token: TOKEN, distinct_id: "user-1", groups: {}, person_properties: {} };

  test("POST /flags/?v=2 (posthog-js): no flags, v2 shape, no config fields unless asked", async () => {
    const t = testApp();
    for (const path of ["/flags/?v=2", "/flags?v=2"]) {
      const res = await postJson(t, path, body);
      expect(res.status).toBe(200);
      const doc = await json(res);
      expect(doc).toEqual({ errorsWhileComputingFlags: false, flags: {}, requestId: expect.any(String) });
    }
    const withConfig = await json(await postJson(t, "/flags/?v=2&config=true", body));
    expect(withConfig).toMatchObject({ flags: {}, autocapture_opt_out: false, sessionRecording: false, surveys: false, config: { enable_collect_everything: true } });
  });

  test("neither v nor config: v2 with config; v=1: the legacy shape", async () => {
    const t = testApp();
    expect(await json(await postJson(t, "/flags", body))).toMatchObject({ flags: {}, supportedCompression: ["gzip", "gzip-js"], autocapture_opt_out: false });
    const legacy = await json(await postJson(t, "/flags/?v=1", body));
    expect(legacy).toEqual({ errorsWhileComputingFlags: false, featureFlags: {}, featureFlagPayloads: {}, requestId: expect.any(String) });
  });

  test("GET /flags answers the minimal document without a token (as PostHog does)", async () => {
    const t = testApp();
    for (const path of ["/flags", "/flags/?v=2"]) {
      const res = await t.app.request(path);
      expect(res.status).toBe(200);
      expect(await json(res)).toMatchObject({ errorsWhileComputingFlags: false, supportedCompression: ["gzip", "gzip-js"] });
    }
  });

  test("/decide: config always, shape by v (1: list, 2: map, 3: legacy, 4: v2)", async () => {
    const t = testApp();
    const v = async (q: string) => json(await postJson(t, `/decide/${q}`, body));
    expect(await v("")).toMatchObject({ featureFlags: [], autocapture_opt_out: false });
    expect(await v("?v=2")).toMatchObject({ featureFlags: {}, sessionRecording: false });
    expect(await v("?v=3")).toMatchObject({ featureFlags: {}, featureFlagPayloads: {}, errorsWhileComputingFlags: false, config: { enable_collect_everything: true } });
    expect(await v("?v=4")).toMatchObject({ flags: {}, errorsWhileComputingFlags: false, toolbarParams: {}, isAuthenticated: false });
    expect((await postJson(t, "/decide?v=3", body)).status).toBe(200);
  });

  test("compressed bodies: gzip-js and base64 (older posthog-js)", async () => {
    const t = testApp();
    const gz = await post(t, "/flags/?v=2&compression=gzip-js", gzipSync(JSON.stringify(body)), { "content-type": "text/plain" });
    expect(gz.status).toBe(200);
    const b64 = await post(t, "/decide/?v=3&compression=base64", `data=${encodeURIComponent(Buffer.from(JSON.stringify(body)).toString("base64"))}`, {
      "content-type": "application/x-www-form-urlencoded",
    });
    expect(b64.status).toBe(200);
  });

  test("PostHog's statuses: no token 401, unknown token 401, no distinct_id 400, undecodable body 400", async () => {
    const t = testApp();
    const none = await postJson(t, "/flags/?v=2", { distinct_id: "d" });
    expect(none.status).toBe(401);
    expect(await json(none)).toMatchObject({ code: "missing_token", attr: "token" });
    const unknown = await postJson(t, "/flags/?v=2", { token: "phc_unknown", distinct_id: "d" });
    expect(unknown.status).toBe(401);
    expect(await json(unknown)).toMatchObject({ type: "authentication_error", code: "invalid_token" });
    const noId = await postJson(t, "/flags/?v=2", { api_key: TOKEN });
    expect(noId.status).toBe(400);
    expect(await json(noId)).toMatchObject({ code: "missing_distinct_id", attr: "distinct_id" });
    const bad = await post(t, "/flags/?v=2", "{nope");
    expect(bad.status).toBe(400);
    expect(await json(bad)).toMatchObject({ code: "invalid_json" });
    expect(await counter(t.registry, "capture_requests_total", { route: "/flags/", status: "400" })).toBe(2);
    t.source.down = true;
    expect((await postJson(t, "/flags/?v=2", { token: "phc_other_uncached", distinct_id: "d" })).status).toBe(503);
  });

  test("CORS: a page on another origin may ask (preflight and answer carry the headers)", async () => {
    const t = testApp();
    const pre = await t.app.request("/flags/?v=2", { method: "OPTIONS", headers: { origin: "https://shop.example", "access-control-request-method": "POST" } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("https://shop.example");
    const res = await t.app.request(`/array/${TOKEN}/config`, { headers: { origin: "https://shop.example" } });
    expect(res.headers.get("access-control-allow-origin")).toBe("https://shop.example");
  });
});

describe("posthog-js bundles under /static", () => {
  test("the installed version's extensions (versioned and not), array.js; other versions and names 404", async () => {
    const t = testApp();
    const version = ((await Bun.file(new URL("../../node_modules/posthog-js/package.json", import.meta.url)).json()) as { version: string }).version;
    for (const path of ["/static/surveys.js?v=" + version, `/static/${version}/surveys.js`, "/static/array.js", `/static/${version}/dead-clicks-autocapture.js`]) {
      const res = await t.app.request(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/javascript");
      expect((await res.text()).length).toBeGreaterThan(1000);
    }
    for (const path of ["/static/0.0.1/surveys.js", "/static/nope.js", "/static/..%2Fpackage.json", "/static/surveys.js.map", "/static/%2e%2e/package.json"]) {
      expect((await t.app.request(path)).status).toBe(404);
    }
  });
});
