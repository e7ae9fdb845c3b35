/** Millisecond event order in funnels: the README's example (a $pageview, then a batch signup + purchase stored at
 * the very same instant) converts fully; events in one second are ordered by their milliseconds. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { GeneratedEvent } from "../../lib/events/generator.ts";
import { createHarness, post, type Harness, type Project } from "./fixtures.ts";

let h: Harness;
let project: Project;
const T = Date.parse("2024-11-01T12:00:00Z") / 1000;

function ev(distinctId: string, event: string, timestamp: number, msec: number, uuid: string): GeneratedEvent {
  return { uuid, teamId: project.id, event, distinctId, timestamp, msec, properties: {}, duplicate: false };
}

beforeAll(async () => {
  h = await createHarness();
  project = await h.createProject();
  // Rows are stored purchase before signup (and the purchase's uuid sorts first), so neither the storage order
  // nor the uuid can be what puts signup first.
  await h.load([
    ev("readme", "$pageview", T, 100, "00000000-0000-4000-8000-000000000003"),
    ev("readme", "purchase", T, 250, "00000000-0000-4000-8000-000000000001"),
    ev("readme", "signup", T, 250, "00000000-0000-4000-8000-000000000002"),
    // Same second, purchase one millisecond before signup: not a conversion to purchase.
    ev("early", "$pageview", T, 100, "00000000-0000-4000-8000-000000000013"),
    ev("early", "purchase", T, 249, "00000000-0000-4000-8000-000000000011"),
    ev("early", "signup", T, 250, "00000000-0000-4000-8000-000000000012"),
  ]);
});
afterAll(() => h.close());

const funnel = (order: string) =>
  post(h.app({ cache: null }), "/api/funnels", project.key, {
    steps: [{ event: "$pageview" }, { event: "signup" }, { event: "purchase" }],
    order,
    date_from: "2024-10-30",
    date_to: "2024-11-02",
  });

describe("event order within a second", () => {
  test("README example: steps at the same instant count in step order (1/1/1); ms order otherwise", async () => {
    const res = await funnel("ordered");
    expect(res.status).toBe(200);
    // Two persons start; both sign up; only `readme` purchases at or after signing up.
    expect(res.body.results[0].steps.map((s: any) => s.count)).toEqual([2, 2, 1]);
    expect(res.body.results[0].steps[1].avg_seconds_from_previous).toBeCloseTo(0.15, 9);
    expect(res.body.results[0].steps[2].median_seconds_from_previous).toBe(0);
  });

  test("strict and unordered use the same order", async () => {
    const strict = await funnel("strict");
    // `early`'s purchase comes between its page view and its signup: no strict run past step 1.
    expect(strict.body.results[0].steps.map((s: any) => s.count)).toEqual([2, 1, 1]);
    const unordered = await funnel("unordered");
    expect(unordered.body.results[0].steps.map((s: any) => s.count)).toEqual([2, 2, 2]);
  });
});
