/**
 * The insights page in a real browser (Debian's chromium through playwright-core, tests/support/browser.ts)
 * against real processes: our own query app, capture and consumer on an isolated topic, group and project.
 *
 *   - a wrong key shows a clear message; the right key signs in; the key is in sessionStorage, never in a URL or
 *     in the apps' logs; a key revoked mid-session sends the page back to sign-in with the reason;
 *   - events sent through capture appear in the live view; a row expands to its JSON;
 *   - on seeded fixture data the trend table and the funnel bars show exactly what the API answers for the same
 *     question; the question lives in the URL;
 *   - keyboard only: skip link, view tabs, form controls; a phone-width layout without horizontal scrolling;
 *   - no console error (a Content-Security-Policy violation would be one).
 *
 * Screenshots of each view: .local/test-results/ui/*.png (INGEST_STATE_DIR/test-results/ui).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { createClickHouse } from "../../lib/clickhouse/client.ts";
import { generateEvents } from "../../lib/events/generator.ts";
import { loadEvents } from "../../lib/events/generator-loader.ts";
import { createPostgres } from "../../lib/postgres/client.ts";
import { createProject } from "../../lib/projects/create-project.ts";
import { type AppProcess, startApp } from "../support/apps.ts";
import { launchBrowser, type LaunchedBrowser } from "../support/browser.ts";
import { KAFKA, ROOT, uniqueName, waitFor } from "../support/stack.ts";

const SHOTS = join(process.env.INGEST_STATE_DIR ?? join(ROOT, ".local"), "test-results/ui");
const FIXTURE_END = new Date("2024-11-15T00:00:00Z");
const RANGE = { date_from: "2024-10-10", date_to: "2024-11-12" };

const apps: AppProcess[] = [];
let query: AppProcess;
let capture: AppProcess;
let browser: LaunchedBrowser;
let ctx: BrowserContext;
let page: Page;
let projectId = 0;
let token = "";
let key = "";
const consoleErrors: string[] = [];
const pg = createPostgres(process.env.POSTGRES_URL ?? "postgres://ingest:ingest@127.0.0.1:5432/ingest", { max: 1 });
const ch = createClickHouse({ url: process.env.CLICKHOUSE_URL ?? "http://127.0.0.1:8123", database: "analytics" });

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const created = await createProject(pg, uniqueName("ui"));
  projectId = created.project.id;
  token = created.project.token;
  key = created.secretKey;
  // Seeded history in autumn 2024 (the live events of this test are "now", outside that range).
  const fixture = [...generateEvents({ seed: 17, teamId: projectId, users: 150, events: 5000, days: 40, end: FIXTURE_END, duplicateRate: 0.05 })];
  await loadEvents(ch, fixture.filter((e) => !e.duplicate));
  await loadEvents(ch, fixture.filter((e) => e.duplicate));

  const topic = uniqueName("ui_events").replaceAll("-", "_");
  const made = Bun.spawnSync([`${ROOT}/infrastructure/kafka/bin/kafka-topics`, "--bootstrap-server", KAFKA, "--create", "--topic", topic, "--partitions", "2", "--replication-factor", "1"]);
  if (made.exitCode !== 0) throw new Error(`kafka-topics: ${made.stderr.toString()}`);
  // LOG_LEVEL=debug: the most the apps ever log, to prove the key is in none of it.
  [query, capture] = await Promise.all([
    // QUERY_KEY_CACHE_TTL_S=0: a revoked key is refused at once (the revocation test), not after the cache TTL.
    startApp("query", { LOG_LEVEL: "debug", QUERY_KEY_CACHE_TTL_S: "0" }),
    startApp("capture", { CAPTURE_EVENTS_TOPIC: topic, CAPTURE_KAFKA_BOOTSTRAP_SERVERS: KAFKA, LOG_LEVEL: "debug" }),
  ]);
  apps.push(query, capture);
  apps.push(await startApp("consumer", { CONSUMER_EVENTS_TOPIC: topic, CONSUMER_KAFKA_GROUP_ID: uniqueName("ui"), CONSUMER_DLQ_TOPIC: `${topic}_dlq`, CONSUMER_BATCH_LINGER_MS: "200" }));

  browser = await launchBrowser();
  ctx = await browser.browser.newContext({ viewport: { width: 1280, height: 860 } });
  page = await ctx.newPage();
  watchConsole(page);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  for (const a of apps) if (a.proc.exitCode === null) await a.stop();
  if (projectId) {
    await pg`DELETE FROM projects WHERE id = ${projectId}`;
    await ch.command({ query: `ALTER TABLE events DELETE WHERE team_id = ${Number(projectId)}` }).catch(() => {});
  }
  await Promise.allSettled([pg.end({ timeout: 2 }), ch.close()]);
});

function watchConsole(p: Page): void {
  p.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(m.text());
  });
  p.on("pageerror", (e) => consoleErrors.push(String(e)));
}

async function apiPost(path: string, body: unknown): Promise<any> {
  const res = await fetch(`${query.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return res.json();
}

const appUrl = (view: string, q?: unknown) => `${query.url}/app?view=${view}${q === undefined ? "" : `&q=${encodeURIComponent(JSON.stringify(q))}`}`;

async function shot(p: Page, name: string, fullPage = true): Promise<void> {
  await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

async function signIn(p: Page, withKey: string): Promise<void> {
  await p.locator("#key").fill(withKey);
  await p.keyboard.press("Enter");
}

const focused = (p: Page) => p.locator(":focus").textContent();

/** The trend table's numbers: per row, [total, ...buckets] as shown (the browser's en-US grouping removed). */
async function trendTable(p: Page): Promise<{ label: string; values: number[] }[]> {
  const rows = await p.$$eval("#trend-table tbody tr", (trs) =>
    trs.map((r) => ({
      label: r.querySelector("th")!.textContent ?? "",
      cells: [...r.querySelectorAll("td")].map((td) => ({ text: td.textContent ?? "", value: td.getAttribute("data-value") })),
    })),
  );
  return rows.map((r) => ({
    label: r.label,
    values: r.cells.map((c) => {
      const shown = Number(c.text.replaceAll(",", ""));
      // The machine-readable value agrees with the text a person reads.
      expect(Number(c.value)).toBeCloseTo(shown, 2);
      return shown;
    }),
  }));
}

describe("insights page", () => {
  test("GET / leads to the page; a wrong key is refused with a clear message", async () => {
    await page.goto(query.url);
    expect(new URL(page.url()).pathname).toBe("/app");
    await signIn(page, "phs_this_key_does_not_exist_0000");
    const error = page.locator("#signin-error");
    await error.waitFor({ state: "visible", timeout: 20_000 });
    expect(await error.textContent()).toContain("not accepted");
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await shot(page, "signin-wrong-key");
    // The browser logs the refused request itself; that one is expected, any other error is not.
    expect(consoleErrors).toEqual([expect.stringContaining("401")]);
    consoleErrors.length = 0;
  }, 60_000);

  test("sign in, then events sent through capture appear in the live view", async () => {
    await signIn(page, key);
    await page.locator("section.live").waitFor({ timeout: 20_000 });
    expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([key]);
    const marker = `ui_live_${Date.now().toString(36)}`;
    const batch = [
      { event: marker, distinct_id: "ui-user-1", uuid: crypto.randomUUID(), properties: { $current_url: "https://shop.example/pricing", plan: "pro" } },
      { event: `${marker}_signup`, distinct_id: "ui-user-2", uuid: crypto.randomUUID(), properties: { $browser: "Chromium", amount: 42 } },
    ];
    const res = await fetch(`${capture.url}/batch`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ api_key: token, batch }) });
    expect([200, 202]).toContain(res.status);
    // Capture -> Kafka -> consumer -> ClickHouse -> the page's next poll, with nothing reloaded.
    const row = page.locator(`details.event[data-uuid="${batch[0]!.uuid}"]`);
    await row.waitFor({ timeout: 60_000 });
    await page.locator(`details.event[data-uuid="${batch[1]!.uuid}"]`).waitFor({ timeout: 30_000 });
    expect(await row.locator(".ev-name").textContent()).toBe(marker);
    expect(await row.locator(".ev-person").textContent()).toBe("ui-user-1");
    expect(await row.locator(".ev-props").textContent()).toContain("https://shop.example/pricing");
    // Expand with the keyboard: the full JSON, uuid and all.
    await row.locator("summary").focus();
    await page.keyboard.press("Enter");
    const json = JSON.parse((await row.locator("pre.ev-json").textContent())!);
    expect(json).toMatchObject({ uuid: batch[0]!.uuid, event: marker, distinct_id: "ui-user-1", properties: { plan: "pro" } });
    await shot(page, "live", false);
  }, 120_000);

  test("the trend table shows the API's numbers for the same question, which is in the URL", async () => {
    const q = { series: [{ event: "$pageview", math: "total" }, { event: "signup", math: "unique_users" }], interval: "day", ...RANGE, filters: [], breakdown: "", chart: "line", timezone: "UTC" };
    await page.goto(appUrl("trends", q));
    await page.locator('section.trends[data-state="ready"]').waitFor({ timeout: 30_000 });
    const api = await apiPost("/api/trends", { series: q.series, interval: "day", ...RANGE, timezone: "UTC" });
    const shown = await trendTable(page);
    expect(shown.length).toBe(2);
    expect(api.series[0].total).toBeGreaterThan(0);
    shown.forEach((r, i) => expect(r.values).toEqual([api.series[i].total, ...api.series[i].data]));
    expect(shown[1]!.label).toContain("signup · Unique users");
    expect(await page.locator(".chart canvas").count()).toBe(1);
    // Hover values in the legend.
    const box = (await page.locator(".chart .u-over").boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const legend = await page.locator(".chart .u-legend .u-series").nth(1).locator(".u-value").textContent();
    expect(legend).toMatch(/^\d/);
    await shot(page, "trends");
    expect(page.url()).not.toContain(key);
  }, 60_000);

  test("breakdown, a property filter and bars: still the API's numbers", async () => {
    const q = {
      series: [{ event: "", math: "total" }],
      interval: "week",
      ...RANGE,
      filters: [{ key: "$current_url", operator: "contains", value: "/docs" }],
      breakdown: "$browser",
      chart: "bar",
      timezone: "Europe/Berlin",
    };
    await page.goto(appUrl("trends", q));
    await page.locator('section.trends[data-state="ready"]').waitFor({ timeout: 30_000 });
    const api = await apiPost("/api/trends", {
      series: [{ event: null, math: "total" }],
      filters: [{ key: "$current_url", operator: "contains", value: "/docs" }],
      interval: "week",
      ...RANGE,
      timezone: "Europe/Berlin",
      breakdown: ["$browser"],
      breakdown_limit: 10,
    });
    const shown = await trendTable(page);
    expect(api.series.length).toBe(11); // ten values and $other
    expect(shown.length).toBe(api.series.length);
    shown.forEach((r, i) => {
      expect(r.values).toEqual([api.series[i].total, ...api.series[i].data]);
      expect(r.label).toBe(api.series[i].breakdown_value.join(", "));
    });
    await shot(page, "trends-breakdown");
  }, 60_000);

  test("the funnel shows the API's counts, drop-off and median time", async () => {
    const q = { steps: ["signup", "activate", "purchase"], window_value: 7, window_unit: "day", order: "ordered", ...RANGE, timezone: "UTC" };
    await page.goto(appUrl("funnels", q));
    await page.locator('section.funnels[data-state="ready"]').waitFor({ timeout: 30_000 });
    const api = await apiPost("/api/funnels", { steps: q.steps.map((event) => ({ event })), window: { value: 7, unit: "day" }, order: "ordered", ...RANGE, timezone: "UTC" });
    const steps = api.results[0].steps;
    expect(steps[1].count).toBeGreaterThan(0);
    const shown = await page.$$eval("#funnel-steps li", (lis) =>
      lis.map((li) => ({
        count: Number(li.getAttribute("data-count")),
        drop: li.querySelector(".drop")?.getAttribute("data-drop") ?? null,
        median: li.querySelector(".median")?.getAttribute("data-median") ?? null,
        text: li.textContent ?? "",
      })),
    );
    expect(shown.map((s) => s.count)).toEqual(steps.map((s: any) => s.count));
    expect(shown.slice(1).map((s) => Number(s.drop))).toEqual(steps.slice(1).map((s: any) => s.drop_off));
    expect(shown.slice(1).map((s) => Number(s.median))).toEqual(steps.slice(1).map((s: any) => s.median_seconds_from_previous));
    expect(shown[1]!.text).toContain(`${(steps[1].conversion_from_previous * 100).toFixed(1)}% from previous`);
    await shot(page, "funnels");
  }, 60_000);

  test("keyboard only: skip link, tabs, and a control that re-runs the query and updates the URL", async () => {
    await page.goto(appUrl("live"));
    await page.locator("section.live").waitFor();
    await page.keyboard.press("Tab");
    expect(await focused(page)).toBe("Skip to content");
    await page.keyboard.press("Tab");
    expect(await focused(page)).toBe("Live events");
    await page.keyboard.press("Tab");
    expect(await focused(page)).toBe("Trends");
    await page.keyboard.press("Enter");
    await page.locator("section.trends").waitFor();
    expect(await page.locator('nav a[aria-current="page"]').textContent()).toBe("Trends");
    // Into the form: the first control is series A's event picker.
    const picker = page.locator('[aria-label="Series A event"]');
    await picker.focus();
    await page.keyboard.press("Tab");
    expect(await page.locator(":focus").getAttribute("aria-label")).toBe("Series A math");
    await page.keyboard.press("ArrowDown");
    await waitFor("math in the URL", 10_000, () => decodeURIComponent(page.url()).includes('"math":"unique_users"'));
    await page.locator('section.trends[data-state="ready"]').waitFor({ timeout: 30_000 });
    // Back/forward: the live view is one step back.
    await page.goBack();
    await page.locator("section.live").waitFor();
    expect(page.url()).not.toContain(key);
  }, 60_000);

  test("phone width: one column, no horizontal scrolling", async () => {
    const phone = await browser.browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    watchConsole(p);
    await p.goto(appUrl("live"));
    await signIn(p, key);
    await p.locator("section.live details.event").first().waitFor({ timeout: 20_000 });
    const overflow = () => p.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth");
    expect(await overflow()).toBeLessThanOrEqual(0);
    await shot(p, "phone-live", false);
    await p.goto(appUrl("trends", { series: [{ event: "$pageview", math: "total" }], interval: "day", ...RANGE, timezone: "UTC" }));
    await p.locator('section.trends[data-state="ready"]').waitFor({ timeout: 30_000 });
    expect(await overflow()).toBeLessThanOrEqual(0);
    const form = (await p.locator("form.controls").boundingBox())!;
    const chart = (await p.locator(".chart").boundingBox())!;
    expect(chart.y).toBeGreaterThan(form.y + form.height - 1);
    expect(chart.width).toBeGreaterThan(300);
    await shot(p, "phone-trends");
    await phone.close();
  }, 60_000);

  test("a key revoked during a session returns the page to sign-in with the reason", async () => {
    await page.goto(appUrl("live"));
    await page.locator("section.live").waitFor({ timeout: 20_000 });
    expect(consoleErrors).toEqual([]);
    await pg`UPDATE projects SET secret_key_hash = ${`revoked-${projectId}`} WHERE id = ${projectId}`;
    // The next live poll gets 401.
    const error = page.locator("#signin-error");
    await error.waitFor({ state: "visible", timeout: 30_000 });
    expect(await error.textContent()).toContain("no longer accepted");
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(consoleErrors.every((e) => e.includes("401"))).toBe(true);
    consoleErrors.length = 0;
  }, 60_000);

  test("no console errors, and the key is in no URL and no app log", async () => {
    expect(consoleErrors).toEqual([]);
    for (const a of apps) expect(a.output()).not.toContain(key);
    expect(query.output().length).toBeGreaterThan(0);
  });
});
