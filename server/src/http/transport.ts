// Moving bytes between sockets and files. Under @hono/node-server the Node request and response are
// used directly — no Web-stream conversion on the hot paths; under app.request() (tests of routing
// and validation) the same handlers fall back to Web streams.
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
