// Reads: a file artifact opened contained (contained.ts) with the digests its headers need, and its
// bytes as a body (body.ts) chosen by size — a small artifact read whole once and then served from
// memory (small-files.ts), a short range read in one call, anything larger produced into the runtime's
// reusable buffers straight from the file, reading only the range asked for.
import type { FileHandle } from "node:fs/promises";
import { notFound } from "../errors.js";
import type { ArtifactBody, ProducedBody } from "./body.js";
import type { BufferPool } from "./buffer-pool.js";
import type { VolumePath } from "./contained.js";
import type { ArtifactKey } from "./names.js";
import { SmallFileCache, type SmallArtifact } from "./small-files.js";
import { digestFor } from "./versions.js";
import type { Volume } from "./volume.js";

/** Artifacts up to this size are kept in memory after a first read (small-files.ts). */
const SMALL_FILE_BYTES = 64 << 10;
/** All kept small artifacts together: a bounded share of the process's memory. */
const SMALL_FILES_TOTAL_BYTES = 8 << 20;
/** Ranges up to this size of a larger file are read in one call and sent without a stream. */
const SHORT_RANGE_BYTES = 64 << 10;

/** What a response's headers say of a file artifact. */
export interface ArtifactInfo {
  readonly size: number;
  readonly sha256: string;
  /** S3's ETag (without quotes) when the content came through S3. */
  readonly s3ETag: string | undefined;
  readonly modified: Date;
}

/**
 * A file artifact being read. Whoever gets one either takes a body from it (which then owns the file
 * and lets go of it once sent) or calls release(); release() after a body is taken does nothing.
 */
export interface FileRead extends ArtifactInfo {
  /** Bytes [start, start + length) as the cheapest body to send. */
  body(start: number, length: number): Promise<ArtifactBody>;
  /** Bytes [start, start + length) always produced into buffers, for a caller that transforms them (KFP's base64). */
  produced(start: number, length: number): ProducedBody;
  /** The whole artifact in chunks the consumer may keep (copying it to another key). */
  chunks(): AsyncIterable<Uint8Array>;
  release(): Promise<void>;
}

/** A directory artifact: it has no body of its own (packArchive() makes one). */
export interface DirectoryRead {
  readonly directory: true;
}

export class Reads {
  readonly #smallFiles: SmallFileCache;

  constructor(private readonly volume: Volume) {
    this.#smallFiles = new SmallFileCache(SMALL_FILE_BYTES, SMALL_FILES_TOTAL_BYTES, (dev) => volume.isLocalDevice(dev));
  }

  /**
   * The artifact at `key` for reading. A small artifact read before costs one lstat(2) instead of
   * opening the file; anything else is opened contained (the descriptor must read back the artifact's
   * own path, so nothing on the way was a symlink), its digest from the sidecar or recomputed when the
   * sidecar does not describe these bytes.
   */
  async read(namespace: string, key: ArtifactKey): Promise<FileRead | DirectoryRead> {
    const path = this.volume.layout.artifactPath(namespace, key);
    const cached = await this.#smallFiles.get(path);
    const buffers = this.volume.options.runtime.bodyBuffers;
    if (cached !== undefined) return inMemory(cached, buffers);
    const opened = await this.volume.root.openFile([namespace, ...key.segments]);
    if (opened === undefined) throw notFound("artifact not found");
    if ("directory" in opened) return opened;
    const { handle, stat } = opened;
    try {
      const { sha256, s3ETag } = await digestFor(this.volume, namespace, key.key, handle, stat);
      const info: ArtifactInfo = { size: Number(stat.size), sha256, s3ETag, modified: stat.mtime };
      const remember = (body: Buffer<ArrayBuffer>) => this.#smallFiles.remember(path, stat, { ...info, body });
      return new OpenFile(handle, info, buffers, remember);
    } catch (error) {
      await handle.close().catch(() => {});
      throw error;
    }
  }

  /**
   * A file or directory artifact, for streaming it as an archive: named, not held (a HEAD needs nothing
   * open), and opened contained by packArchive().
   */
  async resolveForArchive(namespace: string, key: ArtifactKey): Promise<{ directory: VolumePath } | { file: VolumePath }> {
    const stat = await this.volume.entryAt(namespace, key);
    if (stat === undefined || (!stat.isFile() && !stat.isDirectory())) throw notFound("artifact not found");
    const location: VolumePath = { volume: this.volume.root, segments: [namespace, ...key.segments] };
    return stat.isDirectory() ? { directory: location } : { file: location };
  }
}

/** A small artifact kept from an earlier read: every body is a slice of its bytes. */
function inMemory(artifact: SmallArtifact, buffers: BufferPool): FileRead {
  const { size, sha256, s3ETag, modified, body } = artifact;
  return {
    size,
    sha256,
    s3ETag: s3ETag ?? undefined,
    modified,
    body: (start, length) => Promise.resolve({ kind: "bytes", bytes: body.subarray(start, start + length) }),
    produced: (start, length) => {
      let position = start;
      const end = start + length;
      const produce = (target: Buffer) => {
        const copied = body.copy(target, 0, position, end);
        position += copied;
        return Promise.resolve(copied);
      };
      return { kind: "produced", produce, done: () => Promise.resolve(), buffers };
    },
    chunks: () => oneChunk(body),
    release: () => Promise.resolve(),
  };
}

/** A file opened for reading; the handle goes to the first body taken, or is closed by release(). */
class OpenFile implements FileRead {
  readonly size: number;
  readonly sha256: string;
  readonly s3ETag: string | undefined;
  readonly modified: Date;
  #handle: FileHandle | undefined;

  constructor(
    handle: FileHandle,
    info: ArtifactInfo,
    private readonly buffers: BufferPool,
    /** Keeps the whole body for the next read, valid for the very file version opened. */
    private readonly remember: (body: Buffer<ArrayBuffer>) => void,
  ) {
    this.#handle = handle;
    ({ size: this.size, sha256: this.sha256, s3ETag: this.s3ETag, modified: this.modified } = info);
  }

  async body(start: number, length: number): Promise<ArtifactBody> {
    if (this.size > SMALL_FILE_BYTES && length > SHORT_RANGE_BYTES) return this.produced(start, length);
    const handle = this.#take();
    try {
      if (this.size <= SMALL_FILE_BYTES) {
        // Read whole, even for a range: one read, and the next request finds it in memory.
        const whole = await readExactly(handle, this.size, 0);
        this.remember(whole);
        return { kind: "bytes", bytes: whole.subarray(start, start + length) };
      }
      // One read and a plain body: a stream's setup costs more than the bytes (a peek, a short range).
      return { kind: "bytes", bytes: await readExactly(handle, length, start) };
    } finally {
      await handle.close();
    }
  }

  produced(start: number, length: number): ProducedBody {
    const handle = this.#take();
    const end = start + length;
    let position = start;
    // Reads only [start, end]: a ?peek=N or a range stops early.
    const produce = async (target: Buffer) => {
      if (position >= end) return 0;
      const { bytesRead } = await handle.read(target, 0, Math.min(target.length, end - position), position);
      // Shorter than its size a moment ago: truncated underneath us.
      if (bytesRead === 0) throw new Error("the artifact became shorter while it was sent");
      position += bytesRead;
      return bytesRead;
    };
    return { kind: "produced", produce, done: () => handle.close(), buffers: this.buffers };
  }

  async *chunks(): AsyncGenerator<Uint8Array> {
    const handle = this.#handle;
    if (handle === undefined) throw new Error("the artifact's file was already handed on");
    let position = 0;
    while (position < this.size) {
      const buffer = Buffer.allocUnsafe(Math.min(1 << 20, this.size - position));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) throw new Error("the artifact became shorter while it was read");
      position += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  }

  async release(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close();
  }

  #take(): FileHandle {
    const handle = this.#handle;
    if (handle === undefined) throw new Error("the artifact's file was already handed on");
    this.#handle = undefined;
    return handle;
  }
}

async function readExactly(handle: FileHandle, length: number, position: number): Promise<Buffer<ArrayBuffer>> {
  const body = Buffer.allocUnsafe(length);
  const { bytesRead } = await handle.read(body, 0, length, position);
  if (bytesRead !== length) throw new Error("the artifact changed size while it was read");
  return body;
}

async function* oneChunk(chunk: Uint8Array): AsyncGenerator<Uint8Array> {
  yield await Promise.resolve(chunk);
}
