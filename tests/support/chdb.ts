/**
 * Current ClickHouse in process (chdb, test-only install by tests/setup-oracle.sh) with the events schema: every
 * migration of infrastructure/clickhouse, in order, as init-clickhouse.sh applies them to a fresh database.
 * A missing chdb throws with the reason: tests that need it fail, never skip.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./stack.ts";

export interface ChdbSession {
  query(q: string, format?: string): string;
  cleanup(): void;
}

export const CHDB_DIR = join(process.env.INGEST_STATE_DIR ?? join(ROOT, ".local"), "oracle/node_modules/chdb");

export async function openChdbEvents(database = "analytics"): Promise<ChdbSession> {
  if (!existsSync(join(CHDB_DIR, "package.json"))) throw new Error(`chdb is not installed at ${CHDB_DIR}: run tests/setup-oracle.sh`);
  const chdb = (await import(join(CHDB_DIR, "index.mjs"))) as { Session: new () => ChdbSession };
  const session = new chdb.Session();
  for (const file of readdirSync(join(ROOT, "infrastructure/clickhouse")).filter((f) => f.endsWith(".sql")).sort()) {
    const ddl = readFileSync(join(ROOT, "infrastructure/clickhouse", file), "utf8").replaceAll("${DATABASE}", database);
    for (const stmt of ddl.split(/;\s*$/m).map((s) => s.replace(/--.*$/gm, "").trim()).filter(Boolean)) session.query(stmt);
  }
  return session;
}

/** JSONEachRow rows into `events`, refusing unknown fields as ClickHouse 18.16 does (current versions skip them). */
export function insertRows(session: ChdbSession, rows: object[], table = "analytics.events"): void {
  session.query(`INSERT INTO ${table} SETTINGS input_format_skip_unknown_fields = 0 FORMAT JSONEachRow\n${rows.map((r) => JSON.stringify(r)).join("\n")}`);
}
