// Moving bytes between sockets and files. The apps are served only by @hono/node-server (through
// http/listener.ts), and the Node request and response are used directly: no Web-stream conversion on
// the hot paths. Tests serve them the same way, on real sockets.
import { IncomingMessage, ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Context } from "hono";
import type { ArtifactBody, ProducedBody } from "../storage/body.js";
import type { AppEnv } from "./env.js";
import { continueIfAwaited } from "./listener.js";

/** The Node request: every app is served by @hono/node-server, which passes it as a binding. */
function nodeRequest(c: Context<AppEnv>): IncomingMessage {
  const incoming = c.env?.incoming;
  if (!(incoming instanceof IncomingMessage)) throw new Error("the app must be served by @hono/node-server (http/listener.ts)");
  return incoming;
}

/** The request target (path and query) as the client sent it, before any URL normalization. */
export function requestTarget(c: Context<AppEnv>): string {
  return nodeRequest(c).url ?? "/";
}

/** The request's path as the client sent it, before any URL normalization of '.' and '..' segments. */
export function rawPath(c: Context<AppEnv>): string {
  const target = requestTarget(c);
  const query = target.indexOf("?");
  return query === -1 ? target : target.slice(0, query);
}

/** The request body as an async iterable of chunks, read with backpressure. */
export function requestBody(c: Context<AppEnv>): AsyncIterable<Uint8Array> {
  const incoming = nodeRequest(c);
  continueIfAwaited(incoming);
  return incoming;
}

/** The Node response, written directly by the handlers that send bodies. */
export function nodeResponse(c: Context<AppEnv>): ServerResponse {
  const outgoing = c.env?.outgoing;
  if (!(outgoing instanceof ServerResponse)) throw new Error("the app must be served by @hono/node-server (http/listener.ts)");
  return outgoing;
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
function sendBody(c: Context<AppEnv>, status: number, headers: Record<string, string>, body: Uint8Array<ArrayBuffer>): Response {
  const outgoing = nodeResponse(c);
  outgoing.writeHead(status, headers);
  outgoing.end(body);
  return RESPONSE_ALREADY_SENT;
}

/** Sends `status`, `headers` and a body the store chose (storage/body.ts), each kind its cheapest way. */
export function sendArtifactBody(c: Context<AppEnv>, status: number, headers: Record<string, string>, body: ArtifactBody): Promise<Response> {
  if (body.kind === "bytes") return Promise.resolve(sendBody(c, status, headers, body.bytes));
  if (body.kind === "stream") return sendStream(c, status, headers, body.stream);
  return sendProduced(c, status, headers, body);
}

/**
 * Sends `status`, `headers` and then the body `body.produce` makes, and finally calls `body.done` (e.g.
 * to close a file) whatever happened. The body must be exactly as long as the Content-Length in `headers`;
 * a producer that fails ends the response short, so the client sees an incomplete body, never a
 * wrong one.
 *
 * Why not a stream: a stream allocates a new buffer for every chunk, and Node frees those (memory
 * outside the V8 heap) only in full garbage collections, which in this process (a 30 MB heap of
 * libraries) cost ≈ 20 ms each: 22 % of a 1 GiB download's time went to the garbage collector. Here
 * two buffers are reused, one filled while the other is written, so a download allocates nothing.
 */
async function sendProduced(c: Context<AppEnv>, status: number, headers: Record<string, string>, body: ProducedBody): Promise<Response> {
  const { produce, done, buffers: pool } = body;
  const outgoing = nodeResponse(c);
  const buffers: [Buffer, Buffer] = [pool.take(), pool.take()];
  let filling: Promise<number> | undefined;
  try {
    outgoing.writeHead(status, headers);
    let current: 0 | 1 = 0;
    filling = produce(buffers[current]);
    while (filling !== undefined) {
      const filled = await filling;
      filling = undefined;
      if (filled === 0) break;
      const chunk = buffers[current].subarray(0, filled);
      current = current === 0 ? 1 : 0;
      filling = produce(buffers[current]);
      if (!(await written(outgoing, chunk))) throw new Error("the client went away");
    }
    outgoing.end();
  } catch {
    // The client closed the connection or timed out, or the body could not be produced: the request
    // log records it; the response cannot change status any more.
    outgoing.destroy();
  } finally {
    // A fill still in flight writes into a buffer: wait for it before the buffer is reused.
    await filling?.catch(() => undefined);
    await done().catch(() => {});
    for (const buffer of buffers) pool.give(buffer);
  }
  return RESPONSE_ALREADY_SENT;
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
