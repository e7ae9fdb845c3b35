/** Test helpers for the real stack: service control, ClickHouse queries, waiting without fixed sleeps. */
import { join } from "node:path";
import { ClusterClient } from "../../lib/kafka/metadata.ts";

export const ROOT = join(import.meta.dir, "..", "..");
export const KAFKA = "127.0.0.1:9092";
export const CLICKHOUSE = process.env.CLICKHOUSE_URL ?? "http://127.0.0.1:8123";
export const CH_DB = process.env.CLICKHOUSE_DATABASE ?? "analytics";

/** Runs infrastructure/local/stack.sh with the given arguments; throws with its output on failure. */
export async function stack(...args: string[]): Promise<string> {
  const proc = Bun.spawn([join(ROOT, "infrastructure/local/stack.sh"), ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`stack.sh ${args.join(" ")} failed (${code}):\n${out}\n${err}`);
  return out;
}

/** A ClickHouse query over HTTP returning the rows of a TabSeparated answer. */
export async function ch(sql: string): Promise<string[][]> {
  const res = await fetch(`${CLICKHOUSE}/?database=${CH_DB}`, { method: "POST", body: sql });
  const text = await res.text();
  if (!res.ok) throw new Error(`ClickHouse: ${text}`);
  return text
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => l.split("\t"));
}

/** Polls `probe` until it returns a truthy value or the deadline passes (then throws with `what`). */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await Bun.sleep(everyMs);
  }
}

/** A port nothing listens on right now. */
export function freePort(): number {
  const s = Bun.serve({ port: 0, fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A team id far from real projects' (serial from 1), so fixture rows never mix with anything else. */
export function uniqueTeamId(): number {
  return 1_000_000 + Math.floor(Math.random() * 3_000_000_000);
}

/** The consumer group's total lag on a topic (all partitions), read from the broker. */
export async function lagOf(group: string, topic: string): Promise<bigint> {
  const c = new ClusterClient({ "bootstrap.servers": KAFKA });
  try {
    return c.lag(group, topic, 5000).reduce((a, p) => a + p.lag, 0n);
  } finally {
    c.destroy();
  }
}
