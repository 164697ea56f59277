// Messages between the event loop and the upload workers (upload-writers.ts ↔ upload-worker.ts).
// Types only: both sides are bundled separately and share nothing at run time but the slots.

/** What a worker is started with (workerData). */
export interface WorkerSetup {
  /** SLOT_COUNT × slotBytes of memory shared with the event loop: bytes travel through it, not messages. */
  readonly slots: SharedArrayBuffer;
  readonly slotBytes: number;
}

export type WriterRequest =
  /** Create the temporary file (O_CREAT|O_EXCL) that the upload's bytes go to. */
  /** `md5`: also compute the MD5 (S3's ETag of a single-part object); off for the native API, it costs CPU. */
  | { readonly op: "open"; readonly id: number; readonly path: string; readonly mode: number; readonly md5: boolean }
  /** Hash and append the first `length` bytes of `slot`; always answered with "written", which frees it. */
  | { readonly op: "write"; readonly id: number; readonly slot: number; readonly length: number }
  /** fsync when asked, close, and answer the SHA-256 of everything written. */
  | { readonly op: "finish"; readonly id: number; readonly fsync: boolean }
  /** Close without a digest (the event loop removes the file). Always answered. */
  | { readonly op: "abort"; readonly id: number };

export type WriterReply =
  /** The slot is free again; `bytes` is 0 when the upload had already failed. */
  | { readonly op: "written"; readonly id: number; readonly slot: number; readonly bytes: number }
  | { readonly op: "finished"; readonly id: number; readonly sha256: string; readonly md5: string | undefined }
  | { readonly op: "aborted"; readonly id: number }
  /** The upload's first failure (open, write, fsync or close); later requests for it do nothing. */
  | { readonly op: "failed"; readonly id: number; readonly code: string | undefined; readonly message: string };
