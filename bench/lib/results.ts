/**
 * Benchmark results: one JSON file per run under bench/results/, stamped with everything needed to compare runs
 * later (commit, machine, component versions), plus a one-line progress display for long-running commands.
 */
import { mkdir, rename, stat, readdir, readFile } from "node:fs/promises";
import { cpus, release, totalmem, type as osType } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");

export interface MachineInfo {
  os: string;
  kernel: string;
  cpu: string;
  cores: number;
  memory_bytes: number;
}

export interface Versions {
  bun: string;
  librdkafka: string | null;
  clickhouse: string | null;
  kafka: string | null;
}

export interface ResultFile<F> {
  name: string;
  date: string;
  commit: string | null;
  machine: MachineInfo;
  versions: Versions;
  figures: F;
}

export interface WriteResultOptions {
  /** Folder for the JSON files; default bench/results/ in the repository. */
  dir?: string;
  /** Time of the run (file name and `date`); default now. */
  now?: Date;
  /** ClickHouse asked for its version; default CLICKHOUSE_URL or http://127.0.0.1:8123. */
  clickhouseUrl?: string;
  /** State folder of the native stack, where the Kafka jars are; default INGEST_STATE_DIR or .local/. */
  stateDir?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Writes bench/results/<name>-<UTC timestamp>.json and returns its path. The timestamp is ISO 8601 basic format
 * (20250101T120000Z): sortable, and free of the colons some file systems and URLs choke on.
 */
export async function writeResult<F extends object>(name: string, figures: F, opts: WriteResultOptions = {}): Promise<string> {
  if (!NAME.test(name)) throw new RangeError(`writeResult: name must match ${NAME}, got ${JSON.stringify(name)}`);
  const now = opts.now ?? new Date();
  // BENCH_RESULTS_DIR lets smoke runs (CI) keep their files out of the committed results.
  const dir = opts.dir ?? process.env.BENCH_RESULTS_DIR ?? join(ROOT, "bench", "results");
  const [commit, versions] = await Promise.all([gitCommit(), componentVersions(opts)]);
  const result: ResultFile<F> = { name, date: now.toISOString(), commit, machine: await machineInfo(), versions, figures };
  const text = `${JSON.stringify(result, null, 2)}\n`;

  await mkdir(dir, { recursive: true });
  const stamp = now.toISOString().replace(/\.\d{3}Z$/, "Z").replaceAll("-", "").replaceAll(":", "");
  let path = join(dir, `${name}-${stamp}.json`);
  // Two runs of one benchmark within the same second must not overwrite each other.
  for (let n = 2; await exists(path); n++) path = join(dir, `${name}-${stamp}-${n}.json`);
  // Written aside and renamed: an interrupted run never leaves half a JSON file for the runbook to link to.
  const tmp = `${path}.tmp-${process.pid}`;
  await Bun.write(tmp, text);
  await rename(tmp, path);
  return path;
}

/**
 * `git rev-parse HEAD`, with "+dirty" when tracked files differ from it. Untracked files do not count (as with
 * `git describe --dirty`): new result files and scratch output would otherwise mark every run dirty.
 */
export async function gitCommit(cwd: string = ROOT): Promise<string | null> {
  const head = run(["git", "rev-parse", "HEAD"], cwd);
  if (head === null) return null;
  const status = run(["git", "status", "--porcelain", "--untracked-files=no"], cwd);
  return status === null || status === "" ? head : `${head}+dirty`;
}

export async function machineInfo(): Promise<MachineInfo> {
  const list = cpus();
  return {
    os: await osName(),
    kernel: `${osType()} ${release()}`,
    cpu: list[0]?.model.trim() ?? "unknown",
    cores: list.length,
    memory_bytes: totalmem(),
  };
}

export async function componentVersions(opts: Pick<WriteResultOptions, "clickhouseUrl" | "stateDir"> = {}): Promise<Versions> {
  const [clickhouse, kafka] = await Promise.all([
    clickhouseVersion(opts.clickhouseUrl ?? process.env.CLICKHOUSE_URL ?? "http://127.0.0.1:8123"),
    kafkaVersion(opts.stateDir ?? process.env.INGEST_STATE_DIR ?? join(ROOT, ".local")),
  ]);
  return { bun: Bun.version, librdkafka: librdkafkaVersion(), clickhouse, kafka };
}

/** The Debian package's version; read through dpkg so that results do not depend on loading lib/kafka. */
export function librdkafkaVersion(): string | null {
  return run(["dpkg-query", "-W", "-f=${Version}", "librdkafka1"]) || null;
}

/** `SELECT version()` over HTTP, or null when ClickHouse is not reachable within two seconds. */
export async function clickhouseVersion(url: string): Promise<string | null> {
  try {
    const target = new URL(url);
    target.searchParams.set("query", "SELECT version()");
    const res = await fetch(target, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return null;
    return (await res.text()).trim() || null;
  } catch {
    return null;
  }
}

/** The broker's version from the jar names `make deps` put in <state>/kafka/libs (kafka-clients-<version>.jar). */
export async function kafkaVersion(stateDir: string): Promise<string | null> {
  try {
    const files = await readdir(join(stateDir, "kafka", "libs"));
    for (const f of files) {
      const m = /^kafka-clients-(\d[\w.-]*)\.jar$/.exec(f);
      if (m?.[1]) return m[1];
    }
    return null;
  } catch {
    return null;
  }
}

async function osName(): Promise<string> {
  try {
    const text = await readFile("/etc/os-release", "utf8");
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text);
    if (m?.[1]) return m[1];
  } catch {
    // Not Linux, or a minimal container without os-release: the kernel line still identifies the system.
  }
  return osType();
}

function run(cmd: string[], cwd?: string): string | null {
  try {
    const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "ignore" });
    return r.exitCode === 0 ? r.stdout.toString().trim() : null;
  } catch {
    return null; // the command itself is missing (no git, not Debian)
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Progress display

export interface ProgressSink {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface ProgressOptions {
  /** Default: process.stderr, so that stdout stays clean for tables and JSON. */
  stream?: ProgressSink;
  /** Minimum time between two lines when the stream is not a terminal (logs, CI). Default 5 s. */
  intervalMs?: number;
  /** Clock in ms; tests pass their own. */
  now?: () => number;
}

interface Task {
  start: number;
  lastPrint: number;
  finished: boolean;
}

/**
 * Single-line progress for one or more labelled tasks. On a terminal the line is redrawn in place (\r) at most
 * every 100 ms; elsewhere one line is printed every few seconds so that CI logs stay readable. The last update
 * of a task (done >= total) is always printed, once, and ends the line.
 */
export class Progress {
  private readonly stream: ProgressSink;
  private readonly tty: boolean;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly tasks = new Map<string, Task>();

  constructor(opts: ProgressOptions = {}) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true;
    this.intervalMs = opts.intervalMs ?? (this.tty ? 100 : 5000);
    this.now = opts.now ?? (() => performance.now());
  }

  update(label: string, done: number, total: number): void {
    const t = this.now();
    let task = this.tasks.get(label);
    if (!task || (task.finished && done < total)) {
      // A new task, or the same label reused for a new run: start the clock again.
      task = { start: t, lastPrint: -Infinity, finished: false };
      this.tasks.set(label, task);
    }
    if (task.finished) return;
    const finished = total > 0 && done >= total;
    if (!finished && t - task.lastPrint < this.intervalMs) return;
    task.lastPrint = t;
    task.finished = finished;
    const line = formatProgress(label, done, total, (t - task.start) / 1000, this.tty);
    if (this.tty) this.stream.write(`\r${line}\x1b[K${finished ? "\n" : ""}`);
    else this.stream.write(`${line}\n`);
  }
}

/** `label [#####-----]  50.0%  500/1000  250/s  eta 2s` (the bar only on a terminal). */
export function formatProgress(label: string, done: number, total: number, elapsedS: number, bar: boolean): string {
  const rate = elapsedS > 0 ? done / elapsedS : 0;
  const parts = [label];
  if (total > 0) {
    const frac = Math.min(1, Math.max(0, done / total));
    if (bar) {
      const width = 24;
      const full = Math.round(frac * width);
      parts.push(`[${"#".repeat(full)}${"-".repeat(width - full)}]`);
    }
    parts.push(`${(frac * 100).toFixed(1).padStart(5)}%`, `${done}/${total}`);
  } else {
    parts.push(String(done));
  }
  parts.push(`${formatRate(rate)}/s`);
  if (total > 0 && done < total && rate > 0) parts.push(`eta ${formatDuration((total - done) / rate)}`);
  else if (total > 0 && done >= total) parts.push(`in ${formatDuration(elapsedS)}`);
  return parts.join("  ");
}

function formatRate(r: number): string {
  if (r >= 1e6) return `${(r / 1e6).toFixed(2)}M`;
  if (r >= 1e4) return `${(r / 1e3).toFixed(1)}k`;
  return r >= 100 ? r.toFixed(0) : r.toFixed(1);
}

function formatDuration(s: number): string {
  if (s < 60) return `${Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

let shared: Progress | undefined;

/** progress(label, done, total) on stderr, for scripts that need nothing more. */
export function progress(label: string, done: number, total: number): void {
  shared ??= new Progress();
  shared.update(label, done, total);
}
