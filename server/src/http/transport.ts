// Moving bytes between sockets and files. Under @hono/node-server the Node request and response are
// used directly — no Web-stream conversion on the hot paths; under app.request() (tests of routing
// and validation) the same handlers fall back to Web streams.
import type { FileHandle } from "node:fs/promises";
import { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { pipeline } from "node:stream/promises";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Context } from "hono";
import type { AppEnv } from "./env.js";

/** The request target as the client sent it, before any URL normalization of '.' and '..' segments. */
export function rawPath(c: Context<AppEnv>): string {
  const incoming = c.env?.incoming;
  const target = incoming instanceof IncomingMessage && incoming.url ? incoming.url : new URL(c.req.url).pathname;
  const query = target.indexOf("?");
  return query === -1 ? target : target.slice(0, query);
}

/** The request body as an async iterable of chunks, read with backpressure. */
export function requestBody(c: Context<AppEnv>): AsyncIterable<Uint8Array> {
  const incoming = c.env?.incoming;
  if (incoming instanceof IncomingMessage) return incoming;
  const body = c.req.raw.body;
  if (body === null) return Readable.from([]);
  return Readable.fromWeb(body as NodeReadableStream<Uint8Array>);
}

/** The Node response when the app is served by @hono/node-server. */
export function nodeResponse(c: Context<AppEnv>): ServerResponse | undefined {
  const outgoing = c.env?.outgoing;
  return outgoing instanceof ServerResponse ? outgoing : undefined;
}

/**
 * Sends `status` and `headers`, then `body` (unless null, e.g. HEAD) with backpressure. Resolves once the
 * body is sent or the client has gone away; a client that goes away is not an error of ours.
 */
export async function sendStream(
  c: Context<AppEnv>,
  status: number,
  headers: Record<string, string>,
  body: Readable | null,
): Promise<Response> {
  // Bodiless answers (HEAD, 304) go through Hono as usual: it re-wraps HEAD responses, which would lose
  // the "already sent" marker of the fast path.
  if (body === null) return new Response(null, { status, headers });
  const outgoing = nodeResponse(c);
  if (outgoing === undefined) return new Response(Readable.toWeb(body) as unknown as ReadableStream<Uint8Array>, { status, headers });
  outgoing.writeHead(status, headers);
  try {
    await pipeline(body, outgoing);
  } catch {
    // The client closed the connection, or the socket timed out: the request log records it.
    body.destroy();
  }
  return RESPONSE_ALREADY_SENT;
}

/**
 * Sends a body held in memory. Written to the Node response directly: building a Web Response (and its
 * Headers) for @hono/node-server to take apart again was a measurable share of a small GET.
 */
export function sendBody(c: Context<AppEnv>, status: number, headers: Record<string, string>, body: Uint8Array<ArrayBuffer>): Response {
  const outgoing = nodeResponse(c);
  if (outgoing === undefined) return new Response(body, { status, headers });
  outgoing.writeHead(status, headers);
  outgoing.end(body);
  return RESPONSE_ALREADY_SENT;
}

/** Bytes per read of a file being sent. */
const FILE_CHUNK_BYTES = 1 << 20;
/** Read buffers kept for the next download, so a steady stream of downloads allocates nothing. */
const MAX_SPARE_FILE_BUFFERS = 8;
const spareFileBuffers: Buffer[] = [];

/**
 * Sends bytes [start, start + length) of `handle` after `status` and `headers`, and closes the handle.
 *
 * Why not `handle.createReadStream()`: a stream allocates a new buffer for every chunk, and Node
 * frees those (memory outside the V8 heap) only in full garbage collections, which in this process
 * (a 30 MB heap of libraries) cost ≈ 20 ms each: 22 % of a 1 GiB download's time went to the garbage
 * collector. Here two buffers are reused (one read ahead while the other is written), so a download
 * allocates nothing at all.
 */
export async function sendFileRange(
  c: Context<AppEnv>,
  status: number,
  headers: Record<string, string>,
  handle: FileHandle,
  start: number,
  length: number,
): Promise<Response> {
  const outgoing = nodeResponse(c);
  if (outgoing === undefined) {
    const stream = handle.createReadStream({ start, end: start + length - 1, highWaterMark: FILE_CHUNK_BYTES, autoClose: true });
    return sendStream(c, status, headers, stream);
  }
  const buffers: [Buffer, Buffer] = [takeFileBuffer(), takeFileBuffer()];
  const end = start + length;
  let reading: Promise<{ bytesRead: number }> | undefined;
  try {
    outgoing.writeHead(status, headers);
    let position = start;
    let current: 0 | 1 = 0;
    reading = handle.read(buffers[current], 0, Math.min(FILE_CHUNK_BYTES, end - position), position);
    while (reading !== undefined) {
      const { bytesRead } = await reading;
      reading = undefined;
      // Shorter than its size a moment ago (truncated underneath us): end the response short, so the
      // client sees an incomplete body rather than wrong bytes.
      if (bytesRead === 0) throw new Error("the artifact became shorter while it was sent");
      const chunk = buffers[current].subarray(0, bytesRead);
      position += bytesRead;
      current = current === 0 ? 1 : 0;
      if (position < end) reading = handle.read(buffers[current], 0, Math.min(FILE_CHUNK_BYTES, end - position), position);
      if (!(await written(outgoing, chunk))) throw new Error("the client went away");
    }
    outgoing.end();
  } catch {
    // The client closed the connection or timed out, or the file could not be read: the request log
    // records it; the response cannot change status any more.
    outgoing.destroy();
  } finally {
    // A read still in flight writes into a buffer: wait for it before the buffer is reused.
    await reading?.catch(() => undefined);
    await handle.close().catch(() => {});
    for (const buffer of buffers) if (spareFileBuffers.length < MAX_SPARE_FILE_BUFFERS) spareFileBuffers.push(buffer);
  }
  return RESPONSE_ALREADY_SENT;
}

function takeFileBuffer(): Buffer {
  return spareFileBuffers.pop() ?? Buffer.allocUnsafeSlow(FILE_CHUNK_BYTES);
}

/**
 * Resolves true once `chunk` has been handed to the kernel (its buffer may then be reused), false if
 * the response was closed first.
 */
function written(outgoing: ServerResponse, chunk: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const onClose = () => resolve(false);
    outgoing.once("close", onClose);
    outgoing.write(chunk, (error) => {
      outgoing.off("close", onClose);
      resolve(error === undefined || error === null);
    });
  });
}
