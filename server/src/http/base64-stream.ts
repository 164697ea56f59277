// Base64 of a stream of unknown length, streamed: each chunk is encoded as it comes, and the 0 to 2 bytes
// that do not fill a 3-byte group are carried into the next chunk, so the output is exactly the base64 of
// the whole input (padding only at its very end) while memory stays one chunk.
import { Readable } from "node:stream";

/** Input bytes per base64 string: small enough that each string stays on V8's young heap (routes/kfp.ts says why). */
export const ENCODE_STEP_BYTES = 48 << 10;

async function* encode(source: AsyncIterable<Uint8Array>, prefix: Uint8Array, suffix: Uint8Array): AsyncGenerator<Buffer> {
  yield Buffer.from(prefix);
  let carry = Buffer.alloc(0);
  for await (const piece of source) {
    const chunk = carry.length === 0 ? Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength) : Buffer.concat([carry, piece]);
    const whole = chunk.length - (chunk.length % 3);
    for (let start = 0; start < whole; start += ENCODE_STEP_BYTES) {
      yield Buffer.from(chunk.toString("base64", start, Math.min(start + ENCODE_STEP_BYTES, whole)), "latin1");
    }
    // Copied: the source may reuse the memory of the chunk it handed over.
    carry = Buffer.from(chunk.subarray(whole));
  }
  if (carry.length > 0) yield Buffer.from(carry.toString("base64"), "latin1");
  yield Buffer.from(suffix);
}

/**
 * `prefix`, the base64 of everything `source` yields, then `suffix`. An error of the source ends the
 * output with that error: the consumer sees it fail, never a shorter body that looks whole.
 */
export function base64Stream(source: AsyncIterable<Uint8Array>, prefix: Uint8Array, suffix: Uint8Array): Readable {
  return Readable.from(encode(source, prefix, suffix), { objectMode: false });
}
