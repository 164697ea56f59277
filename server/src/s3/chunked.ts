// aws-chunked request bodies, decoded while they stream: `<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n`
// … a zero-size chunk, then (trailer modes) header lines such as `x-amz-checksum-crc32:<base64>` and an
// empty line. Signed modes verify every chunk's signature against the previous one, starting from the
// request's seed signature; trailer modes verify the declared checksum. Any failure throws before the
// body ends, so the store never commits a body that did not verify (nothing partial is kept). Memory is
// bounded: data passes through as slices of the received buffers; only header lines are collected.
import { createHash, type Hash } from "node:crypto";
import { S3Error, invalidArgument } from "./errors.js";
import { badChecksum, checksumAlgorithmOf, startChecksum, type ChecksumAlgorithm, type RunningChecksum } from "./checksums.js";
import { sameSignature, signatureMismatch, type RequestSigner } from "./sigv4.js";

/** A chunk header or trailer line longer than this is not a client of ours. */
const MAX_LINE_BYTES = 8192;
const MAX_TRAILER_LINES = 16;

export interface ChunkedBodyOptions {
  /** Signed modes: checks each chunk's signature. */
  readonly signer?: RequestSigner | undefined;
  /** x-amz-trailer: the trailing header the client declared (e.g. x-amz-checksum-crc32). */
  readonly trailer?: string | undefined;
  /** x-amz-decoded-content-length, when sent: the decoded body must be exactly this long. */
  readonly decodedLength?: number | undefined;
}

const incomplete = () => new S3Error(400, "IncompleteBody", "The request body ended before the last chunk.");
const malformedChunk = (why: string) => invalidArgument(`The aws-chunked body is malformed: ${why}.`);

export async function* decodeAwsChunked(source: AsyncIterable<Uint8Array>, options: ChunkedBodyOptions): AsyncGenerator<Uint8Array> {
  const { signer } = options;
  const trailerAlgorithm: ChecksumAlgorithm | undefined = options.trailer === undefined ? undefined : checksumAlgorithmOf(options.trailer);
  const checksum: RunningChecksum | undefined = trailerAlgorithm === undefined ? undefined : startChecksum(trailerAlgorithm);
  let previousSignature = signer?.claim.signature ?? "";

  let pending: Buffer = Buffer.alloc(0);
  let state: "header" | "data" | "data-end" | "trailer" | "done" = "header";
  let remaining = 0;
  let chunkSignature: string | undefined;
  let chunkHash: Hash | undefined;
  let decoded = 0;
  const trailerLines: string[] = [];

  /** Takes one CRLF-terminated line from `pending`, or undefined when it has not all arrived. */
  const takeLine = (): string | undefined => {
    const end = pending.indexOf("\r\n");
    if (end === -1) {
      if (pending.length > MAX_LINE_BYTES) throw malformedChunk("a line is too long");
      return undefined;
    }
    if (end > MAX_LINE_BYTES) throw malformedChunk("a line is too long");
    const line = pending.toString("latin1", 0, end);
    pending = pending.subarray(end + 2);
    return line;
  };

  const verifyChunk = async (data: string) => {
    if (signer === undefined) return;
    if (chunkSignature === undefined) throw signatureMismatch();
    const expected = await signer.chunkSignature(previousSignature, data);
    if (!sameSignature(expected, chunkSignature)) throw signatureMismatch();
    previousSignature = chunkSignature;
  };

  const finishTrailer = async () => {
    const fields = new Map<string, string>();
    for (const line of trailerLines) {
      const colon = line.indexOf(":");
      if (colon <= 0) throw malformedChunk("a trailer line has no name");
      fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    if (signer !== undefined && options.trailer !== undefined) {
      const signature = fields.get("x-amz-trailer-signature");
      if (signature === undefined) throw signatureMismatch();
      // The signed text is each trailing header as "name:value\n", the signature line excluded.
      const text = trailerLines.filter((line) => !line.toLowerCase().startsWith("x-amz-trailer-signature:")).map((line) => `${line}\n`).join("");
      if (!sameSignature(await signer.trailerSignature(previousSignature, text), signature)) throw signatureMismatch();
    }
    if (trailerAlgorithm !== undefined && checksum !== undefined) {
      const sent = fields.get(`x-amz-checksum-${trailerAlgorithm}`);
      if (sent === undefined) throw invalidArgument(`The trailer x-amz-checksum-${trailerAlgorithm} was declared but not sent.`);
      if ((await checksum.digest()) !== sent) throw badChecksum(trailerAlgorithm);
    }
  };

  const advance = async function* (): AsyncGenerator<Uint8Array> {
    for (;;) {
      switch (state) {
        case "header": {
          const line = takeLine();
          if (line === undefined) return;
          const semicolon = line.indexOf(";");
          const sizeText = semicolon === -1 ? line : line.slice(0, semicolon);
          if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText)) throw malformedChunk("a chunk size is not hexadecimal");
          remaining = Number.parseInt(sizeText, 16);
          if (!Number.isSafeInteger(remaining)) throw malformedChunk("a chunk is too large");
          const extension = semicolon === -1 ? "" : line.slice(semicolon + 1);
          chunkSignature = /^chunk-signature=([0-9a-f]{64})$/.exec(extension.trim())?.[1];
          if (signer !== undefined && chunkSignature === undefined) throw signatureMismatch();
          chunkHash = signer === undefined ? undefined : createHash("sha256");
          if (remaining === 0) {
            await verifyChunk(chunkHash?.digest("hex") ?? "");
            state = "trailer";
          } else {
            state = "data";
          }
          continue;
        }
        case "data": {
          if (pending.length === 0) return;
          const take = Math.min(remaining, pending.length);
          const piece = pending.subarray(0, take);
          pending = pending.subarray(take);
          remaining -= take;
          decoded += take;
          chunkHash?.update(piece);
          checksum?.update(piece);
          yield piece;
          if (remaining === 0) state = "data-end";
          continue;
        }
        case "data-end": {
          if (pending.length < 2) return;
          if (pending[0] !== 0x0d || pending[1] !== 0x0a) throw malformedChunk("a chunk does not end with CRLF");
          pending = pending.subarray(2);
          await verifyChunk(chunkHash?.digest("hex") ?? "");
          state = "header";
          continue;
        }
        case "trailer": {
          const line = takeLine();
          if (line === undefined) return;
          if (line === "") {
            await finishTrailer();
            state = "done";
            continue;
          }
          if (trailerLines.length >= MAX_TRAILER_LINES) throw malformedChunk("too many trailer lines");
          trailerLines.push(line);
          continue;
        }
        case "done":
          if (pending.length > 0) throw malformedChunk("data follows the last chunk");
          return;
      }
    }
  };

  for await (const received of source) {
    pending = pending.length === 0 ? Buffer.from(received.buffer, received.byteOffset, received.byteLength) : Buffer.concat([pending, received]);
    yield* advance();
  }
  if ((state as string) !== "done") throw incomplete();
  if (options.decodedLength !== undefined && decoded !== options.decodedLength) {
    throw new S3Error(400, "IncompleteBody", "The decoded body is not as long as x-amz-decoded-content-length said.");
  }
}

/** Passes a body through while computing a checksum the client sent as a header; throws on mismatch at the end. */
export async function* verifyChecksumHeader(source: AsyncIterable<Uint8Array>, algorithm: ChecksumAlgorithm, expected: string): AsyncGenerator<Uint8Array> {
  const checksum = startChecksum(algorithm);
  for await (const chunk of source) {
    checksum.update(chunk);
    yield chunk;
  }
  if ((await checksum.digest()) !== expected) throw badChecksum(algorithm);
}
