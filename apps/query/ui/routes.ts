/**
 * Serves the insights page from the query app: `GET /` redirects to `/app`, `/app` is the page, `/app/app.js` and
 * `/app/app.css` its assets. Public (the page holds no data; every API call it makes carries the key). The bundle
 * is built once per process, starting when the first app registers it (at start-up); a request waits for it.
 *
 * Headers: a strict Content-Security-Policy (scripts and connections to this origin only, no framing, forms post
 * nowhere), no referrer, gzip when the client accepts it, ETag revalidation.
 */
import type { Context, Env, Hono } from "hono";
import type { Logger } from "../../../lib/log/logger.ts";
import { buildInsightsPage, type Asset, type InsightsPage } from "./bundle.ts";

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  // uPlot positions its legend and cursor through element.style; no inline <style> or style="" text is used.
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

// One build per process, however many apps are created (tests create many); a failed build is retried on the next
// request.
let page: Promise<InsightsPage> | null = null;
function insightsPage(log: Logger): Promise<InsightsPage> {
  page ??= buildInsightsPage().catch((err: unknown) => {
    page = null;
    log.error({ err: err instanceof Error ? err.message : String(err) }, "insights page failed to build");
    throw err;
  });
  return page;
}

// Generic over the app's environment: the page needs none of its variables.
export function registerInsightsPage<E extends Env>(app: Hono<E>, log: Logger): void {
  const load = () => insightsPage(log);
  void load().catch(() => {});

  const serve = (pick: (p: InsightsPage) => Asset) => async (c: Context) => {
    const a = pick(await load());
    c.header("Content-Type", a.type);
    c.header("ETag", a.etag);
    c.header("Cache-Control", "no-cache");
    c.header("Vary", "Accept-Encoding");
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Referrer-Policy", "no-referrer");
    c.header("Content-Security-Policy", CSP);
    if (c.req.header("if-none-match") === a.etag) return c.body(null, 304);
    if (/\bgzip\b/.test(c.req.header("accept-encoding") ?? "")) {
      c.header("Content-Encoding", "gzip");
      return c.body(a.gzip);
    }
    return c.body(a.body);
  };

  app.get("/", (c) => c.redirect("/app", 302));
  app.get("/app", serve((p) => p.html));
  app.get("/app/", (c) => c.redirect("/app", 301));
  app.get("/app/app.js", serve((p) => p.js));
  app.get("/app/app.css", serve((p) => p.css));
}
