/** Funnels against the oracle: every step's count, conversion, drop-off and times, in each order mode, with
 * windows, filters and a breakdown, over generated events with duplicates. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { GeneratedEvent } from "../../lib/events/generator.ts";
import { NOTES } from "../../apps/query/funnels.ts";
import { createHarness, fixtureEvents, post, type Harness, type Project } from "./fixtures.ts";
import { oracleFunnel, type OracleFilter, type OracleStep } from "./oracle.ts";

let h: Harness;
let project: Project;
let events: GeneratedEvent[];
let app: ReturnType<Harness["app"]>;

beforeAll(async () => {
  h = await createHarness();
  project = await h.createProject();
  events = fixtureEvents(project.id, 7);
  await h.load(events);
  app = h.app({ cache: null });
});
afterAll(() => h.close());

const S = (iso: string) => Date.parse(iso) / 1000;
const RANGE = { date_from: "2024-10-10", date_to: "2024-11-10", fromS: S("2024-10-10T00:00:00Z"), toS: S("2024-11-11T00:00:00Z") };
const UNIT = { second: 1, minute: 60, hour: 3600, day: 86400 } as const;

interface Case {
  steps: OracleStep[];
  filters?: OracleFilter[];
  order: "ordered" | "strict" | "unordered";
  window?: { value: number; unit: keyof typeof UNIT };
  breakdown?: string;
  breakdown_limit?: number;
}

async function check(c: Case) {
  const window = c.window ?? { value: 14, unit: "day" as const };
  const res = await post(app, "/api/funnels", project.key, {
    steps: c.steps.map((s) => ({ event: s.event, filters: s.filters ?? [] })),
    filters: c.filters ?? [],
    order: c.order,
    window,
    date_from: RANGE.date_from,
    date_to: RANGE.date_to,
    ...(c.breakdown ? { breakdown: c.breakdown, breakdown_limit: c.breakdown_limit ?? 25 } : {}),
  });
  expect(res.status).toBe(200);
  const expected = oracleFunnel(events, {
    teamId: project.id,
    fromS: RANGE.fromS,
    toS: RANGE.toS,
    steps: c.steps,
    filters: c.filters,
    windowS: window.value * UNIT[window.unit],
    order: c.order,
    breakdown: c.breakdown,
    limit: c.breakdown_limit,
  });
  expect(res.body.results.map((r: any) => r.breakdown_value)).toEqual(expected.map((e) => e.breakdown));
  for (const [i, exp] of expected.entries()) {
    const steps = res.body.results[i].steps;
    expect(steps.map((s: any) => s.count)).toEqual(exp.steps.map((s) => s.count));
    for (const [j, s] of exp.steps.entries()) {
      const got = steps[j];
      const first = exp.steps[0]!.count;
      const prev = j === 0 ? s.count : exp.steps[j - 1]!.count;
      expect(got.conversion_from_first).toBeCloseTo(first ? s.count / first : 0, 12);
      expect(got.conversion_from_previous).toBeCloseTo(prev ? s.count / prev : 0, 12);
      expect(got.drop_off).toBe(prev - s.count);
      if (s.avg === null) expect(got.avg_seconds_from_previous).toBeNull();
      else expect(got.avg_seconds_from_previous).toBeCloseTo(s.avg, 6);
      expect(got.median_seconds_from_previous).toBe(s.median);
    }
  }
  return { res, expected };
}

const THREE: OracleStep[] = [{ event: "signup" }, { event: "activate" }, { event: "purchase" }];

describe("funnels vs oracle", () => {
  test("ordered, 3 steps, 14-day window, with times", async () => {
    const { expected, res } = await check({ steps: THREE, order: "ordered" });
    expect(res.body.method).toBe("array functions");
    // Non-trivial: users drop at each step and times exist.
    const counts = expected[0]!.steps.map((s) => s.count);
    expect(counts[0]!).toBeGreaterThan(counts[1]!);
    expect(counts[1]!).toBeGreaterThan(counts[2]!);
    expect(counts[2]!).toBeGreaterThan(0);
    expect(expected[0]!.steps[1]!.median).not.toBeNull();
  });

  test("ordered: the window changes the answer (1 hour vs 14 days)", async () => {
    const short = await check({ steps: THREE, order: "ordered", window: { value: 1, unit: "hour" } });
    const long = await check({ steps: THREE, order: "ordered" });
    expect(short.expected[0]!.steps[1]!.count).toBeLessThan(long.expected[0]!.steps[1]!.count);
  });

  test("ordered, windows in seconds and minutes", async () => {
    await check({ steps: THREE, order: "ordered", window: { value: 5400, unit: "second" } });
    await check({ steps: THREE, order: "ordered", window: { value: 90, unit: "minute" } });
  });

  test("strict: no other event in between", async () => {
    const { res, expected } = await check({ steps: THREE, order: "strict", window: { value: 7, unit: "day" } });
    expect(res.body.notes).toContain(NOTES.strict);
    const ordered = oracleFunnel(events, { teamId: project.id, fromS: RANGE.fromS, toS: RANGE.toS, steps: THREE, windowS: 7 * 86400, order: "ordered" });
    expect(expected[0]!.steps[1]!.count).toBeLessThan(ordered[0]!.steps[1]!.count);
  });

  test("unordered: any order, no times", async () => {
    const { res, expected } = await check({ steps: THREE, order: "unordered", window: { value: 2, unit: "day" } });
    expect(res.body.notes).toContain(NOTES.unordered);
    const ordered = oracleFunnel(events, { teamId: project.id, fromS: RANGE.fromS, toS: RANGE.toS, steps: THREE, windowS: 2 * 86400, order: "ordered" });
    expect(expected[0]!.steps[2]!.count).toBeGreaterThan(ordered[0]!.steps[2]!.count);
  });

  test("step filters and global filters", async () => {
    await check({
      steps: [{ event: "$pageview", filters: [{ key: "$current_url", operator: "contains", value: "/pricing" }] }, { event: "signup" }, { event: "purchase", filters: [{ key: "amount", operator: "gt", value: 200 }] }],
      filters: [{ key: "plan", operator: "neq", value: "enterprise" }],
      order: "ordered",
    });
  });

  test("2 steps and 5 steps", async () => {
    await check({ steps: [{ event: "signup" }, { event: "purchase" }], order: "ordered" });
    await check({ steps: [{ event: "$pageview" }, { event: "search" }, { event: "signup" }, { event: "activate" }, { event: "purchase" }], order: "ordered", window: { value: 3, unit: "day" } });
    await check({ steps: [{ event: "$pageview" }, { event: "search" }, { event: "signup" }, { event: "activate" }, { event: "purchase" }], order: "strict", window: { value: 3, unit: "day" } });
  });

  test("10 steps (the most allowed), every order, with filters and a breakdown", async () => {
    const names = ["$pageview", "search", "signup", "$pageview", "activate", "$autocapture", "purchase", "$pageview", "search", "purchase"];
    const steps: OracleStep[] = names.map((event, i) => (i % 3 === 0 ? { event, filters: [{ key: "plan", operator: "neq", value: "enterprise" }] } : { event }));
    for (const order of ["ordered", "strict", "unordered"] as const) await check({ steps, order, window: { value: 30, unit: "day" }, breakdown: "plan" });
  });

  for (const order of ["ordered", "strict", "unordered"] as const) {
    test(`breakdown by $browser (value at the first step), top 3 + $other, ${order}`, async () => {
      const { expected } = await check({ steps: THREE, order, breakdown: "$browser", breakdown_limit: 3 });
      expect(expected.map((e) => e.breakdown)).toContain("$other");
    });
  }

  test("breakdown includes $none", async () => {
    const { expected } = await check({ steps: [{ event: "signup" }, { event: "activate" }], order: "ordered", breakdown: "$browser", breakdown_limit: 50 });
    expect(expected.map((e) => e.breakdown)).toContain("$none");
  });
});
