// The listening socket in front of a Hono app. Some requests must be refused before a route sees them:
// more than one Host header (RFC 9112 §3.2: 400), or a backslash in the path, which @hono/node-server
// cannot turn into a Request (it answered a bare 400: no JSON body, no log line). Such requests are
// marked here and let through, with the backslash percent-encoded so a Request can be built, and
// refused by the app's first middleware (refusedRequest): the JSON error body and the usual log line,
// like any other error.
import { createServer, type IncomingMessage, type RequestListener, type Server } from "node:http";
import { getRequestListener } from "@hono/node-server";
import type { Logger } from "../log.js";

type FetchCallback = Parameters<typeof getRequestListener>[0];

const refusals = new WeakMap<IncomingMessage, string>();

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

/** Serves `fetch` on host:port; rejects (e.g. EADDRINUSE) instead of emitting an unhandled 'error'. */
export async function listen(fetch: FetchCallback, options: { port: number; host: string; logger: Logger }): Promise<Server> {
  const handle = getRequestListener(fetch, { hostname: options.host, errorHandler: unparsable(options.logger) });
  const listener: RequestListener = (incoming, outgoing) => {
    mark(incoming);
    void handle(incoming, outgoing);
  };
  const server = createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}
