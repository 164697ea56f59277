// A bounded, least-recently-used cache whose entries expire, and a helper that coalesces concurrent
// identical work. Used for token and access decisions: both must stay small (they key on data sent by
// clients) and short-lived (a revoked RoleBinding must take effect within the TTL).

export class BoundedTtlCache<V> {
  // A Map iterates in insertion order; re-inserting on every hit makes the first key the least recently used.
  private readonly entries = new Map<string, { readonly value: V; readonly expiresAt: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new Error("maxEntries must be a positive integer");
  }

  get size(): number {
    return this.entries.size;
  }

  /** The value, or undefined when absent or expired (an expired entry is dropped). */
  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    if (entry.expiresAt <= this.now()) return undefined;
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Stores the value for ttlMs; a TTL of 0 or less stores nothing (caching disabled). */
  set(key: string, value: V, ttlMs: number): void {
    if (ttlMs <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}

/** Runs at most one task per key at a time; callers arriving meanwhile share its promise. */
export class InFlight<V> {
  private readonly pending = new Map<string, Promise<V>>();

  get size(): number {
    return this.pending.size;
  }

  run(key: string, task: () => Promise<V>): Promise<V> {
    const existing = this.pending.get(key);
    if (existing) return existing;
    const started = task().finally(() => this.pending.delete(key));
    this.pending.set(key, started);
    return started;
  }
}

/**
 * A BoundedTtlCache in front of an expensive lookup: a hit answers at once; a miss runs the lookup once
 * however many callers ask meanwhile, and caches its result for `ttlFor(result)`. A failed lookup is not
 * cached. `onLookup` is told of every hit and miss (metrics).
 */
export class CoalescingCache<V> {
  private readonly cache: BoundedTtlCache<V>;
  private readonly inFlight = new InFlight<V>();

  constructor(
    maxEntries: number,
    private readonly onLookup: (result: "hit" | "miss") => void,
    now?: () => number,
  ) {
    this.cache = new BoundedTtlCache(maxEntries, now);
  }

  get size(): number {
    return this.cache.size;
  }

  getOrLoad(key: string, load: () => Promise<V>, ttlFor: (value: V) => number): Promise<V> {
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.onLookup("hit");
      return Promise.resolve(cached);
    }
    this.onLookup("miss");
    return this.inFlight.run(key, async () => {
      const value = await load();
      this.cache.set(key, value, ttlFor(value));
      return value;
    });
  }
}
