// The listening socket in front of a Hono app. Some requests must be refused before a route sees them:
// more than one Host header (RFC 9112 §3.2: 400), or a backslash in the path, which @hono/node-server
// cannot turn into a Request (it answered a bare 400: no JSON body, no log line). Such requests are
// marked here and let through, with the backslash percent-encoded so a Request can be built, and
// refused by the app's first middleware (refusedRequest): the JSON error body and the usual log line,
// like any other error.
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { getRequestListener } from "@hono/node-server";
import type { Logger } from "../log.js";

type FetchCallback = Parameters<typeof getRequestListener>[0];

const refusals = new WeakMap<IncomingMessage, string>();
/** Requests that sent Expect: 100-continue and have not been told to send their body yet. */
const awaitingContinue = new WeakMap<IncomingMessage, ServerResponse>();

/**
 * Tells a client that sent Expect: 100-continue to send its body, once: called by whoever reads the
 * body (transport.requestBody), which every route does only after the request is admitted. A request
 * refused before (401, 403, 404, 400) is answered without a 100, and its client never sends the body.
 */
export function continueIfAwaited(incoming: IncomingMessage): void {
  const outgoing = awaitingContinue.get(incoming);
  if (outgoing === undefined) return;
  awaitingContinue.delete(incoming);
  if (!outgoing.headersSent) outgoing.writeContinue();
}

/** Why a request must be refused before routing, if it must. */
export function refusedRequest(incoming: IncomingMessage | undefined): string | undefined {
  return incoming === undefined ? undefined : refusals.get(incoming);
}

function mark(incoming: IncomingMessage): void {
  let hosts = 0;
  for (let i = 0; i < incoming.rawHeaders.length; i += 2) if (incoming.rawHeaders[i]?.toLowerCase() === "host") hosts += 1;
  if (hosts > 1) {
    refusals.set(incoming, "the request has more than one Host header");
    return;
  }
  const url = incoming.url ?? "";
  const query = url.indexOf("?");
  const path = query === -1 ? url : url.slice(0, query);
  if (path.includes("\\")) {
    refusals.set(incoming, "the request path must not contain a backslash");
    incoming.url = path.replaceAll("\\", "%5C") + (query === -1 ? "" : url.slice(query));
  }
}

/** A request @hono/node-server still cannot build (an invalid Host, say): JSON and a log line too. */
function unparsable(logger: Logger) {
  return (error: unknown): Response => {
    logger.info("request", { route: "unparsed", status: 400, error: error instanceof Error ? error.message : String(error) });
    const body = { error: { code: "BadRequest", message: "the request could not be parsed" } };
    return new Response(JSON.stringify(body), { status: 400, headers: { "Content-Type": "application/json" } });
  };
}

/**
 * The idle timeout (server.setTimeout) is for a client that stalls, not for this server's own work. When
 * it fires during a request whose response has not started, the server is the one behind if it holds
 * body bytes it has not consumed yet (its own backpressure: an extraction creating and fsyncing files
 * reads the body only as fast as it writes) or has the whole body (fsync, commit): the client has nothing
 * to send and nothing to read, and cutting it off would tell it a write failed that was then stored. The
 * timer is re-armed then. A client that stops sending (nothing buffered, body incomplete) or stops
 * reading a response is still cut off, as Node does without a listener.
 */
function judgeIdleTimeout(server: Server, incoming: IncomingMessage, outgoing: ServerResponse): void {
  // Node emits 'timeout' on the active response, and destroys the socket only when nobody listens.
  outgoing.on("timeout", (socket: Socket) => {
    const serverBusy = !outgoing.headersSent && (incoming.complete || incoming.readableLength > 0);
    if (serverBusy) socket.setTimeout(server.timeout);
    else socket.destroy();
  });
}

/** Serves `fetch` on host:port; rejects (e.g. EADDRINUSE) instead of emitting an unhandled 'error'. */
export async function listen(fetch: FetchCallback, options: { port: number; host: string; logger: Logger }): Promise<Server> {
  const handle = getRequestListener(fetch, { hostname: options.host, errorHandler: unparsable(options.logger) });
  const listener: RequestListener = (incoming, outgoing) => {
    mark(incoming);
    judgeIdleTimeout(server, incoming, outgoing);
    void handle(incoming, outgoing);
  };
  const server = createServer(listener);
  // Without this listener Node answers 100 Continue itself, before any route has admitted the request.
  server.on("checkContinue", (incoming: IncomingMessage, outgoing: ServerResponse) => {
    awaitingContinue.set(incoming, outgoing);
    listener(incoming, outgoing);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}
