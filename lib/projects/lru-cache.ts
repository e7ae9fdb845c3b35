/**
 * A bounded LRU whose entries carry an expiry. Expired entries are NOT dropped on read: the caller decides
 * whether a stale value is good enough (it is, while the backing stores are down). Only capacity evicts.
 * A Map keeps insertion order, so "delete + set" moves an entry to the most-recent end.
 */
export interface CacheEntry<V> {
  value: V;
  expiresAt: number;
}

export class LruCache<V> {
  readonly #entries = new Map<string, CacheEntry<V>>();

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError("LruCache capacity must be at least 1");
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The entry, fresh or stale, marked most recently used; undefined when absent. */
  get(key: string): CacheEntry<V> | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry;
  }

  set(key: string, value: V, expiresAt: number): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt });
    if (this.#entries.size > this.capacity) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }
}
