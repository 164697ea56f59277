// Bytes used per namespace, for quotas and metrics. Measured by walking a namespace once per process
// (so it is right after any restart, whatever happened while the server was down), then kept current
// by the deltas of every commit and delete, which all run under the namespace's commit lock.
import type { KeyedMutex } from "./mutex.js";

export class NamespaceUsage {
  readonly #bytes = new Map<string, number>();

  constructor(
    private readonly measure: (namespace: string) => Promise<number>,
    private readonly lock: KeyedMutex,
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
