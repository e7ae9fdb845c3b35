/**
 * Shared by the cluster tests (`make test-cluster`, run against `make cluster-up`): the cluster's addresses,
 * process control through infrastructure/cluster/cluster.sh, a test project, a capture load that records which
 * events were acknowledged, and ClickHouse reads on one node.
 */
import { join } from "node:path";
import { createPostgres } from "../../lib/postgres/client.ts";
import { createProject } from "../../lib/projects/create-project.ts";
import { ROOT, waitFor } from "../support/stack.ts";

const SCRIPT = join(ROOT, "infrastructure/cluster/cluster.sh");
export const POSTGRES_URL = process.env.POSTGRES_URL ?? "postgres://ingest:ingest@127.0.0.1:5432/ingest";

/** Runs cluster.sh; throws with its output on failure. */
export async function cluster(...args: string[]): Promise<string> {
  const proc = Bun.spawn([SCRIPT, ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`cluster.sh ${args.join(" ")} failed (${code}):\n${out}\n${err}`);
  return out;
}

/** The cluster's addresses, from `cluster.sh env` (one source for ports). */
export async function clusterEnv(): Promise<Record<string, string>> {
  const out = await cluster("env");
  return Object.fromEntries(out.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

/** Fails fast, with the command to run, when the cluster is not up. */
export async function requireCluster(): Promise<Record<string, string>> {
  const status = await cluster("status");
  const stopped = status.split("\n").filter((l) => /\bstopped$/.test(l));
  if (stopped.length) throw new Error(`the cluster is not fully up (run \`make cluster-up\`):\n${stopped.join("\n")}`);
  return clusterEnv();
}

export interface TestProject {
  id: number;
  token: string;
  key: string;
  drop(): Promise<void>;
}

export async function testProject(name: string): Promise<TestProject> {
  const sql = createPostgres(POSTGRES_URL, { max: 1 });
  const created = await createProject(sql, `${name} ${new Date().toISOString()}`);
  return {
    id: created.project.id,
    token: created.project.token,
    key: created.secretKey,
    async drop() {
      await sql`DELETE FROM projects WHERE id = ${created.project.id}`;
      await sql.end({ timeout: 2 });
    },
  };
}

/** TabSeparated rows of a query on one ClickHouse node. */
export async function chRows(url: string, query: string): Promise<string[][]> {
  const res = await fetch(`${url}/?database=analytics`, { method: "POST", body: query, signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`ClickHouse ${url}: ${text}`);
  return text
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => l.split("\t"));
}

export async function chCount(url: string, query: string): Promise<number> {
  return Number((await chRows(url, query))[0]![0]);
}

export interface LoadResult {
  /** uuids of every event whose request got a 202 (the broker has it, acks=all). */
  acked: Set<string>;
  requests: number;
  /** answers other than 202 (503 while a leader moves is a correct answer: the client retries). */
  rejected: Map<number, number>;
  /** requests that got no HTTP answer at all (connection refused/reset, timeout). */
  unanswered: number;
  latenciesMs: number[];
  /** [send time, status or 0] of every request, for "after the kill" questions. */
  timeline: [number, number][];
}

/**
 * Sends /v1/batch requests (202 = stored) of `batch` events with client-chosen uuids from `workers` loops until `stop()` is called.
 * A request without an answer is retried with the same uuids, as the PostHog SDKs do, so "nothing lost" can be
 * checked against what was acknowledged.
 */
export function captureLoad(captureUrl: string, token: string, opts: { workers?: number; batch?: number; prefix: string }) {
  const workers = opts.workers ?? 4;
  const batchSize = opts.batch ?? 20;
  const result: LoadResult = { acked: new Set(), requests: 0, rejected: new Map(), unanswered: 0, latenciesMs: [], timeline: [] };
  let running = true;
  let seq = 0;
  const loop = async (w: number) => {
    while (running) {
      const batch = Array.from({ length: batchSize }, () => {
        const n = seq++;
        return { event: "$pageview", distinct_id: `${opts.prefix}-u${n % 97}`, uuid: Bun.randomUUIDv7(), properties: { n, w } };
      });
      const body = JSON.stringify({ api_key: token, batch });
      // Same body until it is answered 202 or the load stops (a 503 means "not stored, retry").
      for (;;) {
        const t0 = performance.now();
        const at = Date.now();
        let status = 0;
        try {
          const res = await fetch(`${captureUrl}/v1/batch`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body,
            signal: AbortSignal.timeout(15_000),
          });
          status = res.status;
          await res.arrayBuffer();
        } catch {
          status = 0;
        }
        result.requests++;
        result.timeline.push([at, status]);
        result.latenciesMs.push(performance.now() - t0);
        if (status === 202) {
          for (const e of batch) result.acked.add(e.uuid);
          break;
        }
        if (status === 0) result.unanswered++;
        else result.rejected.set(status, (result.rejected.get(status) ?? 0) + 1);
        if (!running) break;
        await Bun.sleep(200);
      }
    }
  };
  const done = Promise.all(Array.from({ length: workers }, (_, w) => loop(w)));
  return {
    result,
    async stop(): Promise<LoadResult> {
      running = false;
      await done;
      return result;
    },
  };
}

/** The acknowledged uuids that ClickHouse (through the Distributed table of node `url`) does not have. */
export async function missing(url: string, teamId: number, acked: Set<string>): Promise<string[]> {
  const rows = await chRows(url, `SELECT DISTINCT toString(uuid) FROM events_distributed WHERE team_id = ${Number(teamId)}`);
  const have = new Set(rows.map((r) => r[0]));
  return [...acked].filter((u) => !have.has(u));
}

/** Waits until every acknowledged event is queryable; returns how long that took. */
export async function waitAllStored(url: string, teamId: number, acked: Set<string>, timeoutMs = 180_000): Promise<number> {
  const t0 = Date.now();
  let left: string[] = [];
  try {
    await waitFor("every acknowledged event in ClickHouse", timeoutMs, async () => {
      left = await missing(url, teamId, acked);
      return left.length === 0;
    }, 1000);
  } catch (err) {
    throw new Error(`${String(err)}; ${left.length} of ${acked.size} acknowledged events missing, e.g. ${left.slice(0, 3).join(", ")}`);
  }
  return Date.now() - t0;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** Runs a Kafka CLI tool from infrastructure/kafka/bin with a small heap; returns stdout. */
export async function kafkaTool(tool: string, ...args: string[]): Promise<string> {
  const proc = Bun.spawn([join(ROOT, "infrastructure/kafka/bin", tool), ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, KAFKA_HEAP_OPTS: "-Xmx128m" },
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${tool} failed (${code}): ${err}`);
  return out;
}

/** Partitions of `topic` whose ISR lacks a replica (empty: every node has caught up). */
export async function underReplicated(bootstrap: string, topic: string): Promise<string[]> {
  const out = await kafkaTool("kafka-topics", "--bootstrap-server", bootstrap, "--describe", "--topic", topic, "--under-replicated-partitions");
  return out.split("\n").filter((l) => l.includes("Partition:"));
}

/** Report a measured figure on one greppable line (runbooks/scaling.md quotes them). */
export function figure(name: string, data: Record<string, unknown>): void {
  console.log(`FIGURE ${name} ${JSON.stringify(data)}`);
}
