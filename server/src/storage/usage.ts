// Bytes used per namespace, for quotas and metrics. Measured by walking a namespace once per process
// (so it is right after any restart, whatever happened while the server was down), with the namespace's
// commit lock to itself, then kept current by the deltas of every commit and delete.
import type { NamespaceLock } from "./mutex.js";

export class NamespaceUsage {
  readonly #bytes = new Map<string, number>();

  constructor(
    private readonly measure: (namespace: string) => Promise<number>,
    /** The namespace's commit lock; measuring holds it alone. */
    private readonly lock: Pick<NamespaceLock, "run">,
  ) {}

  /** Current usage; measures the namespace first if this process has not yet. */
  get(namespace: string): Promise<number> {
    const known = this.#bytes.get(namespace);
    if (known !== undefined) return Promise.resolve(known);
    return this.lock.run(namespace, () => this.getLocked(namespace));
  }

  /** As get(), for callers already holding the namespace's commit lock. */
  async getLocked(namespace: string): Promise<number> {
    const known = this.#bytes.get(namespace);
    if (known !== undefined) return known;
    const measured = await this.measure(namespace);
    this.#bytes.set(namespace, measured);
    return measured;
  }

  /**
   * Counts `delta` bytes against a measured namespace unless that would exceed `quota` (> 0; 0: none);
   * false when it would. One synchronous step, so commits of different keys running at once cannot both
   * pass a check only one of them fits; a commit that fails afterwards gives the bytes back with add().
   */
  tryReserve(namespace: string, delta: number, quota: number): boolean {
    const known = this.#bytes.get(namespace);
    if (known === undefined) throw new Error(`the usage of namespace ${namespace} was not measured before a commit`);
    if (quota > 0 && known + delta > quota) return false;
    this.#bytes.set(namespace, Math.max(0, known + delta));
    return true;
  }

  /** Applies a change; unmeasured namespaces are skipped (their first measurement will include it). */
  add(namespace: string, delta: number): void {
    const known = this.#bytes.get(namespace);
    if (known !== undefined) this.#bytes.set(namespace, Math.max(0, known + delta));
  }

  /** Measured namespaces and their usage. */
  entries(): IterableIterator<[string, number]> {
    return this.#bytes.entries();
  }
}
