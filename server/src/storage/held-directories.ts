// Directories below the volume's root kept open between requests, so that a write into a directory it
// wrote into before costs one readlink(2) instead of open, readlink and close: three round trips through
// libuv's thread pool, which on small PUTs were a sixth of the request's file-system calls.
//
// Containment is what it was (contained.ts): before each use the kept descriptor must still read back,
// through /proc/self/fd/<fd>, the real path it was opened for. A directory moved, removed (the kernel
// appends " (deleted)") or swapped for a symlink since then reads back something else, and is dropped
// and opened afresh from its path, which refuses a symlink. The verified-then-used window is the one a
// freshly opened directory has: the readlink is the check either way.
import type fs from "node:fs/promises";

/** One kept directory: its descriptor, and how many callers hold it now. */
interface Kept {
  readonly handle: fs.FileHandle;
  users: number;
  /** Out of the cache: its descriptor is closed when the last user lets go. */
  dropped: boolean;
}

/** What the cache needs of the volume: opening a directory verified, and verifying a kept one. */
export interface DirectorySource<Held> {
  /** Opens and verifies the directory at `segments`; undefined when it is not there as a real directory. */
  open(segments: readonly string[]): Promise<Held | undefined>;
  /** The descriptor of an opened directory, to keep. */
  handleOf(held: Held): fs.FileHandle;
  /** Whether `handle` still names the real directory at `segments` (never throws). */
  stillAt(handle: fs.FileHandle, segments: readonly string[]): Promise<boolean>;
  /** A holder of a kept descriptor whose close() calls `release` instead of closing it. */
  lease(handle: fs.FileHandle, release: () => Promise<void>): Held;
}

/**
 * Keeps up to `capacity` directories open, least recently used dropped first. acquire() hands out a
 * holder to close() as if it owned the descriptor; a dropped directory's descriptor closes once the
 * last holder has.
 */
export class HeldDirectoryCache<Held> {
  readonly #kept = new Map<string, Kept>();
  /** After close(): directories are still opened for their callers, but none is kept. */
  #closed = false;

  constructor(
    private readonly source: DirectorySource<Held>,
    readonly capacity: number,
  ) {}

  /** How many directories are kept open now. */
  get size(): number {
    return this.#kept.size;
  }

  /** The directory at `segments`, verified now; undefined when it is not there as a real directory. */
  async acquire(segments: readonly string[]): Promise<Held | undefined> {
    const name = segments.join("\0");
    const kept = this.#kept.get(name);
    if (kept !== undefined) {
      kept.users += 1;
      if ((await this.source.stillAt(kept.handle, segments)) && !kept.dropped) {
        // Most recently used last: Map iteration is insertion order.
        this.#kept.delete(name);
        this.#kept.set(name, kept);
        return this.#lease(kept);
      }
      this.#drop(name, kept);
      await this.#release(kept);
    }
    const opened = await this.source.open(segments);
    // Another caller may have opened and kept the same directory meanwhile: this one stays its own.
    if (opened === undefined || this.#closed || this.#kept.has(name)) return opened;
    const fresh: Kept = { handle: this.source.handleOf(opened), users: 1, dropped: false };
    this.#kept.set(name, fresh);
    for (const [oldest, entry] of this.#kept) {
      if (this.#kept.size <= this.capacity) break;
      this.#drop(oldest, entry);
      // Not awaited: the caller has nothing to wait for in another directory's close.
      if (entry.users === 0) void entry.handle.close().catch(() => {});
    }
    return this.#lease(fresh);
  }

  /**
   * Lets go of every kept directory: those no one holds close now, the others when their last holder
   * lets go. For the store's shutdown: a FileHandle left to the garbage collector is closed with a
   * warning, and a server made again in the same process (tests) would otherwise hold them for ever.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const idle: Kept[] = [];
    for (const [name, kept] of this.#kept) {
      this.#drop(name, kept);
      if (kept.users === 0) idle.push(kept);
    }
    await Promise.all(idle.map((kept) => kept.handle.close()));
  }

  #lease(kept: Kept): Held {
    let released = false;
    return this.source.lease(kept.handle, async () => {
      // close() twice must not let another holder's descriptor go.
      if (released) return;
      released = true;
      await this.#release(kept);
    });
  }

  #drop(name: string, kept: Kept): void {
    kept.dropped = true;
    if (this.#kept.get(name) === kept) this.#kept.delete(name);
  }

  async #release(kept: Kept): Promise<void> {
    kept.users -= 1;
    if (kept.users === 0 && kept.dropped) await kept.handle.close();
  }
}
