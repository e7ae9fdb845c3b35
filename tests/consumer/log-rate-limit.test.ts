import { expect, test } from "bun:test";
import { LogRateLimit } from "../../lib/log/rate-limit.ts";

test("one line per key per interval, then the count of lines left out", () => {
  let now = 0;
  const limit = new LogRateLimit(10_000, () => now);
  expect(limit.allow("a")).toEqual({ suppressed: 0 });
  expect(limit.allow("a")).toBeNull();
  expect(limit.allow("b")).toEqual({ suppressed: 0 });
  now = 9_999;
  expect(limit.allow("a")).toBeNull();
  now = 10_000;
  expect(limit.allow("a")).toEqual({ suppressed: 2 });
  expect(limit.allow("a")).toBeNull();
});
