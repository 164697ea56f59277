// A bounded, least-recently-used cache whose entries expire, and a helper that coalesces concurrent
// identical work. Used for token and access decisions: both must stay small (they key on data sent by
// clients) and short-lived (a revoked RoleBinding must take effect within the TTL). The bound, the
// order and the expiry are lru-cache's.
import { LRUCache } from "lru-cache";

export class BoundedTtlCache<V> {
  /** Values boxed: lru-cache keeps objects, and a cached value may be null (a negative verdict) or false. */
  readonly #entries: LRUCache<string, { readonly value: V }>;

  constructor(
    maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new Error("maxEntries must be a positive integer");
    // ttlResolution 0: the clock is read at every lookup, never a value remembered for a millisecond
    // (which a test's clock, moved by hand, would not move).
    this.#entries = new LRUCache<string, { readonly value: V }>({ max: maxEntries, perf: { now }, ttlResolution: 0 });
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value, or undefined when absent or expired (an expired entry is dropped). */
  get(key: string): V | undefined {
    return this.#entries.get(key)?.value;
  }

  /** Stores the value for ttlMs; a TTL of 0 or less stores nothing (caching disabled). */
  set(key: string, value: V, ttlMs: number): void {
    // lru-cache reads a TTL of 0 as "never expires": caching disabled must store nothing instead.
    if (ttlMs <= 0) {
      this.#entries.delete(key);
      return;
    }
    // lru-cache keeps an entry through its TTL's last millisecond; here it is gone once the TTL has
    // passed (a decision cached for 30 s is not used at 30 s), so its age counts from a millisecond earlier.
    this.#entries.set(key, { value }, { ttl: Math.ceil(ttlMs), start: this.now() - 1 });
  }

  clear(): void {
    this.#entries.clear();
  }
}

/**
 * Runs at most one task per key at a time; callers arriving meanwhile share its promise. Not lru-cache's
 * fetch(): a result that must not be cached (a TTL of 0) is still shared with the callers waiting for it.
 */
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
