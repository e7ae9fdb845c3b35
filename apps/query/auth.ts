/**
 * Secret query key -> project id. `Authorization: Bearer <key>`; PostgreSQL stores only the key's SHA-256 (hex).
 * Lookups are cached in-process (LRU with a TTL, negative answers too, for a shorter time) so a busy dashboard does
 * not hit PostgreSQL per request, and a revoked key stops working within the TTL.
 */
import type { MiddlewareHandler } from "hono";
import type { Sql } from "../../lib/postgres/client.ts";
import { QueryApiError } from "./errors.ts";

export type KeyLookup = (keyHash: string) => Promise<number | null>;

export function postgresKeyLookup(sql: Sql): KeyLookup {
  return async (keyHash) => {
    const rows = await sql<{ id: number }[]>`SELECT id FROM projects WHERE secret_key_hash = ${keyHash}`;
    return rows[0]?.id ?? null;
  };
}

export function sha256Hex(text: string): string {
  return new Bun.CryptoHasher("sha256").update(text).digest("hex");
}

/** A small LRU map with per-entry expiry; Map keeps insertion order, so the first key is the least recent. */
export class LruTtlCache<K, V> {
  private readonly entries = new Map<K, { value: V; expires: number }>();
  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: K): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    if (e.expires <= this.now()) return undefined;
    this.entries.set(key, e);
    return e.value;
  }

  set(key: K, value: V, ttlMs: number): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expires: this.now() + ttlMs });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as K);
  }

  get size(): number {
    return this.entries.size;
  }
}

export interface KeyResolverOptions {
  lookup: KeyLookup;
  ttlMs?: number;
  negativeTtlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

export class KeyResolver {
  private readonly cache: LruTtlCache<string, number | null>;
  private readonly inflight = new Map<string, Promise<number | null>>();
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  lookups = 0;

  constructor(private readonly opts: KeyResolverOptions) {
    this.cache = new LruTtlCache(opts.maxEntries ?? 10_000, opts.now);
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.negativeTtlMs = opts.negativeTtlMs ?? 5_000;
  }

  /** The project id for a secret key, or null for an unknown key. Throws if PostgreSQL cannot answer. */
  async resolve(key: string): Promise<number | null> {
    const hash = sha256Hex(key);
    const cached = this.cache.get(hash);
    if (cached !== undefined) return cached;
    // Concurrent requests with the same new key share one PostgreSQL round trip.
    let pending = this.inflight.get(hash);
    if (!pending) {
      this.lookups++;
      pending = this.opts.lookup(hash).finally(() => this.inflight.delete(hash));
      this.inflight.set(hash, pending);
    }
    const id = await pending;
    this.cache.set(hash, id, id === null ? this.negativeTtlMs : this.ttlMs);
    return id;
  }
}

export type AuthVariables = { projectId: number };

/** Cheap checks first (header shape), then the cached lookup; sets `projectId` for the handlers. */
export function requireProjectKey(resolver: KeyResolver): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    const header = c.req.header("authorization");
    if (!header) throw new QueryApiError("missing_key", "send the project's secret key as `Authorization: Bearer <key>`");
    const m = /^Bearer ([\x21-\x7e]{8,256})$/.exec(header);
    if (!m) throw new QueryApiError("invalid_key", "malformed Authorization header; expected `Bearer <key>`");
    let projectId: number | null;
    try {
      projectId = await resolver.resolve(m[1]!);
    } catch (err) {
      throw new QueryApiError("auth_unavailable", "cannot verify the key right now; retry later", undefined, { cause: err });
    }
    if (projectId === null) throw new QueryApiError("invalid_key", "unknown or revoked key");
    c.set("projectId", projectId);
    await next();
  };
}
