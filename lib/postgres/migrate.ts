/**
 * Applies infrastructure/postgres/migrations/*.sql in name order, each once, inside a transaction, recording it
 * in `schema_migrations`. An advisory lock keeps two starting processes from applying the same file twice.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Sql } from "./client.ts";

const LOCK_ID = 4_242_001;

export async function migrate(sql: Sql, dir: string): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort();
  const applied: string[] = [];
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${LOCK_ID})`;
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`;
    const done = new Set((await tx<{ name: string }[]>`SELECT name FROM schema_migrations`).map((r) => r.name));
    for (const file of files) {
      if (done.has(file)) continue;
      await tx.unsafe(await Bun.file(join(dir, file)).text());
      await tx`INSERT INTO schema_migrations (name) VALUES (${file})`;
      applied.push(file);
    }
  });
  return applied;
}
