import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertLoopback, attack, encodeTarget, readResults, vegetaPath, VegetaError } from "../../bench/lib/vegeta.ts";

// A tiny server standing in for capture: records what arrives, answers 200, or 503 for /busy.
const seen: { path: string; body: string; type: string | null }[] = [];
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    const path = new URL(req.url).pathname;
    seen.push({ path, body: await req.text(), type: req.headers.get("content-type") });
    return new Response(path === "/busy" ? "busy" : "ok", { status: path === "/busy" ? 503 : 200 });
  },
});
const base = `http://127.0.0.1:${server.port}`;
const tmp = await mkdtemp(join(tmpdir(), "vegeta-test-"));
afterAll(async () => {
  server.stop(true);
  await rm(tmp, { recursive: true, force: true });
});

describe("attack", () => {
  test("200 req/s for 2 s: every request sent once, bodies intact, report parsed", async () => {
    seen.length = 0;
    // ~2 KB bodies: 800 KB of targets in all, well past a pipe's buffer, so writing them exercises backpressure.
    const pad = "x".repeat(2000);
    const report = await attack({
      rate: 200,
      durationS: 2,
      target: (i) => ({
        method: "POST",
        url: `${base}/e`,
        header: { "Content-Type": "application/json" },
        body: JSON.stringify({ i, pad }),
      }),
    });
    expect(report.requests).toBe(400);
    expect(report.status_codes).toEqual({ "200": 400 });
    expect(report.success).toBe(1);
    expect(report.errors).toEqual([]);
    expect(report.rate).toBeGreaterThan(180);
    expect(report.rate).toBeLessThan(220);
    expect(report.duration_s).toBeGreaterThan(1.9);
    expect(report.duration_s).toBeLessThan(2.1);
    const l = report.latencies;
    expect(l.p50).toBeGreaterThan(0);
    expect(l.p50).toBeLessThanOrEqual(l.p90);
    expect(l.p90).toBeLessThanOrEqual(l.p95);
    expect(l.p95).toBeLessThanOrEqual(l.p99);
    expect(l.p99).toBeLessThanOrEqual(l.max);
    // Milliseconds, not vegeta's nanoseconds: a loopback request to Bun takes well under a second.
    expect(l.max).toBeLessThan(1000);

    expect(seen).toHaveLength(400);
    const indexes = seen.map((s) => (JSON.parse(s.body) as { i: number; pad: string }).i).sort((a, b) => a - b);
    expect(indexes).toEqual(Array.from({ length: 400 }, (_, i) => i));
    expect(seen.every((s) => s.type === "application/json" && (JSON.parse(s.body) as { pad: string }).pad === pad)).toBe(true);
  });

  test("status codes are counted per code, and per-request results can be read back", async () => {
    seen.length = 0;
    const results = join(tmp, "mixed.bin");
    const report = await attack({
      rate: 100,
      durationS: 1,
      resultsPath: results,
      target: (i) => ({ method: "GET", url: `${base}/${i % 4 === 0 ? "busy" : "ok"}` }),
    });
    expect(report.requests).toBe(100);
    expect(report.status_codes).toEqual({ "200": 75, "503": 25 });
    expect(report.success).toBeCloseTo(0.75, 5);
    const rows = await readResults(results);
    expect(rows).toHaveLength(100);
    expect(rows.filter((r) => r.code === 503)).toHaveLength(25);
    expect(rows.every((r) => r.latency > 0 && r.latency < 1000 && Number.isFinite(r.timestamp))).toBe(true);
  });

  test("a failing target generator stops the attack with its own error", async () => {
    await expect(
      attack({
        rate: 50,
        durationS: 1,
        target: (i) => {
          if (i === 10) throw new Error("generator broke");
          return { method: "GET", url: `${base}/ok` };
        },
      }),
    ).rejects.toThrow("generator broke");
  });
});

describe("targets", () => {
  test("only http://127.0.0.1 is ever attacked", async () => {
    expect(() => assertLoopback("http://example.com/")).toThrow(VegetaError);
    expect(() => assertLoopback("http://localhost:8000/")).toThrow(VegetaError);
    expect(() => assertLoopback("https://127.0.0.1:8000/")).toThrow(VegetaError);
    expect(() => assertLoopback("http://127.0.0.1.example.com/")).toThrow(VegetaError);
    expect(() => assertLoopback("http://u:p@127.0.0.1:8000/")).toThrow(VegetaError);
    expect(() => assertLoopback("http://127.0.0.1:80001/")).toThrow(VegetaError);
    expect(() => assertLoopback("http://127.0.0.1:8000/e")).not.toThrow();
    // The check runs before vegeta starts: nothing is sent.
    await expect(attack({ rate: 10, durationS: 1, target: () => ({ method: "GET", url: "http://10.0.0.1/" }) })).rejects.toThrow(VegetaError);
  });

  test("JSON target format with base64 body and list-valued headers", () => {
    const line = JSON.parse(encodeTarget({ method: "POST", url: `${base}/e`, header: { "X-A": "1", "X-B": ["2", "3"] }, body: "héllo" }));
    expect(line).toEqual({ method: "POST", url: `${base}/e`, header: { "X-A": ["1"], "X-B": ["2", "3"] }, body: Buffer.from("héllo").toString("base64") });
    expect(JSON.parse(encodeTarget({ method: "GET", url: `${base}/` }))).toEqual({ method: "GET", url: `${base}/` });
  });

  test("a missing binary is reported with the way to get it", () => {
    expect(() => vegetaPath(join(tmp, "no-vegeta"))).toThrow(/not found/);
  });
});
