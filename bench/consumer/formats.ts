/**
 * Insert format comparison on the real ClickHouse (18.16 here) through @clickhouse/client-web, with plain fetch
 * to the HTTP interface as a reference: 100k realistic EventRows per insert, time measured from the rows (so
 * encoding counts) to the server's answer, into a scratch table created fresh before every insert (no
 * background merges of earlier runs competing), median of several runs taken round-robin across formats so
 * that load from other processes on the machine spreads over all of them.
 */
import { decodeCapturedEvent } from "../../lib/events/captured-event.ts";
import { type ClickHouse, createClickHouse } from "../../lib/clickhouse/client.ts";
import { clickhouseDateTime, type EventRow } from "../../lib/events/event-row.ts";
import { toRow } from "../../apps/consumer/rows.ts";
import { jsonEachRow, rowBinary, tabSeparated } from "./encoders.ts";
import { EventTemplates } from "./events.ts";
import { median } from "./stats.ts";
import { chExec } from "./clickhouse.ts";

export interface FormatFigures {
  format: string;
  via: string;
  supported: boolean;
  error?: string;
  runs: number;
  /** Median over runs. */
  total_ms: number | null;
  encode_ms: number | null;
  send_ms: number | null;
  rows_per_s: number | null;
  body_bytes: number | null;
  /** Content hash equals the JSONEachRow insert's (same rows stored). */
  content_matches_jsoneachrow: boolean | null;
  /** rows/s relative to JSONEachRow through the client (1 = same). */
  vs_jsoneachrow: number | null;
  all_total_ms: number[];
}

interface Variant {
  format: string;
  via: string;
  /** Returns [encodeMs, totalMs, bodyBytes]. */
  run: (rows: EventRow[], table: string) => Promise<[number, number, number]>;
}

const HASH = "sum(cityHash64(toString(uuid), team_id, event, distinct_id, timestamp, properties, prop_keys, prop_values, ip, received_at, inserted_at, kafka_partition, kafka_offset))";

/** `n` rows as the consumer builds them (decode + toRow) from the benchmark's realistic events. */
export function makeRows(team: number, n: number): EventRow[] {
  const t = new EventTemplates(team, 4096, 7);
  return rowsFromValues(Array.from({ length: n }, () => t.take().value));
}

export function rowsFromValues(values: string[]): EventRow[] {
  const n = values.length;
  const insertedAt = clickhouseDateTime(Date.now());
  const rows = new Array<EventRow>(n);
  for (let i = 0; i < n; i++) {
    const d = decodeCapturedEvent(values[i]!);
    if (!d.ok) throw new Error(`generated event does not decode: ${d.detail}`);
    rows[i] = toRow(d.event, i % 12, BigInt(i), insertedAt);
  }
  return rows;
}

function streamOf(body: string | Uint8Array): ReadableStream<Uint8Array> {
  return new Blob([body]).stream();
}

async function fetchInsert(url: string, db: string, query: string, body: string | Uint8Array): Promise<void> {
  const target = new URL(url);
  target.searchParams.set("database", db);
  target.searchParams.set("query", query);
  const res = await fetch(target, { method: "POST", body });
  const text = await res.text();
  if (!res.ok) throw new Error(text.trim().slice(0, 300));
}

function variants(client: ClickHouse, url: string, db: string): Variant[] {
  const timed = async (encode: () => string | Uint8Array, send: (body: string | Uint8Array) => Promise<void>): Promise<[number, number, number]> => {
    const t0 = performance.now();
    const body = encode();
    const t1 = performance.now();
    await send(body);
    const t2 = performance.now();
    return [t1 - t0, t2 - t0, typeof body === "string" ? Buffer.byteLength(body) : body.length];
  };
  const drain = async (r: { stream: ReadableStream }) => {
    await new Response(r.stream).text();
  };
  return [
    {
      format: "JSONEachRow",
      via: "client.insert (current)",
      run: async (rows, table) => {
        // The client encodes inside insert(); encoding is timed separately with the identical function.
        const e0 = performance.now();
        const body = jsonEachRow(rows);
        const encodeMs = performance.now() - e0;
        const t0 = performance.now();
        await client.insert({ table, values: rows, format: "JSONEachRow" });
        return [encodeMs, performance.now() - t0, Buffer.byteLength(body)];
      },
    },
    {
      format: "JSONEachRow",
      via: "fetch",
      run: (rows, table) => timed(() => jsonEachRow(rows), (b) => fetchInsert(url, db, `INSERT INTO ${table} FORMAT JSONEachRow`, b)),
    },
    {
      // client-web's exec() sends only `query` as the body (its `values` are ignored by the web connection), so
      // the data goes inline after the query, as the HTTP interface allows for text formats.
      format: "TabSeparated",
      via: "client.exec (data inline)",
      run: (rows, table) =>
        timed(
          () => `INSERT INTO ${table} FORMAT TabSeparated\n${tabSeparated(rows)}`,
          async (b) => drain(await client.exec({ query: b as string })),
        ),
    },
    {
      format: "TabSeparated",
      via: "fetch",
      run: (rows, table) => timed(() => tabSeparated(rows), (b) => fetchInsert(url, db, `INSERT INTO ${table} FORMAT TabSeparated`, b)),
    },
    {
      // Binary bodies cannot go through client-web (exec's body is the query string); plain fetch only.
      format: "RowBinary",
      via: "fetch",
      run: (rows, table) => timed(() => rowBinary(rows), (b) => fetchInsert(url, db, `INSERT INTO ${table} FORMAT RowBinary`, b)),
    },
    {
      // Reference, not a candidate: the same JSONEachRow body into an ENGINE = Null twin of the table, i.e. the
      // server's parsing without sorting, compressing and writing the part.
      format: "JSONEachRow -> Null engine",
      via: "fetch (server parse only)",
      run: async (rows, table) => {
        const body = jsonEachRow(rows);
        const t0 = performance.now();
        await fetchInsert(url, db, `INSERT INTO ${table}_null FORMAT JSONEachRow`, body);
        return [0, performance.now() - t0, Buffer.byteLength(body)];
      },
    },
    {
      format: "JSONCompactEachRow",
      via: "client.insert",
      run: async (rows, table) => {
        const t0 = performance.now();
        const values = rows.map((r) => Object.values(r));
        await client.insert({ table, values, format: "JSONCompactEachRow" });
        return [0, performance.now() - t0, 0];
      },
    },
    {
      format: "JSON (InputJSON {meta,data})",
      via: "client.insert",
      run: async (rows, table) => {
        const t0 = performance.now();
        await client.insert({ table, values: { meta: [], data: rows }, format: "JSON" });
        return [0, performance.now() - t0, 0];
      },
    },
  ];
}

export async function compareFormats(opts: {
  url: string;
  db: string;
  rows: EventRow[];
  runs: number;
  /** Skip variants already shown unusable (e.g. a second row shape). */
  skip?: (format: string) => boolean;
  log: (s: string) => void;
}): Promise<FormatFigures[]> {
  const { url, db, runs, log } = opts;
  const client = createClickHouse({ url, database: db, requestTimeoutMs: 120_000 });
  const rows = opts.rows;
  const table = "scratch";
  const list = variants(client, url, db).filter((v) => !opts.skip?.(v.format));
  const results = list.map(() => ({ totals: [] as number[], encodes: [] as number[], bytes: 0, error: undefined as string | undefined, hash: null as string | null }));
  const fresh = async () => {
    await chExec(url, `DROP TABLE IF EXISTS ${db}.${table}`);
    await chExec(url, `CREATE TABLE ${db}.${table} AS analytics.events`);
    await chExec(url, `CREATE TABLE IF NOT EXISTS ${db}.${table}_null AS analytics.events ENGINE = Null`);
  };
  try {
    for (let run = 0; run < runs; run++) {
      for (let i = 0; i < list.length; i++) {
        const v = list[i]!;
        const res = results[i]!;
        if (res.error) continue;
        await fresh();
        try {
          const [enc, total, bytes] = await v.run(rows, table);
          res.totals.push(total);
          res.encodes.push(enc);
          res.bytes = bytes;
          if (res.hash === null && !v.format.includes("Null")) {
            const [[count, hash]] = (await chExec(url, `SELECT count(), ${HASH} FROM ${db}.${table}`)) as [[string, string]];
            if (Number(count) !== rows.length) throw new Error(`inserted ${count} rows of ${rows.length}`);
            res.hash = hash;
          }
          log(`  formats: run ${run + 1}/${runs} ${v.format} via ${v.via}: ${total.toFixed(0)} ms (encode ${enc.toFixed(0)} ms)`);
        } catch (err) {
          res.error = String(err instanceof Error ? err.message : err).split("\n")[0]!.slice(0, 300);
          log(`  formats: ${v.format} via ${v.via}: not usable: ${res.error}`);
        }
      }
    }
  } finally {
    await chExec(url, `DROP TABLE IF EXISTS ${db}.${table}`).catch(() => {});
    await chExec(url, `DROP TABLE IF EXISTS ${db}.${table}_null`).catch(() => {});
    await client.close();
  }
  const baseHash = results[0]!.hash;
  const out: FormatFigures[] = list.map((v, i) => {
    const r = results[i]!;
    const supported = r.totals.length > 0 && !r.error;
    const total = supported ? median(r.totals) : null;
    const encode = supported ? median(r.encodes) : null;
    return {
      format: v.format,
      via: v.via,
      supported,
      ...(r.error ? { error: r.error } : {}),
      runs: r.totals.length,
      total_ms: total,
      encode_ms: encode,
      send_ms: total !== null && encode !== null ? total - encode : null,
      rows_per_s: total ? Math.round((rows.length / total) * 1000) : null,
      body_bytes: supported ? r.bytes : null,
      content_matches_jsoneachrow: supported && baseHash !== null && r.hash !== null ? r.hash === baseHash : null,
      vs_jsoneachrow: null,
      all_total_ms: r.totals.map((x) => Math.round(x)),
    };
  });
  const base = out[0]!.rows_per_s;
  for (const f of out) f.vs_jsoneachrow = base && f.rows_per_s ? Math.round((f.rows_per_s / base) * 100) / 100 : null;
  return out;
}
