/**
 * The query API's edges answer 4xx with a code, never 500: numbers the SQL cannot inline (1e21, a window of
 * 1e21 days), what `Date.toISOString()` writes (fractional seconds and `Z`), bodies over the cap. And the SQL
 * it logs leaves out filter values (personal data).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import pino from "pino";
import { createHarness, post, type Harness, type Project } from "./fixtures.ts";

let h: Harness;
let p: Project;
let app: ReturnType<Harness["app"]>;

beforeAll(async () => {
  h = await createHarness();
  p = await h.createProject();
  app = h.app({ cache: null });
});
afterAll(() => h.close());

const trend = (extra: Record<string, unknown>) => ({ series: [{ event: "$pageview" }], date_from: "2024-11-01", date_to: "2024-11-02", ...extra });
const funnel = (extra: Record<string, unknown>) => ({ steps: [{ event: "signup" }, { event: "purchase" }], date_from: "2024-11-01", date_to: "2024-11-02", ...extra });

describe("numbers", () => {
  const huge = [1e21, -1e21, 2 ** 53, 1.7976931348623157e308];
  for (const value of huge) {
    test(`filter value ${value}: gt/lt answer 400 naming the field; eq/in compare it as text`, async () => {
      for (const operator of ["gt", "lt"]) {
        const res = await post(app, "/api/trends", p.key, trend({ filters: [{ key: "amount", operator, value }] }));
        expect(res.status).toBe(400);
        expect(res.body).toMatchObject({ code: "invalid_request", path: "filters.0.value" });
      }
      const eq = await post(app, "/api/trends", p.key, trend({ filters: [{ key: "amount", operator: "eq", value }, { key: "x", operator: "in", value: [value] }] }));
      expect(eq.status).toBe(200);
    });
  }
  test("a fractional filter value is fine", async () => {
    expect((await post(app, "/api/trends", p.key, trend({ filters: [{ key: "amount", operator: "gt", value: 0.5 }] }))).status).toBe(200);
  });
  test("funnel window past 365 days, or one SQL cannot inline: 400 on window.value", async () => {
    for (const window of [{ value: 1e21, unit: "day" }, { value: 366, unit: "day" }, { value: 365 * 86400 + 1, unit: "second" }, { value: 2 ** 53, unit: "hour" }]) {
      const res = await post(app, "/api/funnels", p.key, funnel({ window }));
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: "invalid_request", path: "window.value" });
    }
    expect((await post(app, "/api/funnels", p.key, funnel({ window: { value: 365, unit: "day" } }))).status).toBe(200);
  });
  test("breakdown_limit and project_id out of range: 400", async () => {
    expect((await post(app, "/api/trends", p.key, trend({ breakdown: ["$browser"], breakdown_limit: 1e21 }))).status).toBe(400);
    expect((await post(app, "/api/trends", p.key, trend({ project_id: 1e21 }))).status).toBe(403); // not the key's project
  });
});

describe("date-times", () => {
  test("what Date.toISOString() writes is accepted: fractional seconds and Z", async () => {
    const res = await post(app, "/api/trends", p.key, trend({ date_from: "2024-10-01T00:00:00.000Z", date_to: new Date(Date.parse("2024-10-02T00:00:00Z")).toISOString() }));
    expect(res.status).toBe(200);
    expect(res.body.date_from).toBe("2024-10-01T00:00:00.000Z");
  });
  test("fractions are floored for date_from and rounded up for date_to; 1 to 9 digits, with offsets too", async () => {
    const res = await post(app, "/api/trends", p.key, trend({ interval: "hour", date_from: "2024-10-01T00:00:00.5+02:00", date_to: "2024-10-01T01:59:59.123456789Z" }));
    expect(res.status).toBe(200);
    expect(res.body.date_from).toBe("2024-09-30T22:00:00.000Z");
    expect(res.body.date_to).toBe("2024-10-01T02:00:00.000Z");
  });
  test("malformed fractions are 400 naming the field", async () => {
    for (const bad of ["2024-10-01T00:00:00.Z", "2024-10-01T00:00:00.1234567890Z", "2024-10-01T00:00.5Z"]) {
      const res = await post(app, "/api/trends", p.key, trend({ date_from: bad }));
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ path: "date_from" });
    }
  });
});

describe("body cap", () => {
  test("a body over the cap: 413 request_too_large, declared or streamed; under it is served", async () => {
    const small = h.app({ cache: null, maxBodyBytes: 4096 });
    const big = JSON.stringify(trend({ filters: [{ key: "k", operator: "in", value: Array.from({ length: 500 }, (_, i) => `value-${i}`) }] }));
    const declared = await post(small, "/api/trends", p.key, big);
    expect(declared.status).toBe(413);
    expect(declared.body).toMatchObject({ type: "invalid_request", code: "request_too_large" });
    // Without Content-Length (chunked), counted while it streams.
    const bytes = new TextEncoder().encode(big);
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < bytes.length; i += 1000) c.enqueue(bytes.slice(i, i + 1000));
        c.close();
      },
    });
    const streamed = await small.request("/api/trends", { method: "POST", body: stream, headers: { "content-type": "application/json", authorization: `Bearer ${p.key}` } });
    expect(streamed.status).toBe(413);
    expect((await post(small, "/api/trends", p.key, trend({}))).status).toBe(200);
  });
});

describe("logs leave out filter values", () => {
  test("a failing query is logged with its SQL shape, values as ?", async () => {
    const lines: string[] = [];
    const log = pino({ level: "info" }, { write: (l: string) => void lines.push(l) });
    // A runner that fails the way ClickHouse does, quoting the query.
    const failing = h.app({
      cache: null,
      log,
      run: async (q) => {
        throw Object.assign(new Error(`Code: 43. DB::Exception: Illegal types in '${q.text.slice(0, 200)}' and 'secret-email@example.com'`), { code: "43" });
      },
    });
    const res = await post(failing, "/api/trends", p.key, trend({ filters: [{ key: "email", operator: "eq", value: "secret-email@example.com" }, { key: "age", operator: "gt", value: 4242 }] }));
    expect(res.status).toBe(500);
    const text = lines.join("");
    expect(text).toContain("ClickHouse query failed");
    expect(text).toContain("has(prop_keys, ?)");
    expect(text).not.toContain("secret-email");
    expect(text).not.toContain("4242");
  });
});
