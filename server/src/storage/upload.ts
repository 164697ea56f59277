// Streams a request body into a temporary file on the volume: size and free space enforced while
// streaming; SHA-256, batched writes and the final fsync done by an upload worker (upload-writers.ts),
// off the event loop. Memory stays bounded whatever the body's size.
import fs from "node:fs/promises";
import { insufficientStorage, payloadTooLarge } from "../errors.js";
import type { Scratch } from "./temp-names.js";
import type { AppendRange, PlaceAfterFinish, PlaceOutcome, SidecarRequest, WrittenFile } from "./upload-protocol.js";
import type { UploadWriterPool } from "./upload-writers.js";
import type { YoungGc } from "./young-gc.js";

/**
 * A body made of files already on the volume, one after another (a multipart upload's parts): the
 * upload worker reads them itself. Each file must still be the size (and inode, when given) recorded,
 * or the upload fails with code SOURCE_CHANGED (upload-protocol.ts). With `offset`, `size` bytes from
 * there of a larger file (a part staged in place), whose inode must match and which must hold them.
 */
export interface VolumeFilesBody {
  readonly kind: "volume files";
  readonly files: ReadonlyArray<{ readonly path: string; readonly size: number; readonly ino: number | undefined; readonly offset?: number | undefined }>;
}

/** A request's streamed body, or files on the volume. */
export type UploadSource = AsyncIterable<Uint8Array> | VolumeFilesBody;

/**
 * The most of a file one append asks the worker for: the worker takes the other uploads' slots in
 * between, so a 5 GiB part does not stall them for the seconds it takes to copy.
 */
const APPEND_RANGE_BYTES = 16 << 20;

/** How often (in bytes written) the free-space reserve is re-checked during a long upload. */
export const FREE_SPACE_CHECK_INTERVAL = 64 << 20;

/** What staging an upload uses of the runtime (runtime.ts): where it writes, and who writes. */
export interface UploadContext {
  readonly scratch: Scratch;
  readonly uploadWriters: UploadWriterPool;
  readonly youngGc: YoungGc;
}

export interface UploadLimits {
  readonly maxBytes: number;
  /** Resolves the bytes that may still be written before the volume's reserve is reached. */
  readonly writableBytes: () => Promise<number>;
  readonly fsync: boolean;
  /** Also compute the body's MD5 (S3 ETags and Content-MD5). */
  readonly md5?: boolean;
  /** Have the upload worker write the body's sidecar there too (removed here if the upload fails). */
  readonly sidecar?: SidecarRequest;
  /**
   * Write the body into this existing file from `offset` rather than into a new temporary file (a
   * multipart upload's part written where it belongs in the object). A failure leaves the file, with
   * whatever of the body reached it; `maxBytes` keeps the body inside its range.
   */
  readonly into?: { readonly path: string; readonly offset: number };
}

export interface StagedUpload {
  readonly tempFile: string;
  readonly size: number;
  readonly sha256: string;
  /** Present when the limits asked for it. */
  readonly md5: string | undefined;
  /** The temporary file's inode, size and modification time (the rename keeps them): what its sidecar names. */
  readonly file: WrittenFile;
  /** The sidecar the limits asked for, when the worker could write it (the caller places or removes it). */
  readonly sidecar: string | undefined;
  /**
   * What the worker did with the commit finish() was given, when it tried it: placed, the names above
   * are gone; failed at the file's rename, the sidecar is already in place.
   */
  readonly placement: PlaceOutcome | undefined;
}

export function isNoSpace(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

export const volumeFull = () => insufficientStorage("not enough free space on the artifact volume");

/**
 * Writes `source` to a new temporary file. On any failure the temporary file is removed and the error
 * rethrown (HttpError for limits, the client's abort error otherwise); nothing partial survives.
 */
export async function stageUpload(source: UploadSource, context: UploadContext, limits: UploadLimits): Promise<StagedUpload> {
  return (await receiveUpload(source, context, limits)).finish();
}

/** A body read to its end and handed to the upload worker, all but its finish. */
export interface ReceivedUpload {
  readonly tempFile: string;
  readonly size: number;
  /**
   * Whether finish() may commit it in the same hand-off: the body goes to the worker in one request (no
   * more than one slot of it), and no other upload is in flight. With others, the commits are best left
   * to the thread pool, which runs them side by side where the worker would run them one after another.
   */
  readonly mayCommitWithFinish: boolean;
  /**
   * Writes what is left and closes (stageUpload's second half): with `place`, a body wholly in one slot
   * may be committed in the same hand-off (UploadWriter.finish). On failure, as stageUpload.
   */
  finish(place?: PlaceAfterFinish): Promise<StagedUpload>;
  /** Drops the body instead of finishing it: nothing is left of it. */
  discard(): Promise<void>;
}

/**
 * stageUpload's first half: reads `source` to its end, handing its bytes to the upload worker, and
 * leaves the finish to the caller, who may want the commit made with it. On failure, as stageUpload.
 */
export async function receiveUpload(source: UploadSource, context: UploadContext, limits: UploadLimits): Promise<ReceivedUpload> {
  const { into } = limits;
  const tempFile = into?.path ?? context.scratch.path("upload");
  const writer = context.uploadWriters.begin(tempFile, 0o640, { md5: limits.md5 === true, flushBehind: limits.fsync, at: into?.offset });
  const removed = async (): Promise<void> => {
    await writer.abort();
    if (into === undefined) await fs.rm(tempFile, { force: true });
    // The worker may have written it before a later step (the fsync) failed.
    if (limits.sidecar !== undefined) await fs.rm(limits.sidecar.path, { force: true });
  };
  const failed = async (error: unknown): Promise<never> => {
    await removed();
    if (isNoSpace(error)) throw volumeFull();
    throw error;
  };
  let size = 0;
  let nextSpaceCheck = FREE_SPACE_CHECK_INTERVAL;
  const count = (bytes: number): void => {
    size += bytes;
    if (size > limits.maxBytes) throw payloadTooLarge(`the artifact is larger than the limit of ${limits.maxBytes} bytes`);
  };
  const checkSpace = async (): Promise<void> => {
    nextSpaceCheck += FREE_SPACE_CHECK_INTERVAL;
    if ((await limits.writableBytes()) <= 0) throw volumeFull();
  };
  try {
    if (isVolumeFiles(source)) {
      for (const file of source.files) {
        for (const range of rangesOf(file)) {
          count(range.length);
          await writer.appendRange(range);
          if (size >= nextSpaceCheck) await checkSpace();
        }
      }
    } else {
      for await (const chunk of source) {
        count(chunk.byteLength);
        // A promise only when the worker is behind: no extra turn of the event loop per chunk otherwise.
        const room = writer.write(chunk);
        context.youngGc.noteReceivedBytes(chunk.byteLength);
        if (room !== undefined) await room;
        if (size >= nextSpaceCheck) await checkSpace();
      }
    }
  } catch (error) {
    return failed(error);
  }
  return {
    tempFile,
    size,
    mayCommitWithFinish: writer.wholeInOneSlot && context.uploadWriters.uploads === 1,
    async finish(place) {
      try {
        const sha256 = await writer.finish(limits.fsync, limits.sidecar, place);
        const sidecar = writer.sidecarWritten ? limits.sidecar?.path : undefined;
        return { tempFile, size, sha256, md5: writer.md5, file: writer.file, sidecar, placement: writer.placement };
      } catch (error) {
        return failed(error);
      }
    },
    discard: removed,
  };
}

/** A volume file's bytes as the appends that copy them, each no longer than APPEND_RANGE_BYTES. */
function* rangesOf(file: VolumeFilesBody["files"][number]): Generator<AppendRange> {
  const start = file.offset ?? 0;
  for (let done = 0; done < file.size; done += APPEND_RANGE_BYTES) {
    const length = Math.min(APPEND_RANGE_BYTES, file.size - done);
    yield { source: file.path, offset: start + done, length, sourceSize: file.offset === undefined ? file.size : undefined, sourceIno: file.ino };
  }
}

/**
 * The SHA-256 of a file's first `size` bytes, read by an upload worker (so that no byte crosses the
 * event loop); rejects with SOURCE_CHANGED when it is not the inode given or holds fewer bytes.
 */
export async function hashVolumeFile(context: UploadContext, file: { readonly path: string; readonly size: number; readonly ino: number }): Promise<string> {
  const writer = context.uploadWriters.begin(file.path, 0o640, { hashOnly: true });
  try {
    for (const range of rangesOf({ path: file.path, size: file.size, ino: file.ino, offset: 0 })) await writer.appendRange(range);
    return await writer.finish(false);
  } catch (error) {
    await writer.abort();
    throw error;
  }
}

function isVolumeFiles(source: UploadSource): source is VolumeFilesBody {
  return "kind" in source && source.kind === "volume files";
}

/** Creates `file` (exclusively, 0640) holding `content`, flushed to disk when `fsync`; removed again if that fails. */
export async function writeNewFile(file: string, content: string, fsync: boolean): Promise<void> {
  const handle = await fs.open(file, "wx", 0o640);
  try {
    await handle.writeFile(content);
    if (fsync) await handle.sync();
  } catch (error) {
    await handle.close();
    await fs.rm(file, { force: true });
    throw error;
  }
  await handle.close();
}

/** fsync a directory so a rename or unlink in it survives power loss. */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await fs.open(directory, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
