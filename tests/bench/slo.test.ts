import { describe, expect, test } from "bun:test";
import { captureN, queryN } from "../../bench/slo.ts";

const stage = (events_per_s: number, pass: boolean) => ({ events_per_s, pass });

describe("captureN", () => {
  test("the highest rate when every stage passed", () => {
    expect(captureN([stage(100, true), stage(1000, true), stage(5000, true)])?.events_per_s).toBe(5000);
  });

  test("stops at the first failing rate: a pass above it does not count", () => {
    expect(captureN([stage(5000, true), stage(5500, false), stage(6000, true)])?.events_per_s).toBe(5000);
  });

  test("orders by rate whatever order the stages ran in", () => {
    expect(captureN([stage(6000, false), stage(4500, true), stage(5000, true)])?.events_per_s).toBe(5000);
  });

  test("null when the lowest rate failed or there is no stage", () => {
    expect(captureN([stage(5500, false), stage(6000, true)])).toBeNull();
    expect(captureN([])).toBeNull();
  });
});

describe("queryN", () => {
  const run = (rate: number, pass: boolean, shed = 0) => ({ rate, file: `f${rate}`, kinds: [{ kind: "trend", requests: 10, shed, errors: 0, p95: 100, pass }] });
  test("the highest rate up to which every run passed with nothing shed", () => {
    expect(queryN([run(0.5, true), run(1, true), run(2, true, 3)])?.rate).toBe(1);
    expect(queryN([run(2, true), run(1, false), run(3, true)])).toBeNull();
    expect(queryN([run(1, true, 1)])).toBeNull();
    expect(queryN([])).toBeNull();
  });
});
