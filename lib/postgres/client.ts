/** PostgreSQL through postgres.js: a small pool, short timeouts so an outage is seen quickly, not waited out. */
import postgres from "postgres";

export type Sql = postgres.Sql;

export function createPostgres(url: string, opts: { max?: number } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 5,
    connect_timeout: 3,
    idle_timeout: 30,
    // Server-side bounds, so nothing waits forever on a lock held by a stuck session or a runaway statement:
    // the caller sees an error (57014, 55P03) and retries with its own backoff.
    connection: { statement_timeout: 10_000, lock_timeout: 5_000, idle_in_transaction_session_timeout: 30_000 },
    onnotice: () => {},
  });
}

export async function pingPostgres(sql: Sql): Promise<void> {
  await sql`SELECT 1`;
}
