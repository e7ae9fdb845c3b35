/**
 * ClickHouse migrations upgrade an existing database in place: a scratch database created with the first schema
 * (events without `msec`) and holding a row goes through infrastructure/init-clickhouse.sh; the row is kept, the
 * new column reads 0 for it, the person tables exist, and running the script again changes nothing.
 */
import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ch, ROOT } from "../support/stack.ts";

const db = `i14_migrate_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`;
afterAll(async () => {
  await ch(`DROP DATABASE IF EXISTS ${db}`).catch(() => {});
});

async function init(): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn([join(ROOT, "infrastructure/init-clickhouse.sh"), "127.0.0.1:8123"], { env: { ...process.env, CLICKHOUSE_DATABASE: db }, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out: out + err };
}

test("a database of the first schema is upgraded in place, its rows kept; a second run is a no-op", async () => {
  // The first migration alone, as a database created before the others existed.
  const first = readFileSync(join(ROOT, "infrastructure/clickhouse/001_events.sql"), "utf8").replaceAll("${DATABASE}", db);
  for (const stmt of first.split(/;\s*$/m).map((s) => s.replace(/--.*$/gm, "").trim()).filter(Boolean)) await ch(stmt);
  await ch(`INSERT INTO ${db}.events (uuid, team_id, event, distinct_id, timestamp, properties, prop_keys, prop_values, ip, received_at, inserted_at, kafka_partition, kafka_offset)
    VALUES ('00000000-0000-4000-8000-000000000001', 7, 'old', 'd', '2024-11-01 12:00:00', '{}', [], [], '', '2024-11-01 12:00:00', '2024-11-01 12:00:00', 0, 0)`);
  expect((await ch(`SELECT count() FROM system.columns WHERE database = '${db}' AND table = 'events' AND name = 'msec'`))[0]![0]).toBe("0");

  const run1 = await init();
  expect(run1.code).toBe(0);
  expect(await ch(`SELECT event, msec FROM ${db}.events`)).toEqual([["old", "0"]]);
  for (const table of ["person_distinct_id", "persons"]) expect(await ch(`EXISTS TABLE ${db}.${table}`)).toEqual([["1"]]);
  const columns = await ch(`SELECT table, name, type FROM system.columns WHERE database = '${db}' ORDER BY table, name`);

  const run2 = await init();
  expect(run2.code).toBe(0);
  expect(await ch(`SELECT count() FROM ${db}.events`)).toEqual([["1"]]);
  expect(await ch(`SELECT table, name, type FROM system.columns WHERE database = '${db}' ORDER BY table, name`)).toEqual(columns);
}, 120_000);
