// What a read of the store hands the HTTP layer to send: bytes in memory, a file's bytes produced into
// reusable buffers, or a stream (an archive packed on the fly). The store chooses among them
// (read.ts); http/transport.ts sends each the way it is cheapest to.
import type { Readable } from "node:stream";
import type { BufferPool } from "./buffer-pool.js";

/**
 * Fills `target` (BODY_BUFFER_BYTES long) with the next bytes of a body and resolves how many; 0 when
 * the body is complete. Called again only after the previous call has settled.
 */
export type BodyProducer = (target: Buffer) => Promise<number>;

/** A body produced into the buffers of `buffers`, then `done()` (closing the file) whatever happened. */
export interface ProducedBody {
  readonly kind: "produced";
  readonly produce: BodyProducer;
  readonly done: () => Promise<void>;
  readonly buffers: BufferPool;
}

export type ArtifactBody =
  | { readonly kind: "bytes"; readonly bytes: Uint8Array<ArrayBuffer> }
  | ProducedBody
  | { readonly kind: "stream"; readonly stream: Readable };
