import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { histogram, lineChart, writeChart } from "../../bench/lib/chart.ts";

// vega marks each drawn item with an aria role description: one "line mark" path per series, one "point"
// per data point, one "bar" per histogram bin. Counting them checks what was drawn, not just that it rendered.
const count = (svg: string, role: string) => svg.split(`aria-roledescription="${role}"`).length - 1;
const barCounts = (svg: string) => [...svg.matchAll(/aria-roledescription="bar"[^>]*/g)].length;

const tmp = await mkdtemp(join(tmpdir(), "chart-test-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe("lineChart", () => {
  const series = [
    { name: "p50", points: [[100, 1.2], [1000, 2.5], [5000, 9]] as [number, number][] },
    { name: "p99", points: [[100, 4], [1000, 12], [5000, 180]] as [number, number][] },
    { name: "max", points: [[100, 30], [1000, 90]] as [number, number][] },
  ];

  test("renders one line per series and one point per data point, with the titles", async () => {
    const svg = await lineChart({ title: "Capture latency vs offered rate", xTitle: "offered rate (req/s)", yTitle: "latency (ms)", series });
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
    expect(svg).toContain(">Capture latency vs offered rate</text>");
    expect(svg).toContain(">offered rate (req/s)</text>");
    expect(svg).toContain(">latency (ms)</text>");
    expect(count(svg, "line mark")).toBe(3);
    expect(count(svg, "point")).toBe(8);
    // Legend in the caller's order, not sorted.
    const legend = [...svg.matchAll(/role-legend-label[^>]*><text[^>]*>([^<]*)</g)].map((m) => m[1]);
    expect(legend).toEqual(["p50", "p99", "max"]);
  });

  test("log scale on y, and titles are escaped", async () => {
    const svg = await lineChart({ title: "p99 < 200 ms & lag", xTitle: "x", yTitle: "y", series, logY: true });
    expect(svg).toContain("p99 &lt; 200 ms &amp; lag");
    expect(svg).toContain("for a log scale");
    expect(count(svg, "line mark")).toBe(3);
  });

  test("rejects what it cannot draw faithfully", async () => {
    await expect(lineChart({ title: "t", xTitle: "x", yTitle: "y", series: [] })).rejects.toThrow(/at least one series/);
    await expect(
      lineChart({ title: "t", xTitle: "x", yTitle: "y", logY: true, series: [{ name: "a", points: [[1, 0]] }] }),
    ).rejects.toThrow(/logY needs y > 0/);
    await expect(
      lineChart({ title: "t", xTitle: "x", yTitle: "y", series: [{ name: "a", points: [[1, Number.NaN]] }] }),
    ).rejects.toThrow(/not finite/);
    await expect(
      lineChart({ title: "t", xTitle: "x", yTitle: "y", series: [{ name: "a", points: [[1, 1]] }, { name: "a", points: [[1, 2]] }] }),
    ).rejects.toThrow(/duplicate/);
  });
});

describe("histogram", () => {
  test("draws exactly `bins` bars with the right counts", async () => {
    const values = [1, 2, 2, 3, 3, 3, 10];
    const svg = await histogram({ title: "Query latency", values, bins: 5, xTitle: "latency (ms)" });
    expect(svg).toContain(">Query latency</text>");
    expect(svg).toContain(">latency (ms)</text>");
    expect(barCounts(svg)).toBe(5);
    // Bins of width 1.8 over [1, 10]: [1,2.8) holds 1,2,2; [2.8,4.6) holds 3,3,3; the last holds 10.
    const counts = [...svg.matchAll(/aria-label="[^"]*count: (\d+)[^"]*" role="graphics-symbol" aria-roledescription="bar"/g)].map((m) => Number(m[1]));
    expect(counts).toEqual([3, 3, 0, 0, 1]);
  });

  test("a single repeated value still gives one drawable bin", async () => {
    const svg = await histogram({ title: "flat", values: [7, 7, 7], bins: 1 });
    expect(barCounts(svg)).toBe(1);
    expect(svg).toContain("count: 3");
  });

  test("rejects bad input", async () => {
    await expect(histogram({ title: "t", values: [], bins: 3 })).rejects.toThrow(/no values/);
    await expect(histogram({ title: "t", values: [1], bins: 0 })).rejects.toThrow(/bins/);
    await expect(histogram({ title: "t", values: [1, Infinity], bins: 2 })).rejects.toThrow(/not finite/);
  });
});

test("writeChart creates the folder and writes the SVG", async () => {
  const svg = await histogram({ title: "written", values: [1, 2, 3], bins: 3 });
  const path = await writeChart(join(tmp, "nested", "dir", "h.svg"), svg);
  expect(path).toBe(join(tmp, "nested", "dir", "h.svg"));
  expect(await readFile(path, "utf8")).toBe(svg);
});
