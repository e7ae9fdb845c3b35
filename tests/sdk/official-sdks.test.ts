/**
 * The official PostHog SDKs, unchanged, pointed at capture, end to end through Kafka and the consumer into
 * ClickHouse: posthog-js (pinned devDependency) in Debian's headless Chromium, posthog-python (pinned, in the
 * test venv from tests/setup-pyenv.sh) in both capture modes, posthog-node (pinned devDependency). For each:
 * every event is stored exactly once (rows = distinct uuids = what was sent), every answer was a success, so
 * no SDK had a reason to re-send, and (posthog-js) no request carried `retry_count` and the console stayed clean.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { PostHog } from "posthog-node";
import { launchBrowser, type LaunchedBrowser } from "../support/browser.ts";
import { ROOT, uniqueName, waitFor } from "../support/stack.ts";
import { type SdkStack, startSdkStack, waitStored } from "./sdk-stack.ts";

const POSTHOG_JS = join(ROOT, "node_modules/posthog-js/dist/array.js");
const PYTHON = join(process.env.INGEST_STATE_DIR ?? join(ROOT, ".local"), "pyenv/bin/python");

let stack: SdkStack;
beforeAll(async () => {
  // Idempotent; `make test` has already run it (tests/run.sh), a direct `bun test` may not have.
  const setup = Bun.spawnSync([join(ROOT, "tests/setup-pyenv.sh")], { stdout: "pipe", stderr: "pipe" });
  if (setup.exitCode !== 0) throw new Error(`tests/setup-pyenv.sh: ${setup.stderr.toString()}`);
  stack = await startSdkStack();
}, 180_000);
afterAll(async () => {
  await stack?.stop();
});

/** Every answer capture gave on event paths since `from`, with anything that is not a plain success. */
function eventAnswers(from: number) {
  return stack.requests.slice(from).filter((r) => r.method !== "OPTIONS" && /^\/(e|i\/v0\/e|batch|capture|track|engage|i\/v1\/analytics\/events)\/?$/.test(r.path));
}

describe("posthog-js in Chromium", () => {
  let browser: LaunchedBrowser;
  let site: ReturnType<typeof Bun.serve>;
  beforeAll(async () => {
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    site?.stop(true);
  });

  test("page view, custom event, identify, a real click (autocapture), page leave by sendBeacon: each stored once, no retry, clean console", async () => {
    const project = await stack.newProject("sdk-js");
    const from = stack.requests.length;
    // The customer's site: a page that loads the SDK bundle (served from here, as from a CDN) and inits it.
    site = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(req) {
        const path = new URL(req.url).pathname;
        if (path === "/array.js") return new Response(Bun.file(POSTHOG_JS), { headers: { "content-type": "application/javascript" } });
        if (path !== "/pricing") return new Response("not found", { status: 404 });
        return new Response(
          `<!doctype html><html><head><meta charset="utf-8"><title>Pricing</title><link rel="icon" href="data:,">
<script src="/array.js"></script>
<script>
  posthog.init(${JSON.stringify(project.token)}, {
    api_host: ${JSON.stringify(stack.url)},
    opt_out_useragent_filter: true,
    autocapture: true,
    capture_pageview: true,
    capture_pageleave: true,
    loaded: function () { window.__posthogLoaded = true; },
  });
</script></head>
<body><h1>Pricing</h1><button id="buy" class="cta">Buy now</button></body></html>`,
          { headers: { "content-type": "text/html; charset=utf-8" } },
        );
      },
    });
    const context = await browser.browser.newContext();
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console error: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ""}`));

    await page.goto(`http://127.0.0.1:${site.port}/pricing`);
    await page.waitForFunction(() => (globalThis as { __posthogLoaded?: boolean }).__posthogLoaded === true);
    // Start-up: remote config and flags answered before the user acts (autocapture waits for the config).
    await waitFor("posthog-js remote config", 20_000, () =>
      stack.requests.slice(from).some((r) => r.path === `/array/${project.token}/config.js` && r.status === 200),
    );
    await page.evaluate(() => {
      const ph = (globalThis as unknown as { posthog: { capture(e: string, p: object): void; identify(id: string, p: object): void; reloadFeatureFlags(): void } })
        .posthog;
      ph.capture("checkout_started", { plan: "pro" });
      ph.identify("customer-42", { email: "customer-42@example.com" });
      // The config says the project has no flags, so the SDK skips /flags at start-up; ask it explicitly.
      ph.reloadFeatureFlags();
    });
    await waitFor("posthog-js /flags", 20_000, () => stack.requests.slice(from).some((r) => r.path === "/flags/" && r.search.includes("v=2") && r.status === 200));
    await page.click("#buy");
    // Let the SDK's batch (sent every few seconds) go out over XHR/fetch, then leave: $pageleave by sendBeacon.
    await waitFor("posthog-js to send its batch", 20_000, () => eventAnswers(from).length > 0);
    await page.goto("about:blank");

    const expected = ["$pageview", "checkout_started", "$identify", "$autocapture", "$pageleave"];
    const stored = await waitStored(project.id, expected.length, "posthog-js events");
    expect(Object.fromEntries(stored.byName)).toEqual(Object.fromEntries(expected.map((e) => [e, 1])));
    expect(stored.rows).toBe(stored.uuids.size);

    const answers = eventAnswers(from);
    expect(answers.filter((r) => r.search.includes("retry_count"))).toEqual([]);
    expect(answers.filter((r) => r.status !== 200 && r.status !== 204)).toEqual([]);
    // The last batch ($pageleave) went out by sendBeacon as the page unloaded: a no-cors request (posthog-js'
    // own fetches are cors), answered 200 like the rest (posthog-js no longer adds `beacon=1`).
    const firstBeacon = answers.findIndex((r) => r.fetchMode === "no-cors");
    expect(firstBeacon).toBeGreaterThan(0);
    expect(answers.slice(firstBeacon).every((r) => r.fetchMode === "no-cors" && r.status === 200)).toBe(true);
    expect(stack.requests.slice(from).filter((r) => r.status >= 400)).toEqual([]);
    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);
});

describe("posthog-python", () => {
  for (const mode of ["v0", "v1"] as const) {
    test(`capture_mode=${mode}: capture, set, a batch of 7 events stored exactly once, no error, no retry`, async () => {
      const project = await stack.newProject(`sdk-python-${mode}`);
      const from = stack.requests.length;
      const run = uniqueName(`py${mode}`);
      const proc = Bun.spawn([PYTHON, join(import.meta.dir, "posthog_python_send.py"), stack.url, project.token, mode, run], { stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      expect({ code, err: err.match(/error|retry|traceback/gi) }).toEqual({ code: 0, err: null });
      const report = JSON.parse(out.trim().split("\n").at(-1)!) as { uuids: string[]; errors: string[]; logged: string[] };
      expect(report.errors).toEqual([]);
      expect(report.logged).toEqual([]);
      expect(new Set(report.uuids).size).toBe(7);

      const stored = await waitStored(project.id, 7, `posthog-python ${mode}`);
      expect([...stored.uuids].sort()).toEqual([...report.uuids].sort());
      expect(stored.rows).toBe(7);
      expect(Object.fromEntries(stored.byName)).toEqual({ python_event: 5, $set: 1, python_purchase: 1 });

      const answers = eventAnswers(from);
      expect(answers.length).toBeGreaterThan(0);
      expect(answers.every((r) => r.path === (mode === "v1" ? "/i/v1/analytics/events" : "/batch/"))).toBe(true);
      expect(answers.filter((r) => r.status !== 200)).toEqual([]);
    }, 120_000);
  }
});

describe("posthog-node", () => {
  test("capture and identify: stored exactly once, every answer a success", async () => {
    const project = await stack.newProject("sdk-node");
    const from = stack.requests.length;
    const errors: unknown[] = [];
    const client = new PostHog(project.token, { host: stack.url, flushAt: 3, flushInterval: 0 });
    client.on("error", (e) => errors.push(e));
    const uuids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const uuid = crypto.randomUUID();
      uuids.push(uuid);
      client.capture({ distinctId: "node-user", event: "node_event", properties: { i }, uuid });
    }
    client.identify({ distinctId: "node-user", properties: { email: "node@example.com" } });
    await client.shutdown();
    expect(errors).toEqual([]);

    const stored = await waitStored(project.id, 6, "posthog-node events");
    expect(stored.rows).toBe(6);
    expect(Object.fromEntries(stored.byName)).toEqual({ node_event: 5, $identify: 1 });
    for (const u of uuids) expect(stored.uuids.has(u)).toBe(true);
    const answers = eventAnswers(from);
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.filter((r) => r.status !== 200)).toEqual([]);
  }, 60_000);
});
