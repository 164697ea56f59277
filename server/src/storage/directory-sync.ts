// Group commit of directory fsyncs for durable writes (FSYNC=true). A rename into a directory is on
// disk once that directory is fsynced after it; one fsync makes every rename that came before it
// durable. Commits into one directory at once would each wait for a flush of their own, one after
// another; here they share one: a commit asks for a sync after its rename and gets the next fsync that
// starts after it asked. An fsync already under way when it asks may have begun before its rename
// reached the directory, so it does not count: the commit waits for the one after, which every commit
// that asks meanwhile shares too. Nothing is answered before its own rename is covered.
//
// Unlike the retention sweep's batches (retention/directory-syncs.ts), nothing here is deferred: the
// caller waits for the flush, so a 201 still means the entry is on disk.
import type fs from "node:fs/promises";

/** The fsyncs of one directory: the one under way, and the one queued behind it. */
class DirectoryFlushes {
  #inFlight: Promise<void> | undefined;
  /** Starts when the one in flight ends; shared by every caller that asked while it was in flight. */
  #queued: Promise<void> | undefined;

  constructor(private readonly flush: () => Promise<void>) {}

  /** Whether no fsync is under way or queued (the entry can be forgotten). */
  get idle(): boolean {
    return this.#inFlight === undefined && this.#queued === undefined;
  }

  /** Resolves once an fsync that started after this call has succeeded; rejects with its error. */
  covering(): Promise<void> {
    if (this.#queued !== undefined) return this.#queued;
    const inFlight = this.#inFlight;
    if (inFlight === undefined) return this.#start();
    // Its failure is reported to its own callers; the queued fsync runs regardless.
    const queued = inFlight
      .catch(() => {})
      .then(() => {
        this.#queued = undefined;
        return this.#start();
      });
    this.#queued = queued;
    return queued;
  }

  #start(): Promise<void> {
    const flushing = this.flush().finally(() => {
      if (this.#inFlight === flushing) this.#inFlight = undefined;
    });
    this.#inFlight = flushing;
    return flushing;
  }
}

/**
 * The group commit of every directory a volume's writes fsync, by descriptor: commits that hold the
 * same kept directory (held-directories.ts) share its fsyncs. A descriptor names one directory, so a
 * directory removed and made again at the same path is never taken for the old one; two descriptors
 * of one directory merely do not share.
 */
export class GroupedDirectorySyncs {
  readonly #byHandle = new Map<fs.FileHandle, DirectoryFlushes>();

  /** `fsync`: how a directory is flushed (the handle's sync(); a test counts the calls). */
  constructor(private readonly fsync: (handle: fs.FileHandle) => Promise<void> = (handle) => handle.sync()) {}

  /**
   * Resolves once `handle`'s directory has been fsynced, entirely after this call began: every entry
   * changed in it before the call is then on disk. The caller keeps `handle` open until then.
   */
  async sync(handle: fs.FileHandle): Promise<void> {
    let flushes = this.#byHandle.get(handle);
    if (flushes === undefined) {
      flushes = new DirectoryFlushes(() => this.fsync(handle));
      this.#byHandle.set(handle, flushes);
    }
    try {
      await flushes.covering();
    } finally {
      // The map holds only directories with an fsync under way or queued, never a closed descriptor.
      if (flushes.idle && this.#byHandle.get(handle) === flushes) this.#byHandle.delete(handle);
    }
  }

  /** How many directories have an fsync under way or queued now. */
  get pending(): number {
    return this.#byHandle.size;
  }
}
