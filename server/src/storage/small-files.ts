// The bytes of small artifacts, kept after a first read so that the next GET costs one lstat(2).
//
// Why: a GET that opens the file costs six thread-pool round trips (open, fstat, the containment
// readlink, the sidecar's stat, read, close) of 20-40 µs each on this kind of VM; with 32 clients the
// event loop then sat idle 61 % of the time waiting for them (--cpu-prof, docs/performance.md).
//
// Why it is safe: an entry is served only when lstat of the path finds the very same file version it
// was read from — same device, inode, size, modification and change time (ns). Everything that could
// make the bytes or the file's place differ changes one of them: an upload is a rename of a new inode,
// a delete removes the path, a write in place changes mtime, and a rename or a new hard link of the
// inode changes its ctime. lstat does not follow a final symlink: a planted one misses and takes the
// full, checked path. A directory on the way swapped for a symlink is followed by lstat, but what it
// finds then is another inode, which misses, unless it is the very inode the entry was read from: the
// store's contained open (contained.ts) found that inode at this key's own path, in this namespace, when
// it was read, and a rename or link of the file itself would have changed its ctime. So a swapped path
// can at most be answered with the bytes this key held, never with anything from outside the namespace.
// The one change this cannot see is the one the digest sidecars cannot see either: a write in place, by
// another program, that keeps the size and lands within the same tick of the file system's clock as the
// read. This server never writes in place; artifacts are replaced.
//
// Where the lstat runs: on the event loop when the file lies on a local file system (its kernel answers
// the lstat of an inode just read from memory, in about 1 µs), in libuv's thread pool otherwise. Handing
// it to the pool and back cost more than the lstat itself, 4-35 µs of the event loop's time depending on
// how busy the pool is. On a network file system (NFS, CephFS, SMB, FUSE, anything volume.ts does not
// name local) an lstat can wait on a server that stopped answering, and there it must stall one pool
// thread, never every request.
import { lstat, lstatSync, type BigIntStats } from "node:fs";
import { LRUCache } from "lru-cache";

/** The version of a file an entry was read from. */
export interface FileVersion {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

export interface SmallArtifact {
  readonly size: number;
  readonly body: Buffer<ArrayBuffer>;
  readonly sha256: string;
  /** S3's ETag (without quotes) when the content came through S3: its MD5, or a multipart ETag. */
  readonly s3ETag?: string | undefined;
  readonly modified: Date;
}

interface Entry extends SmallArtifact {
  readonly version: FileVersion;
}

function sameVersion(a: FileVersion, b: BigIntStats): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

export class SmallFileCache {
  /** Bounded by the bytes of the bodies kept; the least recently used go first. */
  readonly #entries: LRUCache<string, Entry>;

  /**
   * @param maxFileBytes files up to this size are kept
   * @param maxTotalBytes all bodies together; the least recently used go first
   * @param statOnEventLoop whether the file system of device `dev` answers lstat from memory
   *   (Volume.isLocalDevice); by default none does, and every lstat goes to the thread pool
   */
  constructor(
    readonly maxFileBytes: number,
    readonly maxTotalBytes: number,
    private readonly statOnEventLoop: (dev: bigint) => boolean = () => false,
  ) {
    // An empty body still takes an entry: lru-cache counts every entry at least 1.
    this.#entries = new LRUCache<string, Entry>({ maxSize: maxTotalBytes, sizeCalculation: (entry) => Math.max(1, entry.body.byteLength) });
  }

  /** The bytes of the bodies kept (an empty body counts 1). */
  get bytes(): number {
    return this.#entries.calculatedSize;
  }

  /** The cached artifact at `path` if it is still exactly that file version; one lstat(2) when cached, none otherwise. */
  async get(path: string): Promise<SmallArtifact | undefined> {
    const entry = this.#entries.peek(path);
    if (entry === undefined) return undefined;
    const stat = this.statOnEventLoop(entry.version.dev) ? lstatNowOrUndefined(path) : await lstatOrUndefined(path);
    // Looked up again: another request may have replaced or dropped the entry during the lstat.
    if (this.#entries.peek(path) !== entry) return undefined;
    if (stat === undefined || !stat.isFile() || !sameVersion(entry.version, stat)) {
      this.#entries.delete(path);
      return undefined;
    }
    // get(), not peek(): a hit makes the entry the most recently used.
    return this.#entries.get(path);
  }

  /** Keeps `body`, read whole from the file version `version` at `path` after its checks passed. */
  remember(path: string, version: FileVersion, artifact: SmallArtifact): void {
    const size = artifact.body.byteLength;
    if (size !== artifact.size || size > this.maxFileBytes || BigInt(size) !== version.size) return;
    // Its own copy: the caller's buffer may be a slice of a larger one that must not be kept alive.
    const { dev, ino, mtimeNs, ctimeNs } = version;
    const entry: Entry = { ...artifact, body: Buffer.from(artifact.body), version: { dev, ino, size: version.size, mtimeNs, ctimeNs } };
    this.#entries.set(path, entry);
  }
}

/**
 * lstat(2) through the callback API: the same thread-pool call as fs.promises.lstat without its
 * promise machinery, which measurably costs on this, the hottest path (a bare Node server answering
 * 4 KiB after one lstat: 27-28k req/s with fs.promises, 30-35k with the callback, wrk -c32).
 */
function lstatOrUndefined(path: string): Promise<BigIntStats | undefined> {
  return new Promise((resolve) => lstat(path, { bigint: true }, (error, stats) => resolve(error === null ? stats : undefined)));
}

/** lstat(2) on the event loop; any error (gone, ENOTDIR, ELOOP) is a miss, as in lstatOrUndefined. */
function lstatNowOrUndefined(path: string): BigIntStats | undefined {
  try {
    return lstatSync(path, { bigint: true, throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}
