/** Plain HTTP queries for the benchmark's own bookkeeping (scratch databases, counts, polls). */

/** Runs `sql` and returns the rows of the TabSeparated answer. */
export async function chExec(url: string, sql: string, timeoutMs = 60_000): Promise<string[][]> {
  const res = await fetch(url, { method: "POST", body: sql, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new Error(`ClickHouse: ${text.trim().slice(0, 500)}\n  in: ${sql.slice(0, 200)}`);
  return text
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => l.split("\t"));
}

export async function chCount(url: string, table: string): Promise<number> {
  const rows = await chExec(url, `SELECT count() FROM ${table}`);
  return Number(rows[0]?.[0] ?? 0);
}
