/**
 * Failure classification against real servers: rows that ClickHouse 18.16 (the shared server) and current
 * ClickHouse (chdb, in-process) really reject are `rows`; a server that is down, a proxy's 502, a missing
 * database are `transient`; a code in neither list is `unknown`. Then the bisection against 18.16: a batch with
 * three poisoned rows stores every other row and isolates exactly those three.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ClickHouseSink } from "../../apps/consumer/clickhouse-sink.ts";
import { classifyInsertError } from "../../apps/consumer/insert-errors.ts";
import { isolateRejected } from "../../apps/consumer/isolate.ts";
import { toRow } from "../../apps/consumer/rows.ts";
import { createClickHouse } from "../../lib/clickhouse/client.ts";
import type { EventRow } from "../../lib/events/event-row.ts";
import { capturedEvent, poisonEvent } from "../support/events.ts";
import { ch, CH_DB, CLICKHOUSE, freePort, ROOT, uniqueTeamId } from "../support/stack.ts";

const sink = new ClickHouseSink(createClickHouse({ url: CLICKHOUSE, database: CH_DB }));
const row = (e: ReturnType<typeof capturedEvent>, i = 0): EventRow => toRow(e, 0, BigInt(i), "2026-12-01 00:00:00");

async function failureOf(insert: () => Promise<unknown>) {
  try {
    await insert();
  } catch (err) {
    return classifyInsertError(err);
  }
  throw new Error("the insert succeeded");
}

describe("insert failures on ClickHouse 18.16", () => {
  const team = uniqueTeamId();

  test("rows it rejects are classified `rows`, with its code and message", async () => {
    const surrogate = await failureOf(() => sink.insert([row(poisonEvent(team, "surrogate"))]));
    expect(surrogate).toMatchObject({ kind: "rows", code: 25 });
    expect(surrogate.message).toContain("surrogate");
    const year10000 = await failureOf(() => sink.insert([row(poisonEvent(team, "year10000"))]));
    expect(year10000.kind).toBe("rows");
    expect([27, 41]).toContain(year10000.code!);
    // A value outside its column's type.
    const negative = await failureOf(() => sink.insert([{ ...row(capturedEvent(team, 1)), kafka_offset: -1 }]));
    expect(negative).toMatchObject({ kind: "rows", code: 72 });
  });

  test("a server that is down, a proxy answering 502, a missing database: `transient`", async () => {
    const down = createClickHouse({ url: `http://127.0.0.1:${freePort()}`, database: CH_DB });
    expect((await failureOf(() => new ClickHouseSink(down).insert([row(capturedEvent(team, 1))]))).kind).toBe("transient");
    const proxy = Bun.serve({ port: 0, fetch: () => new Response("Bad Gateway", { status: 502 }) });
    try {
      const behind = createClickHouse({ url: `http://127.0.0.1:${proxy.port}`, database: CH_DB });
      expect((await failureOf(() => new ClickHouseSink(behind).insert([row(capturedEvent(team, 1))]))).kind).toBe("transient");
    } finally {
      proxy.stop(true);
    }
    const noDb = createClickHouse({ url: CLICKHOUSE, database: "no_such_database_i12" });
    expect(await failureOf(() => new ClickHouseSink(noDb).insert([row(capturedEvent(team, 1))]))).toMatchObject({ kind: "transient", code: 81 });
  });

  test("codes in neither list are `unknown`; too many parts is transient, too many partitions is the rows'", () => {
    expect(classifyInsertError(new Error("Code: 48, e.displayText() = DB::Exception: Method write is not supported"))).toMatchObject({ kind: "unknown", code: 48 });
    expect(classifyInsertError(new Error("Code: 252, e.displayText() = DB::Exception: Too many parts (300). Merges are processing significantly slower than inserts"))).toMatchObject({ kind: "transient" });
    expect(classifyInsertError(new Error("Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100)."))).toMatchObject({ kind: "rows" });
    // A body cut short on the way and the server's own memory and file failures: the same rows pass later.
    for (const code of [3, 32, 33, 74, 75, 76, 173]) expect(classifyInsertError(new Error(`Code: ${code}, e.displayText() = DB::Exception: x`))).toMatchObject({ kind: "transient", code });
    // Generic exceptions may come from the rows or the server: bounded retry, then split.
    for (const code of [1000, 1001, 1002]) expect(classifyInsertError(new Error(`Code: ${code}, e.displayText() = x`))).toMatchObject({ kind: "unknown", code });
  });

  test("bisection stores every good row and isolates exactly the poisoned ones", async () => {
    const rows: EventRow[] = [];
    const poisoned = new Set([17, 500, 501]);
    for (let i = 0; i < 1000; i++) rows.push(row(poisoned.has(i) ? poisonEvent(team, i === 500 ? "year10000" : "surrogate", i) : capturedEvent(team, i), i));
    let inserts = 0;
    const rejected = await isolateRejected(rows.length, async (lo, hi) => {
      inserts++;
      try {
        await sink.insert(rows.slice(lo, hi));
        return null;
      } catch (err) {
        const f = classifyInsertError(err);
        if (f.kind !== "rows") throw err;
        return f;
      }
    });
    expect(rejected.map((r) => r.index).sort((a, b) => a - b)).toEqual([17, 500, 501]);
    expect(rejected.every((r) => r.failure.kind === "rows")).toBe(true);
    // Three bad rows among 1,000: a few dozen inserts, not one per row.
    expect(inserts).toBeLessThan(60);
    const [[stored]] = (await ch(`SELECT uniqExact(uuid) FROM events WHERE team_id = ${team}`)) as [[string]];
    expect(Number(stored)).toBe(997);
  });
});

describe("insert failures on current ClickHouse (chdb)", () => {
  const dir = join(process.env.INGEST_STATE_DIR ?? join(ROOT, ".local"), "oracle/node_modules/chdb");
  let session: { query(q: string, format?: string): string; cleanup(): void } | undefined;
  afterAll(() => session?.cleanup());

  test("the same rows, and an insert spanning more months than max_partitions_per_insert_block, are `rows`", async () => {
    if (!existsSync(join(dir, "package.json"))) throw new Error(`chdb is not installed at ${dir}: run tests/setup-oracle.sh (make test does)`);
    const chdb = (await import(join(dir, "index.mjs"))) as { Session: new () => NonNullable<typeof session> };
    session = new chdb.Session();
    const ddl = readFileSync(join(ROOT, "infrastructure/clickhouse/001_events.sql"), "utf8").replaceAll("${DATABASE}", "analytics");
    for (const stmt of ddl.split(/;\s*$/m).map((s) => s.trim()).filter((s) => s.replace(/--.*$/gm, "").trim())) session.query(stmt);
    const insert = async (rows: EventRow[]) => void session!.query(`INSERT INTO analytics.events FORMAT JSONEachRow\n${rows.map((r) => JSON.stringify(r)).join("\n")}`);
    expect(await failureOf(() => insert([row(poisonEvent(1, "surrogate"))]))).toMatchObject({ kind: "rows", code: 25 });
    expect(await failureOf(() => insert([row(poisonEvent(1, "year10000"))]))).toMatchObject({ kind: "rows", code: 41 });
    // 150 months in one insert; the default limit is 100 partitions.
    const months = Array.from({ length: 150 }, (_, i) => {
      const e = capturedEvent(1, i);
      e.timestamp = new Date(Date.UTC(2000 + Math.floor(i / 12), i % 12, 5)).toISOString();
      return row(e, i);
    });
    const partitions = await failureOf(() => insert(months));
    expect(partitions).toMatchObject({ kind: "rows", code: 252 });
    // Split in halves, each insert spans fewer months and passes.
    const rejected = await isolateRejected(months.length, async (lo, hi) => {
      try {
        await insert(months.slice(lo, hi));
        return null;
      } catch (err) {
        return classifyInsertError(err);
      }
    });
    expect(rejected).toEqual([]);
    expect(session.query("SELECT count() FROM analytics.events", "CSV").trim()).toBe("150");
  });
});
