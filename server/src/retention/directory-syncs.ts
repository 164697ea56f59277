// Directory fsyncs batched over a tick of background work. A removal is durable once its directory is
// fsynced; syncing each directory once for all the removals of a tick, instead of once per removal, is
// what makes a sweep of many small files affordable with FSYNC=true. A removal lost to a power cut
// before its batch was synced only brings an expired file back, and the next sweep removes it again.
import path from "node:path";
import { syncDirectory } from "../storage/upload.js";

export class DirectorySyncs {
  /** Directory → the directory above which a walk up from it never goes (its namespace's). */
  readonly #pending = new Map<string, string>();

  /** `enabled`: FSYNC; when false nothing is recorded or synced. */
  constructor(private readonly enabled: boolean) {}

  /** Records that an entry of `directory`, at or below `floor`, was removed. */
  add(directory: string, floor: string): void {
    if (this.enabled) this.#pending.set(directory, floor);
  }

  /**
   * One fsync per directory recorded since the last flush; resolves how many were synced. A directory
   * removed since (left empty and pruned) is not there to sync: its nearest surviving ancestor, up to
   * its floor, holds the record of the removal instead.
   */
  async flush(): Promise<number> {
    const batch = [...this.#pending];
    this.#pending.clear();
    const synced = new Set<string>();
    for (const [directory, floor] of batch) {
      for (let current = directory; !synced.has(current); current = path.dirname(current)) {
        try {
          await syncDirectory(current);
          synced.add(current);
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
          // Gone up to the floor (the namespace removed meanwhile): nothing is left to record.
          if (current === floor || !current.startsWith(floor + path.sep)) break;
        }
      }
    }
    return synced.size;
  }
}
