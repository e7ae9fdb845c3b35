import { describe, expect, test } from "bun:test";
import { clockSkewMs, MAX_EVENT_MS, MAX_FUTURE_MS, MIN_EVENT_MS, parseTime, resolveEventTime } from "../../lib/events/event-time.ts";

const NOW = Date.parse("2024-05-01T12:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString();

describe("parseTime", () => {
  test("ISO strings, epoch ms numbers and epoch ms digit strings", () => {
    expect(parseTime("2024-05-01T12:00:00.000Z")).toBe(NOW);
    expect(parseTime("2024-05-01T14:00:00+02:00")).toBe(NOW);
    expect(parseTime(NOW)).toBe(NOW);
    expect(parseTime(String(NOW))).toBe(NOW);
    expect(parseTime("not a date")).toBeNaN();
    expect(parseTime(undefined)).toBeNaN();
  });
});

describe("clock skew", () => {
  test("server minus client send time; 0 without a usable sent_at", () => {
    expect(clockSkewMs(iso(NOW - 3_600_000), NOW)).toBe(3_600_000);
    expect(clockSkewMs(NOW + 5000, NOW)).toBe(-5000);
    expect(clockSkewMs(undefined, NOW)).toBe(0);
    expect(clockSkewMs("garbage", NOW)).toBe(0);
  });

  test("a client 1 h behind: every event moves by the same skew, order and gaps preserved", () => {
    const clientNow = NOW - 3_600_000;
    const skew = clockSkewMs(iso(clientNow), NOW);
    const events = [clientNow - 5000, clientNow - 3000, clientNow - 1].map((t) => ({ timestamp: iso(t) }));
    const times = events.map((e) => resolveEventTime(e, NOW, skew).ms);
    expect(times).toEqual([NOW - 5000, NOW - 3000, NOW - 1]);
  });
});

describe("resolveEventTime", () => {
  test("no timestamp: now", () => {
    expect(resolveEventTime({}, NOW, 123)).toEqual({ ms: NOW });
  });
  test("offset wins: now - offset, skew ignored", () => {
    expect(resolveEventTime({ offset: 1500, timestamp: iso(0) }, NOW, 99_999)).toEqual({ ms: NOW - 1500 });
  });
  test("unparseable timestamp: now, noted", () => {
    expect(resolveEventTime({ timestamp: "tuesday" }, NOW, 0)).toEqual({ ms: NOW, note: "unparseable" });
  });
  test("outside what DateTime holds (pre-1970, past 2106, past Date's range, negative years): now, noted", () => {
    for (const timestamp of [9e15, -1, "1969-12-31T23:59:59.999Z", "1900-01-01T00:00:00Z", "-000001-01-01T00:00:00Z", "+010000-01-01T00:00:00Z", "2106-02-07T06:28:16Z"]) {
      expect(resolveEventTime({ timestamp }, NOW, 0)).toEqual({ ms: NOW, note: "out_of_range" });
    }
    // An offset larger than the time since 1970, and a skew that pushes a valid time before 1970.
    expect(resolveEventTime({ offset: NOW + 1 }, NOW, 0)).toEqual({ ms: NOW, note: "out_of_range" });
    expect(resolveEventTime({ timestamp: "1970-01-01T00:00:01Z" }, NOW, -2000)).toEqual({ ms: NOW, note: "out_of_range" });
  });
  test("fractions of a millisecond are dropped (UUIDv7 needs whole ms)", () => {
    expect(resolveEventTime({ timestamp: 1714564800000.7 }, NOW, 0)).toEqual({ ms: 1714564800000 });
    expect(resolveEventTime({ timestamp: 6.76e-275 }, NOW, 0)).toEqual({ ms: 0 });
    expect(resolveEventTime({ offset: 1.5 }, NOW, 0)).toEqual({ ms: NOW - 2 });
  });
  test("the edges of DateTime's range are kept", () => {
    expect(resolveEventTime({ timestamp: MIN_EVENT_MS }, NOW, 0)).toEqual({ ms: MIN_EVENT_MS });
    expect(resolveEventTime({ timestamp: MAX_EVENT_MS }, MAX_EVENT_MS, 0)).toEqual({ ms: MAX_EVENT_MS });
  });
  test("more than 23 h ahead after correction: clamped to now, noted; just under stays", () => {
    expect(resolveEventTime({ timestamp: NOW + MAX_FUTURE_MS + 1 }, NOW, 0)).toEqual({ ms: NOW, note: "clamped_future" });
    expect(resolveEventTime({ timestamp: NOW + MAX_FUTURE_MS }, NOW, 0)).toEqual({ ms: NOW + MAX_FUTURE_MS });
    // A client clock 2 days ahead with sent_at: the skew brings it back, no clamping needed.
    const ahead = NOW + 2 * 86_400_000;
    expect(resolveEventTime({ timestamp: ahead - 10 }, NOW, clockSkewMs(ahead, NOW))).toEqual({ ms: NOW - 10 });
  });
  test("past timestamps are kept (historical imports)", () => {
    expect(resolveEventTime({ timestamp: "2020-01-01T00:00:00Z" }, NOW, 0)).toEqual({ ms: Date.parse("2020-01-01T00:00:00Z") });
  });
});
