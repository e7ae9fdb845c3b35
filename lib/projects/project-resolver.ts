/**
 * token -> project, on the capture hot path. Three tiers: an in-process LRU with TTL, Redis (shared by every
 * capture process), then PostgreSQL (the truth).
 *
 * Availability over freshness: a known token keeps working through a Redis or PostgreSQL outage, because an
 * expired in-process entry is served while the stores cannot answer (and refreshed in the background while they
 * can). Unknown tokens are cached too - in their own, shorter-lived LRU, so a flood of made-up tokens neither
 * reaches PostgreSQL on every request nor evicts the real projects. Concurrent misses for one token share one
 * lookup.
 */
import type { Redis } from "../redis/client.ts";
import { LruCache } from "./lru-cache.ts";
import { ProjectLookupUnavailable, type Project, type ProjectSource } from "./project.ts";

export interface ProjectResolverOptions {
  source: ProjectSource;
  /** Shared cache; null runs without it (tests, or a deployment without Redis). */
  redis: Pick<Redis, "get" | "set"> | null;
  /** How long an in-process answer is trusted before it is re-checked. */
  ttlMs: number;
  /** How long Redis keeps a project. */
  redisTtlMs: number;
  /** How long "no such token" is believed, in process and in Redis. */
  negativeTtlMs: number;
  capacity: number;
  now?: () => number;
  /** Told about every failed store call (a metric, a rate-limited log); never about hits or misses. */
  onStoreError?: (store: "redis" | "postgres", err: unknown) => void;
  redisKeyPrefix?: string;
}

/** After a failed refresh, a stale entry is served this long before the stores are asked again. */
const RETRY_AFTER_FAILURE_MS = 1000;

export class ProjectResolver {
  readonly #known: LruCache<Project>;
  readonly #unknown: LruCache<null>;
  readonly #inflight = new Map<string, Promise<Project | null>>();
  readonly #now: () => number;
  readonly #prefix: string;

  constructor(private readonly opts: ProjectResolverOptions) {
    this.#known = new LruCache(opts.capacity);
    this.#unknown = new LruCache(opts.capacity);
    this.#now = opts.now ?? Date.now;
    this.#prefix = opts.redisKeyPrefix ?? "capture:project:";
  }

  /**
   * The project for `token`, or null when no project has it.
   * @throws ProjectLookupUnavailable when the token is not cached and no store can answer.
   */
  async resolve(token: string): Promise<Project | null> {
    const now = this.#now();
    const entry = this.#known.get(token) ?? this.#unknown.get(token);
    if (entry !== undefined) {
      if (entry.expiresAt > now) return entry.value;
      // Stale: answer now, refresh behind the request (failures keep the stale answer, see #lookup).
      this.#refresh(token).catch(() => {});
      return entry.value;
    }
    return this.#refresh(token);
  }

  /** Drops a token from the in-process tiers (tests; an operator revoking a token in one process). */
  forget(token: string): void {
    this.#known.delete(token);
    this.#unknown.delete(token);
  }

  #refresh(token: string): Promise<Project | null> {
    let pending = this.#inflight.get(token);
    if (!pending) {
      pending = this.#lookup(token).finally(() => this.#inflight.delete(token));
      this.#inflight.set(token, pending);
    }
    return pending;
  }

  async #lookup(token: string): Promise<Project | null> {
    const { redis, source, onStoreError } = this.opts;
    const key = this.#prefix + token;
    if (redis) {
      try {
        const cached = await redis.get(key);
        if (cached !== null) {
          const value = JSON.parse(cached) as Project | null;
          this.#remember(token, value);
          return value;
        }
      } catch (err) {
        onStoreError?.("redis", err);
      }
    }
    let value: Project | null;
    try {
      value = await source.findByToken(token);
    } catch (err) {
      onStoreError?.("postgres", err);
      const stale = this.#known.get(token) ?? this.#unknown.get(token);
      if (stale === undefined) throw new ProjectLookupUnavailable(token, err);
      stale.expiresAt = this.#now() + RETRY_AFTER_FAILURE_MS;
      return stale.value;
    }
    this.#remember(token, value);
    if (redis) {
      const ttl = value ? this.opts.redisTtlMs : this.opts.negativeTtlMs;
      // Best effort and off the request's path: a Redis failure here only costs a later PostgreSQL read.
      redis.set(key, JSON.stringify(value), "PX", ttl).catch((err: unknown) => onStoreError?.("redis", err));
    }
    return value;
  }

  #remember(token: string, value: Project | null): void {
    const now = this.#now();
    if (value) {
      this.#unknown.delete(token);
      this.#known.set(token, value, now + this.opts.ttlMs);
    } else {
      this.#known.delete(token);
      this.#unknown.set(token, null, now + this.opts.negativeTtlMs);
    }
  }
}
