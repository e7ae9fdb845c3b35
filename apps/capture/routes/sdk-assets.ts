/**
 * posthog-js' script bundles, served where the SDK looks for them: a project on its own `api_host` loads its
 * lazy extensions from `<api_host>/static/<version>/<name>.js` (then `/static/<name>.js?v=<version>` when that
 * fails). posthog-js fetches `surveys.js` even when remote config says `surveys: false`, so without these a
 * plain page logs a 404 in every visitor's console. PostHog serves the same files from its assets host; here
 * they come from the installed `posthog-js` package (a pinned dependency). A versioned path answers only for
 * the installed version: any other 404s and the SDK falls back to the unversioned one, as against PostHog.
 * Also `/static/array.js`, so the standard snippet can load the SDK from capture itself.
 */
import type { Hono } from "hono";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const DIST = join(import.meta.dir, "../../../node_modules/posthog-js/dist");
const NAME = /^[a-z0-9][a-z0-9.-]*\.js$/;

export function installedPosthogJsVersion(): string | null {
  try {
    return (JSON.parse(readFileSync(join(DIST, "../package.json"), "utf8")) as { version: string }).version;
  } catch {
    return null;
  }
}

export function registerSdkAssetRoutes(app: Hono): void {
  const version = installedPosthogJsVersion();
  const serve = (name: string): Response => {
    const path = join(DIST, name);
    if (version === null || !NAME.test(name) || !existsSync(path)) return new Response("not found", { status: 404 });
    return new Response(Bun.file(path), {
      headers: { "content-type": "application/javascript", "cache-control": "public, max-age=3600" },
    });
  };
  app.get("/static/:file", (c) => serve(c.req.param("file")));
  app.get("/static/:version/:file", (c) => (c.req.param("version") === version ? serve(c.req.param("file")) : new Response("not found", { status: 404 })));
}
