// An upload worker thread: hashes (SHA-256) and writes upload bodies to their temporary files, so the
// event loop only receives bytes. SHA-256 costs ≈ 0.6 s per GiB even with the CPU's SHA instructions;
// on the event loop that was a third of every upload's time, and it stalled every other request. An S3
// upload's MD5 runs beside it on a second worker, given the same slots without a file, so the two
// digests of one body are computed at once rather than one after the other.
// It also assembles files already on the volume (a multipart upload's parts) into an upload, reading
// them itself, so that their bytes never cross the event loop.
// Idle, it also commits a plain write without FSYNC (place): the lookup of the key's entry and the two
// renames, one hand-off for three round trips through the event loop's thread pool; a whole small body's
// commit comes with its finish, so that its write and its commit are one hand-off.
// Synchronous writes are right here: this thread does nothing else, and a slow volume stalls only the
// uploads, never health checks or downloads. The final fsync is not: it waits for the disk, during which
// this thread takes the other uploads' slots, and the fsyncs of uploads finishing together overlap.
// Nor are the flushes behind a long upload's writes (with FSYNC), which let the disk write its file
// while the rest is still arriving.
import { createHash, type Hash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import { metaFor } from "./sidecar-format.js";
import {
  SOURCE_CHANGED,
  type AppendRange,
  type Digest,
  type FinishRequest,
  type PlaceOutcome,
  type PlaceRequest,
  type SidecarRequest,
  type WorkerSetup,
  type WriterReply,
  type WriterRequest,
  type WrittenFile,
} from "./upload-protocol.js";

interface OpenUpload {
  /** The temporary file, on the worker that writes it; undefined on a worker that only hashes. */
  readonly fd: number | undefined;
  /** Where the next bytes go in the file, when it was opened to be written at an offset; else its end. */
  position: number | undefined;
  readonly hashes: ReadonlyArray<readonly [Digest, Hash]>;
  /** After the first failure the upload is only waiting for its abort. */
  failed: boolean;
  /** Its fsync is under way: the file is closed (and an abort answered) once that is done. */
  syncing: boolean;
  abortWhenSynced: boolean;
  /** With FSYNC: written bytes are flushed behind the writes every this many (undefined: at the finish only). */
  readonly flushBehindBytes: number | undefined;
  unflushedBytes: number;
  /** The finish or abort that arrived during its flush behind the writes, run when that ends. */
  afterFlush: (() => void) | undefined;
}

const port = parentPort;
if (port === null) throw new Error("upload-worker.mjs runs as a worker thread of the server");

const { slots, slotBytes } = workerData as WorkerSetup;
const uploads = new Map<number, OpenUpload | "failed">();

function reply(message: WriterReply): void {
  port?.postMessage(message);
}

function fail(id: number, error: unknown, upload: OpenUpload | undefined): void {
  if (upload !== undefined) upload.failed = true;
  else uploads.set(id, "failed");
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  reply({ op: "failed", id, code, message: error instanceof Error ? error.message : String(error) });
}

/**
 * The file's identity, taken here because this thread has the descriptor: the event loop would need a
 * stat of the path, one more round trip through the thread pool, to learn what its sidecar must name.
 */
function identityOf(fd: number): WrittenFile {
  const { ino, size, mtimeNs } = fs.fstatSync(fd, { bigint: true });
  return { ino, size, mtimeNs };
}

/**
 * Creates the upload's sidecar, here where its digests and identity are, instead of three more round
 * trips (open, write, close) through the event loop's thread pool; false when it cannot: its MD5 is on
 * another worker (a large S3 upload), or the write failed (then the event loop writes it, and answers
 * that write's own failure).
 */
function writeSidecar(sidecar: SidecarRequest, digests: Partial<Record<Digest, string>>, file: WrittenFile): boolean {
  const s3ETag = sidecar.md5AsETag ? digests.md5 : sidecar.s3ETag;
  if (digests.sha256 === undefined || (sidecar.md5AsETag && s3ETag === undefined)) return false;
  let fd: number;
  try {
    fd = fs.openSync(sidecar.path, "wx", 0o640);
  } catch {
    return false;
  }
  try {
    writeAll(fd, Buffer.from(JSON.stringify(metaFor(digests.sha256, file, s3ETag))));
    fs.closeSync(fd);
    return true;
  } catch {
    // Created by this call, so removed by it: no torn sidecar is left for the commit to place.
    fs.close(fd, () => fs.rm(sidecar.path, { force: true }, () => {}));
    return false;
  }
}

/**
 * write(2) may write less than asked (a full disk, a signal): write the rest until done. At `position`
 * (pwrite) when given, else at the file's offset.
 */
function writeAll(fd: number, data: Uint8Array, position?: number): void {
  let offset = 0;
  while (offset < data.byteLength) offset += fs.writeSync(fd, data, offset, data.byteLength - offset, position === undefined ? null : position + offset);
}

/** Writes `data` to the upload's file: at its position when it was opened at an offset, else at the end. */
function writeToUpload(upload: OpenUpload, fd: number, data: Uint8Array): void {
  writeAll(fd, data, upload.position);
  if (upload.position !== undefined) upload.position += data.byteLength;
}

/**
 * Commits a staged file (PlaceRequest) with synchronous calls, on this thread that does nothing else:
 * one hand-off from the event loop for what were three round trips through its thread pool (the lookup
 * of the key's entry and two renames), each a wake-up of two threads.
 */
function place(request: PlaceRequest): PlaceOutcome {
  const failed = (failedAt: "lookup" | "sidecar" | "file", error: unknown): PlaceOutcome => ({
    placed: false,
    failedAt,
    code: (error as NodeJS.ErrnoException | undefined)?.code,
    message: error instanceof Error ? error.message : String(error),
  });
  let previous: fs.Stats | undefined;
  try {
    previous = fs.lstatSync(request.entry, { throwIfNoEntry: false });
  } catch (error) {
    return failed("lookup", error);
  }
  if (previous?.isDirectory()) return { placed: false, refused: "directory" };
  if (previous !== undefined && !previous.isFile()) return { placed: false, refused: "not a file" };
  try {
    renameMakingParent(request.sidecar.from, request.sidecar.to);
  } catch (error) {
    return failed("sidecar", error);
  }
  try {
    fs.renameSync(request.file, request.entry);
  } catch (error) {
    return failed("file", error);
  }
  return { placed: true, previousSize: previous?.size };
}

/** What appendRange() reads into; allocated at the first append (only assembled multipart uploads append). */
let appendBuffer: Buffer | undefined;
const APPEND_BUFFER_BYTES = 1 << 20;

function sourceChanged(source: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${path.basename(source)} is not the file recorded: it was replaced or cut short`);
  error.code = SOURCE_CHANGED;
  return error;
}

/**
 * Hashes and appends a range of a file on the volume to the upload's file, through one reused buffer:
 * synchronous reads here cost the event loop nothing, where streaming the file through it allocated a
 * buffer per chunk and copied each into a slot (38 full garbage collections in one 512 MiB completion).
 */
function appendRange(upload: OpenUpload, range: AppendRange): number {
  const source = fs.openSync(range.source, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const { size, ino } = fs.fstatSync(source);
    if ((range.sourceSize !== undefined && size !== range.sourceSize) || (range.sourceIno !== undefined && ino !== range.sourceIno)) throw sourceChanged(range.source);
    appendBuffer ??= Buffer.allocUnsafeSlow(APPEND_BUFFER_BYTES);
    let done = 0;
    while (done < range.length) {
      const read = fs.readSync(source, appendBuffer, 0, Math.min(APPEND_BUFFER_BYTES, range.length - done), range.offset + done);
      if (read === 0) throw sourceChanged(range.source);
      const data = appendBuffer.subarray(0, read);
      for (const [, hash] of upload.hashes) hash.update(data);
      if (upload.fd !== undefined) writeToUpload(upload, upload.fd, data);
      done += read;
    }
    return done;
  } finally {
    fs.closeSync(source);
  }
}

/** Whether the body has every digest the client gave (a body that has not is refused, never placed). */
function matches(digests: Partial<Record<Digest, string>>, expected: Partial<Record<Digest, string>>): boolean {
  return (Object.keys(expected) as Digest[]).every((digest) => expected[digest] === undefined || expected[digest] === digests[digest]);
}

/** rename(2), making the target's directory when it is missing and renaming again (as meta.ts does). */
function renameMakingParent(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.renameSync(from, to);
  }
}

function handle(request: WriterRequest): void {
  if (request.op === "place") {
    reply({ op: "placed", id: request.id, outcome: place(request) });
    return;
  }
  if (request.op === "open") {
    try {
      const { file } = request;
      // At an offset: into a file that exists (a multipart upload's staged object), never a new one.
      const fd = file === undefined ? undefined : fs.openSync(file.path, file.at === undefined ? "wx" : fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, file.mode);
      const hashes = request.digests.map((digest) => [digest, createHash(digest)] as const);
      uploads.set(request.id, {
        fd,
        position: file?.at,
        hashes,
        failed: false,
        syncing: false,
        abortWhenSynced: false,
        flushBehindBytes: request.flushBehindBytes,
        unflushedBytes: 0,
        afterFlush: undefined,
      });
    } catch (error) {
      fail(request.id, error, undefined);
    }
    return;
  }
  const upload = uploads.get(request.id);
  if (request.op === "append") {
    // Answered whatever happens, as a write is: after a failure, "failed" went first.
    let bytes = 0;
    if (upload !== undefined && upload !== "failed" && !upload.failed) {
      try {
        bytes = appendRange(upload, request);
        flushBehind(request.id, upload, bytes);
      } catch (error) {
        fail(request.id, error, upload);
      }
    }
    reply({ op: "appended", id: request.id, bytes });
    return;
  }
  if (request.op === "abort") {
    // Closing a descriptor an fsync still uses could let the next open reuse its number: later.
    if (flushing !== undefined && upload === flushing) {
      whenFlushed(upload, () => handle(request));
      return;
    }
    if (upload !== undefined && upload !== "failed" && upload.syncing) {
      upload.abortWhenSynced = true;
      return;
    }
    uploads.delete(request.id);
    // Always answered, even for an upload already finished or never opened: the event loop waits for it.
    if (upload !== undefined && upload !== "failed" && upload.fd !== undefined) fs.close(upload.fd, () => reply({ op: "aborted", id: request.id }));
    else reply({ op: "aborted", id: request.id });
    return;
  }
  if (request.op === "write") {
    // Answered whatever happens: the answer gives the slot back.
    let bytes = 0;
    if (upload !== undefined && upload !== "failed" && !upload.failed) {
      try {
        const data = new Uint8Array(slots, request.slot * slotBytes, request.length);
        for (const [, hash] of upload.hashes) hash.update(data);
        if (upload.fd !== undefined) writeToUpload(upload, upload.fd, data);
        bytes = request.length;
        flushBehind(request.id, upload, bytes);
      } catch (error) {
        fail(request.id, error, upload);
      }
    }
    // Written whole: the finish's reply gives the slot back. Failed: "failed" went first, and this frees it.
    if (request.finish !== undefined && bytes === request.length && upload !== undefined && upload !== "failed" && !upload.failed) {
      finish(request.id, upload, request.finish);
      return;
    }
    reply({ op: "written", id: request.id, slot: request.slot, bytes });
    return;
  }
  if (upload === undefined || upload === "failed" || upload.failed || upload.syncing) return;
  finish(request.id, upload, request);
}

/**
 * The upload whose flush behind its writes is under way on this worker (flushBehind): a finish or an
 * abort of it waits for that flush, which uses its descriptor.
 */
let flushing: OpenUpload | undefined;

/**
 * Starts an fdatasync of what this upload has written so far once `flushBehindBytes` more are written,
 * while the writes go on: the disk writes the file as it grows, rather than all of it at the finish's
 * fsync, which then has only the last bytes to flush. (The kernel would start writing back dirty pages
 * only past a tenth of memory.) One at a time on this worker: each holds a thread of the process's
 * libuv pool, which the event loop's file calls (every GET's lstat) share.
 */
function flushBehind(id: number, upload: OpenUpload, bytes: number): void {
  const { fd } = upload;
  if (upload.flushBehindBytes === undefined || fd === undefined) return;
  upload.unflushedBytes += bytes;
  if (flushing !== undefined || upload.unflushedBytes < upload.flushBehindBytes) return;
  flushing = upload;
  upload.unflushedBytes = 0;
  fs.fdatasync(fd, (error) => {
    flushing = undefined;
    if (error !== null && !upload.failed) fail(id, error, upload);
    const next = upload.afterFlush;
    upload.afterFlush = undefined;
    next?.();
  });
}

/** Runs `then` once the upload's flush behind its writes has ended (after what already waits for it). */
function whenFlushed(upload: OpenUpload, then: () => void): void {
  const before = upload.afterFlush;
  upload.afterFlush = before === undefined ? then : () => (before(), then());
}

/** Writes the sidecar when asked, fsyncs when asked, closes, and answers the digests (or the failure). */
function finish(id: number, upload: OpenUpload, request: FinishRequest): void {
  if (upload === flushing) {
    whenFlushed(upload, () => (upload.failed ? undefined : finish(id, upload, request)));
    return;
  }
  const digests: Partial<Record<Digest, string>> = {};
  for (const [digest, hash] of upload.hashes) digests[digest] = hash.digest("hex");
  const { fd } = upload;
  if (fd === undefined) {
    uploads.delete(id);
    reply({ op: "finished", id, digests, file: undefined, sidecar: false, placement: undefined });
    return;
  }
  let file: WrittenFile;
  try {
    file = identityOf(fd);
  } catch (error) {
    // The upload is still known: its abort closes the descriptor.
    fail(id, error, upload);
    return;
  }
  const sidecar = request.sidecar !== undefined && writeSidecar(request.sidecar, digests, file);
  if (!request.fsync) {
    try {
      uploads.delete(id);
      fs.closeSync(fd);
    } catch (error) {
      fail(id, error, upload);
      return;
    }
    const { place: asked } = request;
    const placement = asked !== undefined && sidecar && matches(digests, asked.expected) ? place(asked) : undefined;
    reply({ op: "finished", id, digests, file, sidecar, placement });
    return;
  }
  upload.syncing = true;
  fs.fsync(fd, (syncError) => {
    fs.close(fd, (closeError) => {
      uploads.delete(id);
      const error = syncError ?? closeError;
      if (upload.abortWhenSynced) reply({ op: "aborted", id: id });
      else if (error !== null) fail(id, error, undefined);
      else reply({ op: "finished", id, digests, file, sidecar, placement: undefined });
    });
  });
}

port.on("message", handle);
