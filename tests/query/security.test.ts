/** Injection and isolation: hostile names, keys, values and dates are answered correctly or rejected with 400,
 * and a project's key only ever sees its own project's events. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { GeneratedEvent } from "../../lib/events/generator.ts";
import { createHarness, fixtureEvents, HOSTILE, post, type Harness, type Project } from "./fixtures.ts";

let h: Harness;
let a: Project;
let b: Project;
let app: ReturnType<Harness["app"]>;
const NAMES = HOSTILE.filter((s) => !/[\u0000-\u001f\u007f]/.test(s));
const T0 = Date.parse("2024-11-01T12:00:00Z") / 1000;

function handmade(teamId: number): GeneratedEvent[] {
  const out: GeneratedEvent[] = [];
  // Hostile event name i occurs i + 1 times, with a hostile property key and value, so counts identify them.
  NAMES.forEach((name, i) => {
    for (let n = 0; n <= i; n++) {
      out.push({
        uuid: crypto.randomUUID(),
        teamId,
        event: name,
        distinctId: `u${n}`,
        timestamp: T0 + i * 60 + n,
        msec: 0,
        properties: { [name]: HOSTILE[(i + n) % HOSTILE.length]!, marker: "hostile" },
        duplicate: false,
      });
    }
  });
  return out;
}

let aEvents: GeneratedEvent[];

beforeAll(async () => {
  h = await createHarness();
  a = await h.createProject();
  b = await h.createProject();
  aEvents = handmade(a.id);
  await h.load(aEvents);
  await h.load(fixtureEvents(b.id, 99, 50, 2000).map((e) => ({ ...e, event: `b-only ${e.event}` })));
  app = h.app({ cache: null });
});
afterAll(() => h.close());

const RANGE = { date_from: "2024-10-01", date_to: "2024-11-30" };
const total = async (key: string, body: Record<string, unknown>) => {
  const res = await post(app, "/api/trends", key, { ...RANGE, ...body });
  expect(res.status).toBe(200);
  return res.body.series.reduce((s: number, x: any) => s + x.total, 0) as number;
};

describe("injection", () => {
  test("hostile event names are matched literally", async () => {
    for (const [i, name] of NAMES.entries()) expect(await total(a.key, { series: [{ event: name }] })).toBe(i + 1);
  });

  test("hostile property keys and values (including \\0 in values) filter literally", async () => {
    for (const [i, key] of NAMES.entries()) {
      for (const value of HOSTILE) {
        const expected = aEvents.filter((e) => e.properties[key] === value).length;
        const got = await total(a.key, { series: [{ event: null, filters: [{ key, operator: "eq", value }] }] });
        expect(got).toBe(expected);
      }
      expect(await total(a.key, { series: [{ event: null, filters: [{ key, operator: "is_set" }] }] })).toBe(i + 1);
    }
  });

  test("hostile values in contains / in / regex / breakdown", async () => {
    const all = aEvents.length;
    expect(await total(a.key, { series: [{ event: null, filters: [{ key: "marker", operator: "contains", value: "' OR 1=1 --" }] }] })).toBe(0);
    expect(await total(a.key, { series: [{ event: null, filters: [{ key: "marker", operator: "in", value: ["x') OR ('1'='1", "hostile"] }] }] })).toBe(all);
    expect(await total(a.key, { series: [{ event: null, filters: [{ key: "marker", operator: "regex", value: "^host.*' UNION" }] }] })).toBe(0);
    const res = await post(app, "/api/trends", a.key, { ...RANGE, series: [{ event: null }], breakdown: ["x' UNION ALL SELECT 1 --"] });
    expect(res.status).toBe(200);
    expect(res.body.series.map((s: any) => s.breakdown_value)).toEqual([["$none"]]);
    expect(res.body.series[0].total).toBe(all);
  });

  test("control characters in names and keys, and hostile dates, are rejected with 400", async () => {
    const cases: unknown[] = [
      { series: [{ event: "a\u0000b" }] },
      { series: [{ event: null, filters: [{ key: "k\u0000", operator: "is_set" }] }] },
      { series: [{ event: null }], breakdown: ["x\ny"] },
      { series: [{ event: null }], date_from: "2024-01-01' OR 1=1 --" },
      { series: [{ event: null }], date_to: "-7d; DROP TABLE events" },
      { series: [{ event: null }], timezone: "UTC', 'x" },
      { series: [{ event: null }], interval: "day UNION" },
      { series: [{ event: null, math: "sum(amount)" }] },
      { series: [{ event: null, filters: [{ key: "k", operator: "eq); DROP", value: 1 }] }] },
    ];
    for (const body of cases) {
      const res = await post(app, "/api/trends", a.key, body);
      expect(res.status).toBe(400);
      expect(res.body.type).toBe("invalid_request");
      expect(typeof res.body.detail).toBe("string");
      expect(typeof res.body.path).toBe("string");
    }
    const f = await post(app, "/api/funnels", a.key, { steps: [{ event: "x" }, { event: "y\u0000" }] });
    expect(f.status).toBe(400);
    expect(f.body.path).toBe("steps.1.event");
  });

  test("a bad regex is a 400, and no SQL leaks", async () => {
    const res = await post(app, "/api/trends", a.key, { ...RANGE, series: [{ event: null, filters: [{ key: "marker", operator: "regex", value: "(" }] }] });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("invalid_regex");
    expect(JSON.stringify(res.body)).not.toMatch(/SELECT|team_id|DB::Exception/);
  });
});

describe("isolation", () => {
  test("project A's key never sees project B's events", async () => {
    expect(await total(a.key, { series: [{ event: "b-only $pageview" }] })).toBe(0);
    expect(await total(a.key, { series: [{ event: null }] })).toBe(aEvents.length);
    expect(await total(b.key, { series: [{ event: "b-only $pageview" }] })).toBeGreaterThan(0);
    const f = await post(app, "/api/funnels", a.key, { ...RANGE, steps: [{ event: "b-only signup" }, { event: "b-only activate" }] });
    expect(f.status).toBe(200);
    expect(f.body.results[0].steps[0].count).toBe(0);
  });

  test("naming another project is 403; a team_id field is rejected", async () => {
    const res = await post(app, "/api/trends", a.key, { ...RANGE, project_id: b.id, series: [{ event: null }] });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("forbidden_project");
    const own = await post(app, "/api/trends", a.key, { ...RANGE, project_id: a.id, series: [{ event: null }] });
    expect(own.status).toBe(200);
    const team = await post(app, "/api/trends", a.key, { ...RANGE, team_id: b.id, series: [{ event: null }] });
    expect(team.status).toBe(400);
  });
});
