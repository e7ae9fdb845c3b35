import { afterAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Progress,
  clickhouseVersion,
  formatProgress,
  gitCommit,
  kafkaVersion,
  writeResult,
  type ProgressSink,
  type ResultFile,
} from "../../bench/lib/results.ts";

const tmp = await mkdtemp(join(tmpdir(), "results-test-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe("writeResult", () => {
  test("writes <name>-<UTC stamp>.json with commit, machine, versions and figures", async () => {
    const state = join(tmp, "state");
    await mkdir(join(state, "kafka", "libs"), { recursive: true });
    await writeFile(join(state, "kafka", "libs", "kafka-clients-4.3.1.jar"), "");
    await writeFile(join(state, "kafka", "libs", "kafka-raft-4.3.1.jar"), "");
    // A server that answers ClickHouse's HTTP interface for `SELECT version()` only.
    const ch = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req) =>
        new URL(req.url).searchParams.get("query") === "SELECT version()" ? new Response("26.8.1.1\n") : new Response("?", { status: 400 }),
    });
    try {
      const figures = { stages: [{ rate: 100, p99_ms: 3.2 }], passed: true };
      const path = await writeResult("stress-capture", figures, {
        dir: join(tmp, "out"),
        now: new Date("2025-03-04T05:06:07.890Z"),
        clickhouseUrl: `http://127.0.0.1:${ch.port}`,
        stateDir: state,
      });
      expect(path).toBe(join(tmp, "out", "stress-capture-20250304T050607Z.json"));
      const r = (await Bun.file(path).json()) as ResultFile<typeof figures>;
      expect(r.name).toBe("stress-capture");
      expect(r.date).toBe("2025-03-04T05:06:07.890Z");
      expect(r.figures).toEqual(figures);
      expect(r.commit).toMatch(/^[0-9a-f]{40}(\+dirty)?$/);
      expect(r.commit).toBe(await gitCommit());
      expect(r.machine.cores).toBeGreaterThan(0);
      expect(r.machine.memory_bytes).toBeGreaterThan(0);
      expect(r.machine.cpu.length).toBeGreaterThan(0);
      expect(r.machine.kernel).toMatch(/\d/);
      expect(r.machine.os.length).toBeGreaterThan(0);
      expect(r.versions.bun).toBe(Bun.version);
      expect(r.versions.clickhouse).toBe("26.8.1.1");
      expect(r.versions.kafka).toBe("4.3.1");
      // Debian's package when installed (the project's own machines); null elsewhere, never a made-up value.
      const dpkg = Bun.spawnSync(["dpkg-query", "-W", "-f=${Version}", "librdkafka1"]);
      expect(r.versions.librdkafka).toBe(dpkg.exitCode === 0 ? dpkg.stdout.toString() : null);

      // Same name, same second: a second file, not an overwrite; no temporary file left behind.
      const again = await writeResult("stress-capture", { n: 2 }, { dir: join(tmp, "out"), now: new Date("2025-03-04T05:06:07.100Z"), clickhouseUrl: `http://127.0.0.1:${ch.port}`, stateDir: state });
      expect(again).toBe(join(tmp, "out", "stress-capture-20250304T050607Z-2.json"));
      expect((await readdir(join(tmp, "out"))).sort()).toEqual(["stress-capture-20250304T050607Z-2.json", "stress-capture-20250304T050607Z.json"]);
    } finally {
      ch.stop(true);
    }
  });

  test("versions it cannot read are null, not guesses", async () => {
    // Port 9 (discard) on loopback: nothing listens there.
    expect(await clickhouseVersion("http://127.0.0.1:9")).toBeNull();
    expect(await kafkaVersion(join(tmp, "no-such-state"))).toBeNull();
  });

  test("refuses names that would make odd file names", async () => {
    await expect(writeResult("../escape", {}, { dir: tmp })).rejects.toThrow(/name must match/);
    await expect(writeResult("", {}, { dir: tmp })).rejects.toThrow(/name must match/);
  });
});

class Capture implements ProgressSink {
  out = "";
  constructor(readonly isTTY: boolean) {}
  write(chunk: string) {
    this.out += chunk;
  }
}

describe("progress", () => {
  test("on a terminal: one line redrawn in place, ended once at completion", () => {
    let t = 0;
    const sink = new Capture(true);
    const p = new Progress({ stream: sink, now: () => t });
    p.update("seed", 0, 1000);
    t = 50;
    p.update("seed", 100, 1000); // within 100 ms of the last draw: skipped
    t = 1000;
    p.update("seed", 500, 1000);
    t = 2000;
    p.update("seed", 1000, 1000);
    p.update("seed", 1000, 1000); // already finished: nothing more
    const frames = sink.out.split("\r").slice(1);
    expect(frames).toHaveLength(3);
    expect(sink.out.split("\n")).toHaveLength(2); // exactly one newline, at the end
    expect(frames[1]).toContain("[############------------]");
    expect(frames[1]).toContain(" 50.0%");
    expect(frames[1]).toContain("500/1000");
    expect(frames[1]).toContain("  500/s  ");
    expect(frames[1]).toContain("eta 1s");
    expect(frames[2]).toContain("100.0%");
    expect(frames[2]).toContain("in 2s");
    expect(sink.out).toContain("\x1b[K"); // clears what a longer previous frame left
  });

  test("elsewhere: plain lines, at most one per interval, plus the final one", () => {
    let t = 0;
    const sink = new Capture(false);
    const p = new Progress({ stream: sink, now: () => t, intervalMs: 5000 });
    for (let i = 0; i <= 100; i++) {
      t = i * 100; // 10 s in total, an update every 100 ms
      p.update("load", i, 100);
    }
    const lines = sink.out.trimEnd().split("\n");
    expect(sink.out).not.toContain("\r");
    expect(lines).toHaveLength(3); // t=0, t=5s, and the final one at t=10s
    expect(lines[0]).toStartWith("load  ");
    expect(lines[1]).toContain("50/100");
    expect(lines[2]).toContain("100/100");
  });

  test("unknown total shows the count and rate only", () => {
    expect(formatProgress("rows", 2500, 0, 2, false)).toBe("rows  2500  1250/s");
    expect(formatProgress("big", 5_000_000, 10_000_000, 100, false)).toBe("big   50.0%  5000000/10000000  50.0k/s  eta 1m40s");
  });
});
