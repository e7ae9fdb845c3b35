/**
 * Query result cache in Redis. Key = endpoint + project + SHA-256 of the normalized request (validated, defaults
 * applied, object keys sorted), so two spellings of one question share an entry and no project can read another's.
 * Relative ranges (`-7d`) are part of the key as written: an entry lives at most the TTL, which bounds staleness.
 * Ranges that ended before the project's today get a longer TTL. Redis being down never fails a query: reads
 * count as misses and writes are dropped (the Redis client fails fast, see lib/redis/client.ts).
 */
import type { Redis } from "../../lib/redis/client.ts";
import type { Logger } from "../../lib/log/logger.ts";
import { sha256Hex } from "./auth.ts";

export type CacheStatus = "hit" | "miss" | "bypass";

export interface QueryCache {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
}

export function redisQueryCache(redis: Redis): QueryCache {
  return {
    get: (key) => redis.get(key),
    set: async (key, value, ttl) => {
      await redis.set(key, value, "EX", ttl);
    },
  };
}

/** JSON with object keys sorted at every level: the normalized form of a request. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

export function cacheKey(endpoint: string, projectId: number, request: unknown): string {
  return `query:v1:${endpoint}:${projectId}:${sha256Hex(canonicalJson(request))}`;
}

export interface CacheOptions {
  cache: QueryCache | null;
  ttlSeconds: number;
  pastTtlSeconds: number;
  log: Logger;
  onResult?: (endpoint: string, status: CacheStatus | "error") => void;
}

export class ResultCache {
  private lastWarn = 0;
  constructor(private readonly opts: CacheOptions) {}

  /**
   * Returns the cached answer or computes, stores and returns it. `bypass` (client sent `Cache-Control: no-cache`,
   * or caching is off) neither reads nor writes.
   */
  async getOrCompute<T>(
    endpoint: string,
    key: string,
    compute: () => Promise<{ value: T; pastOnly: boolean }>,
    bypass: boolean,
  ): Promise<{ value: T; status: CacheStatus }> {
    const cache = this.opts.cache;
    if (!cache || bypass || this.opts.ttlSeconds <= 0) {
      this.opts.onResult?.(endpoint, "bypass");
      return { value: (await compute()).value, status: "bypass" };
    }
    try {
      const hit = await cache.get(key);
      if (hit !== null) {
        this.opts.onResult?.(endpoint, "hit");
        return { value: JSON.parse(hit) as T, status: "hit" };
      }
    } catch (err) {
      this.warn(err);
      this.opts.onResult?.(endpoint, "error");
    }
    this.opts.onResult?.(endpoint, "miss");
    const { value, pastOnly } = await compute();
    const ttl = pastOnly ? Math.max(this.opts.pastTtlSeconds, this.opts.ttlSeconds) : this.opts.ttlSeconds;
    cache.set(key, JSON.stringify(value), ttl).catch((err: unknown) => this.warn(err));
    return { value, status: "miss" };
  }

  // One warning per 10 s at most: with Redis down every request would otherwise log.
  private warn(err: unknown) {
    const now = Date.now();
    if (now - this.lastWarn < 10_000) return;
    this.lastWarn = now;
    this.opts.log.warn({ err: err instanceof Error ? err.message : String(err) }, "query cache unavailable; answering without it");
  }
}
