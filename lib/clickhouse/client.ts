/** ClickHouse over HTTP through @clickhouse/client-web (fetch-based: Bun's own HTTP stack). */
import { createClient, type ClickHouseClient as WebClickHouseClient } from "@clickhouse/client-web";

export type ClickHouse = WebClickHouseClient;

export interface ClickHouseOptions {
  url: string;
  database: string;
  username?: string;
  password?: string;
  requestTimeoutMs?: number;
}

export function createClickHouse(opts: ClickHouseOptions): ClickHouse {
  return createClient({
    url: opts.url,
    database: opts.database,
    username: opts.username ?? "default",
    password: opts.password ?? "",
    request_timeout: opts.requestTimeoutMs ?? 30_000,
    // ClickHouse 18.16 rejects settings it does not know; send none by default.
    clickhouse_settings: {},
  });
}

export async function pingClickHouse(ch: ClickHouse): Promise<void> {
  const r = await ch.ping();
  if (!r.success) throw r.error;
}
