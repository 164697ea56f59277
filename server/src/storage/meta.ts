// Content metadata kept beside the volume's files. A sidecar names the exact file version it describes
// (inode, size, modification time in ns), so a stale sidecar — left by a crash between the sidecar's
// rename and the content's, or by racing writers — is detected and the digest recomputed from the bytes.
// ETag and checksum therefore always describe the bytes on disk.
import { createHash } from "node:crypto";
import type { BigIntStats } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { LRUCache } from "lru-cache";
import type { ContentMeta } from "./sidecar-format.js";
import type { Scratch } from "./temp-names.js";

export { metaFor, type ContentMeta } from "./sidecar-format.js";

export function describes(meta: ContentMeta | undefined, stat: BigIntStats): meta is ContentMeta {
  return (
    meta !== undefined &&
    meta.ino === String(stat.ino) &&
    meta.size === Number(stat.size) &&
    meta.mtimeNs === String(stat.mtimeNs)
  );
}

/** A sidecar as last read, with the identity of the sidecar file it was read from. */
interface CachedSidecar {
  readonly ino: bigint;
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly meta: ContentMeta;
}

/**
 * Sidecars read recently, by path; the least recently used go first. One per runtime (runtime.ts). A hit
 * still costs one stat(2) of the sidecar, so what is returned is always what the file on disk holds:
 * sidecars are only ever replaced by rename (a new inode) or removed, also by other replicas on a shared
 * volume. One stat instead of readFile's open, fstat, read, read, close: each is a thread-pool round
 * trip, and on small GETs they dominated (see docs/performance.md).
 */
export type SidecarCache = LRUCache<string, CachedSidecar>;

const SIDECAR_CACHE_MAX_ENTRIES = 10_000;

export function createSidecarCache(): SidecarCache {
  return new LRUCache<string, CachedSidecar>({ max: SIDECAR_CACHE_MAX_ENTRIES });
}

function sameFile(cached: CachedSidecar, stat: BigIntStats): boolean {
  return cached.ino === stat.ino && cached.size === stat.size && cached.mtimeNs === stat.mtimeNs && cached.ctimeNs === stat.ctimeNs;
}

/** Reads, replaces and removes sidecars, through a cache of the ones read recently. */
export class Sidecars {
  constructor(
    /** Where a new sidecar is written before it is renamed into place. */
    private readonly scratch: Scratch,
    private readonly cache: SidecarCache,
  ) {}

  async read(metaPath: string): Promise<ContentMeta | undefined> {
    let stat: BigIntStats;
    try {
      stat = await fs.stat(metaPath, { bigint: true });
    } catch {
      this.cache.delete(metaPath);
      return undefined;
    }
    const cached = this.cache.get(metaPath);
    if (cached !== undefined && sameFile(cached, stat)) return cached.meta;
    this.cache.delete(metaPath);
    try {
      const parsed = JSON.parse(await fs.readFile(metaPath, "utf8")) as Partial<ContentMeta>;
      if (typeof parsed.sha256 !== "string" || typeof parsed.ino !== "string" || typeof parsed.mtimeNs !== "string") {
        return undefined;
      }
      const meta = parsed as ContentMeta;
      const entry: CachedSidecar = { ino: stat.ino, size: stat.size, mtimeNs: stat.mtimeNs, ctimeNs: stat.ctimeNs, meta };
      // Cached only when the file read is still the one stat()ed (not replaced in between).
      if (sameFile(entry, await fs.stat(metaPath, { bigint: true }))) this.cache.set(metaPath, entry);
      return meta;
    } catch {
      // Missing or torn (a crash before the data reached the disk): the digest is recomputed.
      return undefined;
    }
  }

  /** Replaces the sidecar atomically (temporary file + rename); no fsync, a lost sidecar is recomputed. */
  async write(metaPath: string, meta: ContentMeta): Promise<void> {
    this.cache.delete(metaPath);
    // Named like every temporary file, so a crash's leftover is swept at the next start.
    const tmp = this.scratch.path("meta");
    try {
      // A write that fails (a full volume) has created the file already: it is removed below too.
      await fs.writeFile(tmp, JSON.stringify(meta), { mode: 0o640 });
      await renameMakingParent(tmp, metaPath);
    } catch (error) {
      await fs.rm(tmp, { force: true });
      throw error;
    }
  }

  /** Forgets what was read of `metaPath`, before another thread renames a new sidecar there (upload-worker.ts). */
  forget(metaPath: string): void {
    this.cache.delete(metaPath);
  }

  /** Renames a sidecar written elsewhere (by the upload worker, at `written`) into place at `metaPath`. */
  async place(metaPath: string, written: string): Promise<void> {
    this.cache.delete(metaPath);
    await renameMakingParent(written, metaPath);
  }

  async remove(metaPath: string): Promise<void> {
    this.cache.delete(metaPath);
    await fs.rm(metaPath, { force: true });
  }
}

/**
 * rename(2), making the target's directory when it is missing (ENOENT) and renaming again. Sidecar
 * directories exist after a namespace's first writes, so making sure of them first (mkdir -p: a mkdir
 * and a stat) would be two thread-pool round trips spent on nearly every write for nothing.
 */
async function renameMakingParent(from: string, to: string): Promise<void> {
  try {
    await fs.rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    await fs.mkdir(path.dirname(to), { recursive: true });
    await fs.rename(from, to);
  }
}

/** SHA-256 of an open file, read in large chunks with bounded memory. */
export async function digestOpenFile(handle: fs.FileHandle): Promise<string> {
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(1 << 20);
  let position = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return hash.digest("hex");
}
