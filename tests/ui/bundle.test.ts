/**
 * The insights page's build and serving, without a browser: Bun.build bundles it, its JavaScript stays under
 * 150 KB gzipped, its browser-side TypeScript type-checks (apps/query/ui/tsconfig.json, DOM types), and the query
 * app serves it with its security headers, gzip and ETag revalidation.
 */
import { expect, test } from "bun:test";
import { Hono } from "hono";
import { join } from "node:path";
import { createLogger } from "../../lib/log/logger.ts";
import { buildInsightsPage } from "../../apps/query/ui/bundle.ts";
import { registerInsightsPage } from "../../apps/query/ui/routes.ts";
import { ROOT } from "../support/stack.ts";

const BUDGET_GZIP_BYTES = 150 * 1024;

test("the page's JavaScript is under 150 KB gzipped", async () => {
  const page = await buildInsightsPage();
  expect(page.js.body.length).toBeGreaterThan(10_000); // uPlot is in it: the bundle is real
  expect(page.js.gzip.length).toBeLessThan(BUDGET_GZIP_BYTES);
  expect(Bun.gunzipSync(page.js.gzip)).toEqual(page.js.body);
  console.log(`insights page: app.js ${page.js.body.length} B, ${page.js.gzip.length} B gzipped; app.css ${page.css.gzip.length} B gzipped`);
});

test("the browser-side TypeScript type-checks", () => {
  const tsc = Bun.spawnSync(["bun", "x", "tsc", "--noEmit", "-p", join(ROOT, "apps/query/ui")], { cwd: ROOT });
  expect(tsc.stdout.toString() + tsc.stderr.toString()).toBe("");
  expect(tsc.exitCode).toBe(0);
}, 120_000);

test("served at /app with a strict CSP, gzip and ETag; / redirects there", async () => {
  const app = new Hono();
  registerInsightsPage(app, createLogger("ui-test", "silent"));
  const root = await app.request("/");
  expect(root.status).toBe(302);
  expect(root.headers.get("location")).toBe("/app");

  const html = await app.request("/app?view=trends&q=%7B%7D");
  expect(html.status).toBe(200);
  expect(html.headers.get("content-type")).toContain("text/html");
  const csp = html.headers.get("content-security-policy")!;
  for (const d of ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "form-action 'none'", "frame-ancestors 'none'"]) expect(csp).toContain(d);
  expect(html.headers.get("referrer-policy")).toBe("no-referrer");
  const text = await html.text();
  expect(text).toContain('<script type="module" src="/app/app.js">');
  expect(text).toContain('<link rel="stylesheet" href="/app/app.css" />');

  const js = await app.request("/app/app.js", { headers: { "accept-encoding": "gzip, br" } });
  expect(js.headers.get("content-encoding")).toBe("gzip");
  expect(js.headers.get("content-type")).toContain("text/javascript");
  const gz = new Uint8Array(await js.arrayBuffer());
  expect(gz.length).toBeLessThan(BUDGET_GZIP_BYTES);
  const etag = js.headers.get("etag")!;
  expect((await app.request("/app/app.js", { headers: { "if-none-match": etag } })).status).toBe(304);
  const plain = await app.request("/app/app.css");
  expect(plain.headers.get("content-encoding")).toBeNull();
  expect(await plain.text()).toContain(".uplot");
});
