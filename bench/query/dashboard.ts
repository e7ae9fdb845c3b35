/**
 * `bun bench/query/dashboard.ts`: a dashboard load end to end — ten different insights (trends of several shapes,
 * a breakdown, two funnels) requested at the same moment against a running query app (QUERY_URL, default
 * http://127.0.0.1:8001), cache bypassed, by VIEWERS people at once (default 1; 2 = the "two people").
 * Records each insight's status and latency and the time until the whole dashboard answered; 503 `overloaded`
 * answers are counted as shed. The project is the seeded one (.local/seed-project.json) unless QUERY_KEY is set.
 * RETRY=1 makes each viewer behave like a client that honours Retry-After: a shed insight is asked again after
 * the time the 503 named (up to 10 attempts), and the figure is the time until the whole dashboard was answered.
 * Writes bench/results/dashboard-*.json (LABEL names the configuration measured).
 */
import { writeResult } from "../lib/results.ts";
import { SEED_PROJECT_FILE } from "./seed.ts";

const env = process.env;
const url = env.QUERY_URL ?? "http://127.0.0.1:8001";
const viewers = Number(env.VIEWERS ?? 1);
const retry = env.RETRY === "1";
const key = env.QUERY_KEY ?? (JSON.parse(await Bun.file(SEED_PROJECT_FILE).text()) as { secret_key: string }).secret_key;

const steps = [{ event: "$pageview" }, { event: "signup" }, { event: "purchase" }];
export const INSIGHTS: { name: string; path: string; body: object }[] = [
  { name: "pageviews, 7 days", path: "/api/trends", body: { series: [{ event: "$pageview" }], date_from: "-7d" } },
  { name: "pageviews + unique users, 7 days", path: "/api/trends", body: { series: [{ event: "$pageview" }, { event: "$pageview", math: "unique_users" }], date_from: "-7d" } },
  { name: "all events, 30 days", path: "/api/trends", body: { series: [{ event: null }], date_from: "-30d" } },
  { name: "signups weekly, 30 days", path: "/api/trends", body: { series: [{ event: "signup" }], interval: "week", date_from: "-30d" } },
  { name: "purchases hourly, 7 days, Berlin", path: "/api/trends", body: { series: [{ event: "purchase" }], interval: "hour", date_from: "-7d", timezone: "Europe/Berlin" } },
  { name: "unique users, 30 days", path: "/api/trends", body: { series: [{ event: null, math: "unique_users" }], date_from: "-30d" } },
  { name: "pageviews by browser, 7 days", path: "/api/trends", body: { series: [{ event: "$pageview" }], breakdown: ["$browser"], date_from: "-7d" } },
  { name: "Chrome pageviews, 7 days", path: "/api/trends", body: { series: [{ event: "$pageview", filters: [{ key: "$browser", operator: "eq", value: "Chrome" }] }], date_from: "-7d" } },
  { name: "funnel pageview > signup > purchase, 30 days", path: "/api/funnels", body: { steps, date_from: "-30d" } },
  { name: "funnel signup > purchase, 7 days", path: "/api/funnels", body: { steps: steps.slice(1), date_from: "-7d", window: { value: 1, unit: "day" } } },
];

async function open(viewer: number) {
  return Promise.all(
    INSIGHTS.map(async (insight) => {
      const started = performance.now();
      let attempts = 0;
      for (;;) {
        attempts++;
        const res = await fetch(`${url}${insight.path}`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${key}`, "cache-control": "no-cache" },
          body: JSON.stringify(insight.body),
        });
        const body = (await res.json()) as { code?: string; reason?: string };
        const ms = performance.now() - started;
        const shed = res.status === 503 && body.code === "overloaded";
        const retryAfter = res.headers.get("retry-after");
        if (shed && retry && attempts < 10) {
          // Retry-After plus up to 20% jitter, as a well-behaved client would.
          await Bun.sleep(Number(retryAfter ?? 1) * 1000 * (1 + Math.random() * 0.2));
          continue;
        }
        return { viewer, insight: insight.name, status: res.status, ms, attempts, shed, reason: body.reason ?? null, retry_after: retryAfter };
      }
    }),
  );
}

const started = performance.now();
const answers = (await Promise.all(Array.from({ length: viewers }, (_, v) => open(v)))).flat();
const wallMs = performance.now() - started;
const ok = answers.filter((a) => a.status === 200);
const summary = {
  label: env.LABEL ?? null,
  retry,
  query_url: url,
  viewers,
  insights: INSIGHTS.length,
  wall_ms: wallMs,
  answered_200: ok.length,
  shed: answers.filter((a) => a.shed).length,
  errors: answers.filter((a) => a.status !== 200 && !a.shed).length,
  slowest_200_ms: Math.max(0, ...ok.map((a) => a.ms)),
  slowest_shed_ms: Math.max(0, ...answers.filter((a) => a.shed).map((a) => a.ms)),
  answers,
};
console.table(answers.map((a) => ({ viewer: a.viewer, insight: a.insight, status: a.status, ms: a.ms.toFixed(0), reason: a.reason ?? "" })));
console.log(`dashboard: ${viewers} viewer(s) x ${INSIGHTS.length} insights in ${wallMs.toFixed(0)} ms: ${summary.answered_200} answered, ${summary.shed} shed, ${summary.errors} errors`);
console.log(await writeResult("dashboard", summary));
