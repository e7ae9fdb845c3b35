/**
 * Typed wrapper around vegeta (MIT; DESIGN.md decision 6): open-model load at a constant arrival rate, so a slow
 * server faces a growing backlog instead of a politely waiting client, which is what a p99 SLO is about.
 *
 * Targets are generated per request by the caller and streamed to `vegeta attack -format=json -lazy` on stdin
 * (vegeta reads one only when it needs it; we write with backpressure), results go to a binary file, and
 * `vegeta report -type=json` turns them into the figures we keep. Only 127.0.0.1 is ever attacked.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS";

export interface Target {
  method: HttpMethod;
  /** Must be an http://127.0.0.1[:port]/ URL. */
  url: string;
  header?: Record<string, string | string[]>;
  body?: string | Uint8Array;
}

export interface AttackOptions {
  /** Requests per second (may be fractional, e.g. 0.5), constant for the whole attack. */
  rate: number;
  /** Seconds. */
  durationS: number;
  /** Called once per request, i = 0, 1, ... rate*duration-1, in the order vegeta sends them. */
  target: (i: number) => Target;
  /** Per-request timeout; default 30 s (vegeta's own default). */
  timeoutMs?: number;
  /** Initial and maximum number of vegeta workers; default 10 and unbounded (open model). */
  workers?: number;
  maxWorkers?: number;
  /** Keep vegeta's binary results here (for `readResults`) instead of a deleted temporary file. */
  resultsPath?: string;
  /** Attack name recorded in the results. */
  name?: string;
  /** The vegeta binary; default VEGETA_BIN, then .local/bin/vegeta (`make deps`), then PATH. */
  vegeta?: string;
}

export interface Latencies {
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** `vegeta report -type=json`, latencies in milliseconds. */
export interface Report {
  requests: number;
  /** Achieved request rate (req/s). */
  rate: number;
  /** Successful (2xx/3xx) responses per second. */
  throughput: number;
  /** Ratio of successful responses, 0..1. */
  success: number;
  /** Status code -> count; "0" counts requests that got no HTTP response (timeout, refused). */
  status_codes: Record<string, number>;
  latencies: Latencies;
  /** Seconds from the first to the last request sent. */
  duration_s: number;
  bytes_in: number;
  bytes_out: number;
  /** Distinct error messages. */
  errors: string[];
}

/** One request as recorded by vegeta (`vegeta encode --to=json`). */
export interface ResultRow {
  seq: number;
  code: number;
  /** Milliseconds. */
  latency: number;
  /** When the request was sent, ms since the epoch. */
  timestamp: number;
  error: string;
  /** The response body (decoded), kept only for non-2xx answers: errors are small and tell why. */
  body?: string;
}

export class VegetaError extends Error {
  override name = "VegetaError";
}

/** Finds the vegeta binary, or says how to get it. */
export function vegetaPath(explicit?: string): string {
  if (explicit) {
    if (Bun.which(explicit)) return explicit;
    throw new VegetaError(`vegeta not found at ${explicit}`);
  }
  const candidates = [
    process.env.VEGETA_BIN,
    join(process.env.INGEST_STATE_DIR ?? join(ROOT, ".local"), "bin", "vegeta"),
  ];
  for (const c of candidates) if (c && Bun.which(c)) return c;
  const onPath = Bun.which("vegeta");
  if (onPath) return onPath;
  throw new VegetaError("vegeta not found: run `make deps` (installs it into .local/bin) or set VEGETA_BIN");
}

/** Runs one constant-rate attack and returns its report. */
export async function attack(opts: AttackOptions): Promise<Report> {
  if (!(opts.rate > 0 && Number.isInteger(opts.rate * 1000))) throw new RangeError(`attack: rate must be a positive number of requests/s with at most 3 decimals, got ${opts.rate}`);
  if (!(opts.durationS > 0)) throw new RangeError(`attack: durationS must be > 0, got ${opts.durationS}`);
  const bin = vegetaPath(opts.vegeta);
  const tmp = opts.resultsPath ? undefined : await mkdtemp(join(tmpdir(), "vegeta-"));
  const results = opts.resultsPath ?? join(tmp!, "results.bin");
  try {
    const args = [
      "attack",
      "-format=json",
      "-lazy",
      // Fractional rates (0.5/s) as requests per 1000 s: vegeta takes freq/duration.
      Number.isInteger(opts.rate) ? `-rate=${opts.rate}/1s` : `-rate=${Math.round(opts.rate * 1000)}/1000s`,
      `-duration=${Math.round(opts.durationS * 1000)}ms`,
      `-timeout=${Math.round(opts.timeoutMs ?? 30_000)}ms`,
      `-workers=${opts.workers ?? 10}`,
      // A redirect could lead away from 127.0.0.1; none of our endpoints redirects, so one is an error.
      "-redirects=0",
      `-output=${results}`,
    ];
    if (opts.maxWorkers !== undefined) args.push(`-max-workers=${opts.maxWorkers}`);
    if (opts.name) args.push(`-name=${opts.name}`);
    await runAttack(bin, args, Math.ceil(opts.rate * opts.durationS), opts.target);
    return await report(results, bin);
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

/** `vegeta report -type=json <results>` parsed and converted to milliseconds. */
export async function report(resultsPath: string, bin: string = vegetaPath()): Promise<Report> {
  const out = await capture(bin, ["report", "-type=json", resultsPath]);
  return parseReport(out);
}

/** Every recorded request, for histograms and time series. */
export async function readResults(resultsPath: string, bin: string = vegetaPath()): Promise<ResultRow[]> {
  const out = await capture(bin, ["encode", "--to=json", resultsPath]);
  const rows: ResultRow[] = [];
  for (const line of out.split("\n")) {
    if (!line) continue;
    const r = JSON.parse(line) as { seq: number; code: number; latency: number; timestamp: string; error: string; body?: string };
    const row: ResultRow = { seq: r.seq, code: r.code, latency: r.latency / 1e6, timestamp: Date.parse(r.timestamp), error: r.error };
    if ((r.code < 200 || r.code >= 300) && r.body) row.body = Buffer.from(r.body, "base64").toString("utf8");
    rows.push(row);
  }
  return rows;
}

interface RawReport {
  latencies: { mean: number; "50th": number; "90th": number; "95th": number; "99th": number; max: number };
  bytes_in: { total: number };
  bytes_out: { total: number };
  duration: number;
  requests: number;
  rate: number;
  throughput: number;
  success: number;
  status_codes: Record<string, number> | null;
  errors: string[] | null;
}

export function parseReport(json: string): Report {
  const r = JSON.parse(json) as RawReport;
  const ms = (ns: number) => ns / 1e6;
  return {
    requests: r.requests,
    rate: r.rate,
    throughput: r.throughput,
    success: r.success,
    status_codes: r.status_codes ?? {},
    latencies: {
      p50: ms(r.latencies["50th"]),
      p90: ms(r.latencies["90th"]),
      p95: ms(r.latencies["95th"]),
      p99: ms(r.latencies["99th"]),
      max: ms(r.latencies.max),
      mean: ms(r.latencies.mean),
    },
    duration_s: r.duration / 1e9,
    bytes_in: r.bytes_in.total,
    bytes_out: r.bytes_out.total,
    errors: r.errors ?? [],
  };
}

/** The JSON target line vegeta's `-format=json` reads; the body travels base64-encoded. */
export function encodeTarget(t: Target): string {
  assertLoopback(t.url);
  const line: { method: string; url: string; header?: Record<string, string[]>; body?: string } = { method: t.method, url: t.url };
  if (t.header) {
    line.header = {};
    for (const [k, v] of Object.entries(t.header)) line.header[k] = Array.isArray(v) ? v : [v];
  }
  if (t.body !== undefined) line.body = Buffer.from(t.body).toString("base64");
  return JSON.stringify(line);
}

let lastOrigin = "";

/** Refuses any target not on 127.0.0.1: a load generator pointed elsewhere by mistake is an attack on someone. */
export function assertLoopback(url: string): void {
  // Most targets share one origin; remembering the last one checked keeps this off the hot path.
  if (lastOrigin && url.startsWith(lastOrigin) && url.length > lastOrigin.length && url[lastOrigin.length] === "/") return;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new VegetaError(`not a URL: ${JSON.stringify(url)}`);
  }
  if (u.protocol !== "http:" || u.hostname !== "127.0.0.1" || u.username || u.password) {
    throw new VegetaError(`vegeta targets must be http://127.0.0.1[:port]/..., got ${JSON.stringify(url)}`);
  }
  lastOrigin = u.origin;
}

async function runAttack(bin: string, args: string[], hits: number, target: (i: number) => Target): Promise<void> {
  const child = spawn(bin, args, { stdio: ["pipe", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d: string) => (stderr += d));
  const exited = new Promise<number | null>((res, rej) => {
    child.once("error", rej);
    child.once("close", (code) => res(code));
  });

  // vegeta stops sending once its duration is over and may exit before reading every target; the pipe then
  // breaks, which ends our writing rather than the attack.
  let stdinClosed = false;
  child.stdin.on("error", () => (stdinClosed = true));
  child.stdin.once("close", () => (stdinClosed = true));
  let generatorError: unknown;
  try {
    const batch: string[] = [];
    for (let i = 0; i < hits && !stdinClosed; i++) {
      batch.push(encodeTarget(target(i)));
      if (batch.length === 256 || i === hits - 1) {
        const ok = child.stdin.write(`${batch.join("\n")}\n`);
        batch.length = 0;
        // Backpressure: vegeta reads lazily, so at high rates and long durations the targets must not pile up
        // in memory ahead of it.
        if (!ok && !stdinClosed) await drainOrClose(child.stdin);
      }
    }
  } catch (err) {
    generatorError = err;
    child.kill("SIGTERM");
  } finally {
    if (!stdinClosed) child.stdin.end();
  }
  const code = await exited;
  if (generatorError) throw generatorError;
  if (code !== 0) throw new VegetaError(`vegeta attack exited with ${code}: ${stderr.trim()}`);
}

/** Waits for 'drain' or 'close', removing both listeners afterwards (events.once would leak one per wait). */
function drainOrClose(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}

async function capture(bin: string, args: string[]): Promise<string> {
  const p = Bun.spawn([bin, ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new VegetaError(`vegeta ${args[0]} exited with ${code}: ${err.trim()}`);
  return out;
}
