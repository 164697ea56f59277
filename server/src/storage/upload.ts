// Streams a request body into a temporary file on the volume: SHA-256 computed on the way, size and free
// space enforced while streaming, large batched writes, fsync at the end. Memory stays bounded by the
// batch size whatever the body's size.
import { createHash, randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { insufficientStorage, payloadTooLarge } from "../errors.js";

/** Bytes collected before one write(2); large enough to amortize syscalls, small enough to stay bounded. */
const WRITE_BATCH_BYTES = 1 << 20;
/** How often (in bytes written) the free-space reserve is re-checked during a long upload. */
const FREE_SPACE_CHECK_INTERVAL = 64 << 20;

/** Temporary files carry the host name, so a restarted server can tell its own leftovers from a peer's. */
export const TEMP_PREFIX = `${os.hostname().replace(/[^A-Za-z0-9_-]/g, "_")}.`;

export function tempPath(tmpDir: string, kind: string): string {
  return path.join(tmpDir, `${TEMP_PREFIX}${process.pid}.${randomUUID()}.${kind}`);
}

export interface UploadLimits {
  readonly maxBytes: number;
  /** Resolves the bytes that may still be written before the volume's reserve is reached. */
  readonly writableBytes: () => Promise<number>;
  readonly fsync: boolean;
}

export interface StagedUpload {
  readonly tempFile: string;
  readonly size: number;
  readonly sha256: string;
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
export async function stageUpload(
  source: AsyncIterable<Uint8Array>,
  tmpDir: string,
  limits: UploadLimits,
): Promise<StagedUpload> {
  const tempFile = tempPath(tmpDir, "upload");
  const handle = await fs.open(tempFile, "wx", 0o640);
  const hash = createHash("sha256");
  let size = 0;
  let batch: Uint8Array[] = [];
  let batchBytes = 0;
  let nextSpaceCheck = FREE_SPACE_CHECK_INTERVAL;
  const flush = async () => {
    if (batchBytes === 0) return;
    const chunks = batch;
    batch = [];
    batchBytes = 0;
    await handle.writev(chunks);
  };
  try {
    for await (const chunk of source) {
      size += chunk.byteLength;
      if (size > limits.maxBytes) throw payloadTooLarge(`the artifact is larger than the limit of ${limits.maxBytes} bytes`);
      hash.update(chunk);
      batch.push(chunk);
      batchBytes += chunk.byteLength;
      if (batchBytes >= WRITE_BATCH_BYTES) await flush();
      if (size >= nextSpaceCheck) {
        nextSpaceCheck += FREE_SPACE_CHECK_INTERVAL;
        if ((await limits.writableBytes()) <= 0) throw volumeFull();
      }
    }
    await flush();
    if (limits.fsync) await handle.sync();
    await handle.close();
    return { tempFile, size, sha256: hash.digest("hex") };
  } catch (error) {
    await handle.close().catch(() => {});
    await fs.rm(tempFile, { force: true });
    if (isNoSpace(error)) throw volumeFull();
    throw error;
  }
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
