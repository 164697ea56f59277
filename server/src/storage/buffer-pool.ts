// Buffers a file body is read into on its way to a socket, reused from one response to the next so a
// steady stream of downloads allocates nothing (http/transport.ts explains why not a stream). One pool
// per runtime (runtime.ts).

/** Bytes per buffer of a body read from a file. */
export const BODY_BUFFER_BYTES = 1 << 20;
/** Buffers kept for the next response. */
const MAX_SPARE_BUFFERS = 8;

export class BufferPool {
  readonly #spare: Buffer[] = [];

  /** A buffer of BODY_BUFFER_BYTES: a spare one, or a new one outside the V8 heap. */
  take(): Buffer {
    return this.#spare.pop() ?? Buffer.allocUnsafeSlow(BODY_BUFFER_BYTES);
  }

  /** Gives `buffer` back once nothing writes into it or reads from it any more. */
  give(buffer: Buffer): void {
    if (this.#spare.length < MAX_SPARE_BUFFERS) this.#spare.push(buffer);
  }

  /** Buffers waiting to be reused. */
  get spare(): number {
    return this.#spare.length;
  }
}
