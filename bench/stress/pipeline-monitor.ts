/**
 * Watches the pipeline while load runs: every few seconds, per-partition consumer lag (lib/kafka, off the event
 * loop) and the ClickHouse row count; and probe events with known uuids sent through capture, timed until a
 * ClickHouse query sees them (capture -> queryable delay).
 */
import { KafkaProbe } from "../../lib/kafka/probe.ts";

export interface LagSample {
  /** Seconds since the monitor started. */
  t: number;
  maxLag: number;
  totalLag: number;
  rows: number;
}

export interface MonitorOptions {
  kafka: string;
  group: string;
  topic: string;
  clickhouseUrl: string;
  database: string;
  teamId: number;
  captureUrl: string;
  token: string;
  sampleEveryMs?: number;
  probeEveryMs?: number;
}

export interface MonitorReport {
  samples: LagSample[];
  maxLag: number;
  lagUnder10k: boolean;
  /** Capture -> visible in ClickHouse, ms, one per probe that became visible. */
  visibilityMs: number[];
  probesLost: number;
}

async function chScalar(url: string, db: string, sql: string): Promise<number> {
  const res = await fetch(`${url}/?database=${db}`, { method: "POST", body: sql });
  if (!res.ok) throw new Error(await res.text());
  return Number((await res.text()).trim());
}

export class PipelineMonitor {
  private readonly probe: KafkaProbe;
  private readonly samples: LagSample[] = [];
  private readonly visibility: number[] = [];
  private readonly pending = new Map<string, number>();
  private timers: ReturnType<typeof setInterval>[] = [];
  private readonly started = performance.now();

  constructor(private readonly o: MonitorOptions) {
    this.probe = new KafkaProbe({ "bootstrap.servers": o.kafka });
  }

  start(): void {
    this.timers.push(setInterval(() => void this.sample(), this.o.sampleEveryMs ?? 2000));
    this.timers.push(setInterval(() => void this.sendProbe(), this.o.probeEveryMs ?? 3000));
    this.timers.push(setInterval(() => void this.checkProbes(), 250));
  }

  /** Stops sampling, waits up to `drainMs` for outstanding probes, and reports. */
  async stop(drainMs = 60_000): Promise<MonitorReport> {
    const [a, b] = this.timers;
    clearInterval(a);
    clearInterval(b);
    const until = performance.now() + drainMs;
    while (this.pending.size > 0 && performance.now() < until) await Bun.sleep(250);
    for (const t of this.timers) clearInterval(t);
    await this.sample();
    this.probe.close();
    const maxLag = Math.max(0, ...this.samples.map((s) => s.maxLag));
    return { samples: this.samples, maxLag, lagUnder10k: maxLag < 10_000, visibilityMs: this.visibility, probesLost: this.pending.size };
  }

  private async sample(): Promise<void> {
    try {
      const [lag, rows] = await Promise.all([
        this.probe.lag(this.o.group, this.o.topic, 5000),
        chScalar(this.o.clickhouseUrl, this.o.database, `SELECT count() FROM events WHERE team_id = ${Number(this.o.teamId)}`),
      ]);
      const lags = lag.map((p) => Number(p.lag));
      this.samples.push({
        t: (performance.now() - this.started) / 1000,
        maxLag: Math.max(0, ...lags),
        totalLag: lags.reduce((x, y) => x + y, 0),
        rows,
      });
    } catch {
      // A missed sample is a gap in the chart, not a failure of the run.
    }
  }

  private async sendProbe(): Promise<void> {
    const uuid = crypto.randomUUID();
    const sent = performance.now();
    const res = await fetch(`${this.o.captureUrl}/v1/capture`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: this.o.token, event: "$stress_probe", distinct_id: "stress-probe", uuid, properties: {} }),
    }).catch(() => null);
    if (res?.status === 202) this.pending.set(uuid, sent);
  }

  private async checkProbes(): Promise<void> {
    if (this.pending.size === 0) return;
    const list = [...this.pending.keys()].map((u) => `'${u}'`).join(",");
    try {
      const res = await fetch(`${this.o.clickhouseUrl}/?database=${this.o.database}`, {
        method: "POST",
        body: `SELECT DISTINCT toString(uuid) FROM events WHERE team_id = ${Number(this.o.teamId)} AND event = '$stress_probe' AND uuid IN (${list})`,
      });
      if (!res.ok) return;
      const now = performance.now();
      for (const u of (await res.text()).split("\n").filter(Boolean)) {
        const sent = this.pending.get(u);
        if (sent !== undefined) {
          this.visibility.push(now - sent);
          this.pending.delete(u);
        }
      }
    } catch {
      // ClickHouse busy: try again on the next tick.
    }
  }
}
