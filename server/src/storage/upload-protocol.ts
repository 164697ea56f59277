// Messages between the event loop and the upload workers (upload-writers.ts ↔ upload-worker.ts).
// Types and constants only: both sides are bundled separately and share nothing at run time but the slots.

/** What a worker is started with (workerData). */
export interface WorkerSetup {
  /** SLOT_COUNT × slotBytes of memory shared with the event loop: bytes travel through it, not messages. */
  readonly slots: SharedArrayBuffer;
  readonly slotBytes: number;
}

/** The digests a worker can keep of an upload's bytes. */
export type Digest = "sha256" | "md5";

/**
 * A digest sidecar (sidecar-format.ts) for the writing worker to create at `path` once the upload's
 * digests and identity are known, so that the commit only renames it into place.
 */
export interface SidecarRequest {
  readonly path: string;
  /** The S3 ETag to record (an assembled multipart upload's), unless `md5AsETag`. */
  readonly s3ETag: string | undefined;
  /** Record the body's MD5 as the S3 ETag (a single-part S3 upload). */
  readonly md5AsETag: boolean;
}

/** The identity of a written file, as fstat(2) gave it just before its close: what a sidecar names. */
export interface WrittenFile {
  readonly ino: bigint;
  readonly size: bigint;
  readonly mtimeNs: bigint;
}

/**
 * How an upload ends: its sidecar when asked (with a file), an fsync when asked, then its close; and
 * with `place` (no fsync, a sidecar written), its commit right after, in the same hand-off.
 */
export interface FinishRequest {
  readonly fsync: boolean;
  readonly sidecar: SidecarRequest | undefined;
  readonly place?: PlaceAfterFinish | undefined;
}

/**
 * A staged file's commit into its key, in one hand-off (commit.ts): look the entry up, refuse a
 * directory or anything but a file there, rename the sidecar into place (making its directory when
 * missing), then the file. The event loop holds the key's commit lock meanwhile.
 */
export interface PlaceRequest {
  /** The key's entry, below a directory the event loop holds open (/proc/self/fd/<fd>/<name>). */
  readonly entry: string;
  /** The staged file, renamed to `entry` last. */
  readonly file: string;
  readonly sidecar: { readonly from: string; readonly to: string };
}

/**
 * The commit of a whole small body, asked with its finish (commit.ts): made only if the body has the
 * digests the client gave and its sidecar was written; otherwise the reply carries no placement and
 * the event loop decides.
 */
export interface PlaceAfterFinish extends PlaceRequest {
  readonly expected: Partial<Record<Digest, string>>;
}

/** What a place request found at the key and did: refused, failed at a step, or placed over `previousSize`. */
export type PlaceOutcome =
  | { readonly placed: true; readonly previousSize: number | undefined }
  | { readonly placed: false; readonly refused: "directory" | "not a file" }
  | { readonly placed: false; readonly failedAt: "lookup" | "sidecar" | "file"; readonly code: string | undefined; readonly message: string };

export type WriterRequest =
  /**
   * Start an upload on this worker: with `file`, create it (O_CREAT|O_EXCL) and append the bytes to it
   * (with `at`, write them into the existing file from that offset instead); keep the `digests` asked
   * for. An S3 upload's MD5 may run on a second worker, which gets no `file`.
   */
  | {
      readonly op: "open";
      readonly id: number;
      readonly file: { readonly path: string; readonly mode: number; readonly at?: number | undefined } | undefined;
      readonly digests: readonly Digest[];
      /** With FSYNC: flush the file behind its writes every this many bytes, not only at the finish. */
      readonly flushBehindBytes?: number | undefined;
    }
  /**
   * Hash (and append, with a file) the first `length` bytes of `slot`; answered with "written", which
   * frees it. With `finish` (a whole body in one slot, on one worker), the finish follows at once and
   * its one reply ("finished", "failed" or "aborted") frees the slot instead: one hand-off per write fewer.
   */
  | { readonly op: "write"; readonly id: number; readonly slot: number; readonly length: number; readonly finish?: FinishRequest | undefined }
  /** Write the sidecar when asked (with a file), fsync when asked, close, and answer the digests. */
  | ({ readonly op: "finish"; readonly id: number } & FinishRequest)
  /** Close without a digest (the event loop removes the file). Always answered. */
  | { readonly op: "abort"; readonly id: number }
  /** Commit a staged file (PlaceRequest); answered with "placed". `id` names this request, not an upload. */
  | ({ readonly op: "place"; readonly id: number } & PlaceRequest)
  /**
   * Hash and append bytes of a file already on the volume (AppendRange), read by the worker itself:
   * no byte crosses the event loop. Answered with "appended", or "failed" with SOURCE_CHANGED when the
   * file is not the one the range describes.
   */
  | ({ readonly op: "append"; readonly id: number } & AppendRange);

/**
 * `length` bytes from `offset` of the file at `source`, whose size (and inode, when known) the caller
 * recorded; no size for a range of a file that other ranges are still being written into.
 */
export interface AppendRange {
  readonly source: string;
  readonly offset: number;
  readonly length: number;
  readonly sourceSize: number | undefined;
  readonly sourceIno: number | undefined;
}

/** The failure code of an append whose source is missing bytes or is another file than the one recorded. */
export const SOURCE_CHANGED = "ESOURCECHANGED";

export type WriterReply =
  /** This worker is done with the slot; `bytes` is 0 when the upload had already failed. */
  | { readonly op: "written"; readonly id: number; readonly slot: number; readonly bytes: number }
  /** The digests the upload was opened with on this worker, hex; from the worker that wrote it, the file's identity. */
  | {
      readonly op: "finished";
      readonly id: number;
      readonly digests: Partial<Record<Digest, string>>;
      readonly file: WrittenFile | undefined;
      /** Whether the sidecar asked for was written (not when the MD5 it needs was computed elsewhere, or the write failed). */
      readonly sidecar: boolean;
      /** What the finish's `place` did; undefined when none was asked or it was not made. */
      readonly placement: PlaceOutcome | undefined;
    }
  | { readonly op: "aborted"; readonly id: number }
  /** An append's bytes are hashed and written. */
  | { readonly op: "appended"; readonly id: number; readonly bytes: number }
  | { readonly op: "placed"; readonly id: number; readonly outcome: PlaceOutcome }
  /** The upload's first failure (open, write, fsync or close); later requests for it do nothing. */
  | { readonly op: "failed"; readonly id: number; readonly code: string | undefined; readonly message: string };
