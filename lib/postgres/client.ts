/** PostgreSQL through postgres.js: a small pool, short timeouts so an outage is seen quickly, not waited out. */
import postgres from "postgres";

export type Sql = postgres.Sql;

export function createPostgres(url: string, opts: { max?: number } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 5,
    connect_timeout: 3,
    idle_timeout: 30,
    onnotice: () => {},
  });
}

export async function pingPostgres(sql: Sql): Promise<void> {
  await sql`SELECT 1`;
}
