/**
 * CPU accounting from /proc, so each measurement says who used the machine's cores meanwhile: the consumer,
 * ClickHouse, the Kafka broker, and everything else (other engineers' tests share this machine).
 */
import { readdirSync, readFileSync } from "node:fs";

const TICK = 100; // USER_HZ on Linux

/** utime + stime of a process, in seconds; null when it is gone. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICK;
  } catch {
    return null;
  }
}

/** Busy and total CPU seconds of the whole machine (all cores) since boot. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / TICK, total: total / TICK };
}

/** First pid whose command line contains `needle` (read-only lookup; nothing is signalled). */
export function findPid(needle: string): number | null {
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmd.includes(needle) && !cmd.includes("grep")) return Number(d);
    } catch {
      // raced with an exiting process
    }
  }
  return null;
}

export function loadAverage(): number[] {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number);
}

export interface CpuShare {
  wall_s: number;
  /** Cores used on average over the interval (1.0 = one core fully busy). */
  consumer: number | null;
  clickhouse: number | null;
  kafka: number | null;
  bench: number;
  /** Everything else on the machine: other engineers' tests, the OS. */
  other: number;
  machine_busy: number;
  load_avg_end: number[];
}

/** Samples CPU at start; `stop()` returns the average cores used by each party over the interval. */
export function cpuMeter(pids: { consumer?: number | null; clickhouse?: number | null; kafka?: number | null }): { stop: () => CpuShare } {
  const t0 = performance.now();
  const m0 = machineCpuSeconds();
  const p0 = {
    consumer: pids.consumer ? processCpuSeconds(pids.consumer) : null,
    clickhouse: pids.clickhouse ? processCpuSeconds(pids.clickhouse) : null,
    kafka: pids.kafka ? processCpuSeconds(pids.kafka) : null,
    bench: processCpuSeconds(process.pid)!,
  };
  return {
    stop: () => {
      const wall = (performance.now() - t0) / 1000;
      const m1 = machineCpuSeconds();
      const d = (pid: number | null | undefined, before: number | null) => {
        if (!pid || before === null) return null;
        const after = processCpuSeconds(pid);
        return after === null ? null : (after - before) / wall;
      };
      const consumer = d(pids.consumer, p0.consumer);
      const clickhouse = d(pids.clickhouse, p0.clickhouse);
      const kafka = d(pids.kafka, p0.kafka);
      const bench = d(process.pid, p0.bench) ?? 0;
      const busy = (m1.busy - m0.busy) / wall;
      const r = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);
      return {
        wall_s: Math.round(wall * 10) / 10,
        consumer: r(consumer),
        clickhouse: r(clickhouse),
        kafka: r(kafka),
        bench: r(bench)!,
        other: r(Math.max(0, busy - (consumer ?? 0) - (clickhouse ?? 0) - (kafka ?? 0) - bench))!,
        machine_busy: r(busy)!,
        load_avg_end: loadAverage(),
      };
    },
  };
}
