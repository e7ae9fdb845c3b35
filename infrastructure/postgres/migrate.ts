/** `bun infrastructure/postgres/migrate.ts`: applies pending PostgreSQL migrations to POSTGRES_URL. */
import { join } from "node:path";
import { createPostgres } from "../../lib/postgres/client.ts";
import { migrate } from "../../lib/postgres/migrate.ts";

const url = process.env.POSTGRES_URL ?? "postgres://ingest:ingest@127.0.0.1:5432/ingest";
const sql = createPostgres(url, { max: 1 });
try {
  const applied = await migrate(sql, join(import.meta.dir, "migrations"));
  console.log(applied.length ? `applied ${applied.join(", ")}` : "migrations up to date");
} finally {
  await sql.end();
}
