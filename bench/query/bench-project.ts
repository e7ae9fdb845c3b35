/**
 * The benchmark's project: one PostgreSQL project per seed shape (name encodes events/users/days/seed), reused
 * across runs. Its team id is the project id; its secret key is rotated by each bench run (only the hash is stored,
 * so the key of an earlier run cannot be recovered).
 */
import { sha256Hex } from "../../apps/query/auth.ts";
import type { Sql } from "../../lib/postgres/client.ts";

export interface SeedShape {
  events: number;
  users: number;
  days: number;
  seed: number;
  /** Fraction of users anonymous first and identified mid-journey (generator's anonymousShare); 0 = none. */
  anonymousShare?: number;
}

/** Shapes without anonymous users keep their old name, so their projects (and data) are found again. */
export const projectName = (s: SeedShape) =>
  `bench-query ${s.events}e ${s.users}u ${s.days}d seed${s.seed}${s.anonymousShare ? ` anon${Math.round(s.anonymousShare * 100)}` : ""}`;

export async function findOrCreateProject(pg: Sql, shape: SeedShape): Promise<{ id: number; created: boolean }> {
  const name = projectName(shape);
  const found = await pg<{ id: number }[]>`SELECT id FROM projects WHERE name = ${name} ORDER BY id LIMIT 1`;
  if (found[0]) return { id: found[0].id, created: false };
  const [row] = await pg<{ id: number }[]>`
    INSERT INTO projects (name, token, secret_key_hash)
    VALUES (${name}, ${"tok_bench_" + crypto.randomUUID()}, ${sha256Hex(crypto.randomUUID())})
    RETURNING id`;
  return { id: row!.id, created: true };
}

export async function rotateKey(pg: Sql, id: number): Promise<string> {
  const key = `phx_bench_${crypto.randomUUID().replaceAll("-", "")}`;
  await pg`UPDATE projects SET secret_key_hash = ${sha256Hex(key)} WHERE id = ${id}`;
  return key;
}
