// Directory artifacts as tar.gz. Extraction writes into a staging directory on the volume and refuses
// anything but regular files and directories with safe names, within size and entry-count bounds
// (decompression bombs); the caller swaps the result in. Packing streams a directory out as tar.gz
// with backpressure end to end, one file open at a time — memory does not grow with the directory.
import { createHash } from "node:crypto";
import type { BigIntStats } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";
import tar from "tar-stream";
import { badRequest, HttpError, payloadTooLarge } from "../errors.js";
import type { HeldDirectory, VolumePath } from "./contained.js";
import { parseKey } from "./names.js";
import { isNoSpace, volumeFull } from "./upload.js";

export const MAX_ARCHIVE_ENTRIES = 100_000;
const FREE_SPACE_CHECK_INTERVAL = 64 << 20;
const EMPTY_SHA256 = createHash("sha256").digest("hex");
/** Files fsynced at once once the archive is accepted: the disk's queue is kept busy, not flooded. */
const SYNC_CONCURRENCY = 16;

export interface ExtractLimits {
  /** Bound on the compressed body. */
  readonly maxArchiveBytes: number;
  /** Bound on the sum of the extracted files' sizes. */
  readonly maxExpandedBytes: number;
  readonly writableBytes: () => Promise<number>;
  readonly fsync: boolean;
  /** The directory artifact's key: each entry becomes `<keyPrefix>/<entry>`, bound like any other key. */
  readonly keyPrefix?: string | undefined;
}

export interface ExtractedFile {
  /** Path below the extracted directory, '/'-separated. */
  readonly relative: string;
  readonly sha256: string;
}

export interface ExtractResult {
  readonly files: ExtractedFile[];
  readonly expandedBytes: number;
  /** Digest and size of the archive as uploaded. */
  readonly archiveSha256: string;
  readonly archiveBytes: number;
}

/** Entry names as tar tools write them ("./a", "dir/") into the key form ("a", "dir"), or "" for the root. */
function entryPath(name: string): string {
  let relative = name;
  while (relative.startsWith("./")) relative = relative.slice(2);
  if (relative === ".") return "";
  if (relative.endsWith("/")) relative = relative.slice(0, -1);
  return relative;
}

/**
 * Extracts `body` (tar.gz) into `stagingDir`, which must exist and be empty. Throws HttpError 400 for a
 * malformed or hostile archive, 413 past the bounds, 507 when the volume fills; the caller removes
 * `stagingDir` on any failure.
 */
export async function extractArchive(body: AsyncIterable<Uint8Array>, stagingDir: string, limits: ExtractLimits): Promise<ExtractResult> {
  const archiveHash = createHash("sha256");
  let archiveBytes = 0;
  async function* measured(): AsyncGenerator<Uint8Array> {
    for await (const chunk of body) {
      archiveBytes += chunk.byteLength;
      if (archiveBytes > limits.maxArchiveBytes) throw payloadTooLarge(`the archive is larger than the limit of ${limits.maxArchiveBytes} bytes`);
      archiveHash.update(chunk);
      yield chunk;
    }
  }
  const extract = tar.extract();
  const feeding = pipeline(Readable.from(measured()), zlib.createGunzip(), extract);
  // Whatever fails first, the other side's rejection must not go unhandled.
  feeding.catch(() => {});

  const files: ExtractedFile[] = [];
  const seen = new Set<string>();
  // Directories known to exist below the staging directory: one mkdir per directory, not per entry.
  const made = new Set<string>();
  const ensureParent = async (target: string, relative: string) => {
    const parent = path.dirname(target);
    if (made.has(parent)) return;
    await fs.mkdir(parent, { recursive: true }).catch((error: unknown) => {
      throw conflictOrSpace(error, relative);
    });
    made.add(parent);
  };
  // Empty files are created once the archive is accepted: each costs ~6 compressed bytes, so creating
  // them as they come let a small archive make 100,000 files before its entry count was refused.
  const empty: { relative: string; target: string }[] = [];
  let expandedBytes = 0;
  let entries = 0;
  let nextSpaceCheck = FREE_SPACE_CHECK_INTERVAL;
  try {
    for await (const entry of extract) {
      const { header } = entry;
      entries += 1;
      if (entries > MAX_ARCHIVE_ENTRIES) throw payloadTooLarge(`the archive has more than ${MAX_ARCHIVE_ENTRIES} entries`);
      const relative = entryPath(header.name);
      if (header.type !== "file" && header.type !== "directory" && header.type !== "contiguous-file") {
        throw badRequest(`archive entries must be regular files or directories; "${relative}" is a ${header.type}`);
      }
      if (relative === "") {
        if (header.type !== "directory") throw badRequest("an archive entry has an empty name");
        entry.resume();
        continue;
      }
      if (header.name.startsWith("/")) throw badRequest("archive entries must not have absolute paths");
      const { segments } = parseKey(relative, "archive entry name");
      // The key an entry becomes obeys the length and depth limits every key does (a 1,000-byte key and a
      // 1,000-byte entry name would make a key no other door accepts).
      if (limits.keyPrefix !== undefined) parseKey(`${limits.keyPrefix}/${relative}`, `the key of archive entry "${relative.slice(0, 64)}"`);
      if (seen.has(relative)) throw badRequest(`the archive has two entries named "${relative}"`);
      seen.add(relative);
      const target = path.join(stagingDir, ...segments);
      if (header.type !== "directory" && (header.size ?? 0) === 0) {
        empty.push({ relative, target });
        entry.resume();
        continue;
      }
      await ensureParent(target, relative);
      if (header.type === "directory") {
        await fs.mkdir(target).catch((error: unknown) => {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw conflictOrSpace(error, relative);
        });
        entry.resume();
        continue;
      }
      const handle = await fs.open(target, "wx", 0o640).catch((error: unknown) => {
        throw conflictOrSpace(error, relative);
      });
      const hash = createHash("sha256");
      try {
        for await (const chunk of entry as AsyncIterable<Buffer>) {
          expandedBytes += chunk.byteLength;
          if (expandedBytes > limits.maxExpandedBytes) {
            throw payloadTooLarge(`the archive expands to more than the limit of ${limits.maxExpandedBytes} bytes`);
          }
          if (expandedBytes >= nextSpaceCheck) {
            nextSpaceCheck += FREE_SPACE_CHECK_INTERVAL;
            if ((await limits.writableBytes()) <= 0) throw volumeFull();
          }
          hash.update(chunk);
          await handle.write(chunk);
        }
      } finally {
        await handle.close();
      }
      files.push({ relative, sha256: hash.digest("hex") });
    }
    await feeding;
    for (const { relative, target } of empty) {
      await ensureParent(target, relative);
      const handle = await fs.open(target, "wx", 0o640).catch((error: unknown) => {
        throw conflictOrSpace(error, relative);
      });
      await handle.close();
      files.push({ relative, sha256: EMPTY_SHA256 });
    }
    // Only now, with the whole archive read and within every bound: an fsync per entry while reading
    // made a tiny archive of empty entries (about 6 compressed bytes each) cost minutes before its entry
    // count was refused. Creating an entry is all a rejected byte can cost.
    if (limits.fsync) await syncFiles(stagingDir, files);
  } catch (caught) {
    extract.destroy();
    // When the feeding side fails (bad gzip, the compressed-size limit), this loop only sees its stream
    // destroyed: the feeding side's error is the real one.
    const feedError = await feeding.then(
      () => undefined,
      (error: unknown) => error,
    );
    const error = caught instanceof HttpError || feedError === undefined ? caught : feedError;
    if (error instanceof HttpError) throw error;
    if (isNoSpace(error)) throw volumeFull();
    if (isArchiveFormatError(error)) throw badRequest("the body is not a valid tar.gz archive");
    throw error;
  }
  return { files, expandedBytes, archiveSha256: archiveHash.digest("hex"), archiveBytes };
}

async function syncFiles(stagingDir: string, files: readonly ExtractedFile[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++];
      if (file === undefined) return;
      const handle = await fs.open(path.join(stagingDir, ...file.relative.split("/")), "r");
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(SYNC_CONCURRENCY, files.length) }, worker));
}

function conflictOrSpace(error: unknown, relative: string): Error {
  if (isNoSpace(error)) return volumeFull();
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EEXIST" || code === "ENOTDIR") return badRequest(`the archive's entries conflict at "${relative}"`);
  return error as Error;
}

function isArchiveFormatError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && code.startsWith("Z_")) return true; // zlib: not gzip, truncated, corrupt
  const message = (error as Error).message ?? "";
  return /header|tar|unexpected end|invalid/i.test(message);
}

/** Something below a directory being packed: a directory (held) or a regular file (open). */
type Packed =
  | { readonly relative: string; readonly kind: "directory" }
  | { readonly relative: string; readonly kind: "file"; readonly handle: fs.FileHandle; readonly stat: BigIntStats };

/**
 * Files and directories below `directory`, sorted, as '/'-separated relative paths. Every entry is
 * opened in the directory held above it (contained.ts), so a directory swapped for a symlink meanwhile
 * is never walked into and a file swapped for one is never read: both are skipped, as symlinks always
 * are. An entry that is gone makes the walk fail: the version being sent was removed.
 */
async function* walkTree(directory: HeldDirectory, relative = ""): AsyncGenerator<Packed> {
  const entries = await directory.entries();
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const childRelative = relative === "" ? entry.name : `${relative}/${entry.name}`;
    if (entry.isDirectory()) {
      const child = await directory.child(entry.name);
      if (child === undefined) {
        if ((await directory.lstat(entry.name)) === undefined) throw new Error("a directory was removed while it was being sent");
        continue;
      }
      try {
        yield { relative: childRelative, kind: "directory" };
        yield* walkTree(child, childRelative);
      } finally {
        await child.close();
      }
    } else if (entry.isFile()) {
      const handle = await directory.openFile(entry.name).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === "ELOOP") return undefined;
        throw error;
      });
      if (handle === undefined) continue;
      const stat = await handle.stat({ bigint: true });
      if (!stat.isFile()) {
        await handle.close();
        continue;
      }
      yield { relative: childRelative, kind: "file", handle, stat };
    }
    // Symlinks and special files are never packed.
  }
}

/**
 * Streams the directory at `source.directory` (or a single file, as a one-entry archive named
 * `singleName`) as tar.gz. Each file is piped into its tar entry, which waits while the consumer is slow:
 * backpressure reaches the disk.
 */
export function packArchive(source: { directory: VolumePath } | { file: VolumePath; singleName: string }): Readable {
  const pack = tar.pack();
  // Throughput over ratio: artifacts are often compressed already (models, parquet, images).
  const gzip = zlib.createGzip({ level: 1 });
  const output = new PassThrough({ highWaterMark: 1 << 20 });
  const addFile = async (handle: fs.FileHandle, stat: BigIntStats, name: string) => {
    const entry = pack.entry({ name, size: Number(stat.size), mode: 0o644, mtime: stat.mtime, type: "file" });
    // The stream closes the handle when it ends or fails.
    await pipeline(handle.createReadStream({ highWaterMark: 1 << 20 }), entry);
  };
  const produce = async () => {
    if ("file" in source) {
      const opened = await source.file.volume.openFile(source.file.segments);
      if (opened === undefined || "directory" in opened) throw new Error("the file was removed or replaced before it was sent");
      await addFile(opened.handle, opened.stat, source.singleName);
    } else {
      // A replacement renames the old tree aside and the new one in. The tree is walked through the
      // directory held open here, wherever it is moved, so every file comes from the version the download
      // started with; if that version is removed meanwhile, an entry is missing and the stream fails: a
      // client never gets old and new files in one archive.
      const held = await source.directory.volume.openDirectory(source.directory.segments);
      if (held === undefined) throw new Error("the directory was removed or replaced before it was sent");
      try {
        for await (const item of walkTree(held)) {
          if (item.kind === "directory") pack.entry({ name: `${item.relative}/`, type: "directory", mode: 0o755 });
          else await addFile(item.handle, item.stat, item.relative);
        }
      } finally {
        await held.close();
      }
    }
    pack.finalize();
  };
  pipeline(pack, gzip, output).catch((error: unknown) => output.destroy(error as Error));
  produce().catch((error: unknown) => pack.destroy(error as Error));
  return output;
}
