// One log line and one set of metrics per request, written when the last byte has been sent. Shared by
// every API's app; the S3 API labels its requests with the S3 operation instead of a route pattern.
import type { MiddlewareHandler } from "hono";
import type { Logger } from "../log.js";
import type { HttpMetrics } from "../metrics.js";
import type { AppEnv, RequestRecord } from "./env.js";
import { nodeResponse } from "./transport.js";

const PROBE_ROUTES = new Set(["/healthz", "/readyz", "/metrics"]);

export function accessLog({ logger, metrics }: { logger: Logger; metrics: HttpMetrics }): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const record: RequestRecord = {};
    c.set("record", record);
    const started = performance.now();
    const outgoing = nodeResponse(c);
    const socket = outgoing.socket;
    const writtenBefore = socket?.bytesWritten ?? 0;
    await next();
    const finish = () => {
      const route = record.operation ?? (c.req.routePath === "/*" ? "unmatched" : c.req.routePath);
      const status = outgoing.headersSent ? outgoing.statusCode : c.res.status;
      // Body bytes as the handlers counted them: Node's HTTP parser consumes the socket natively, so
      // socket.bytesRead stays 0. Bytes out include headers.
      const bytesIn = record.bytesIn ?? 0;
      const bytesOut = (socket?.bytesWritten ?? writtenBefore) - writtenBefore;
      const seconds = (performance.now() - started) / 1000;
      metrics.requests.inc({ route, method: c.req.method, status: String(status) });
      metrics.duration.observe({ route, method: c.req.method }, seconds);
      metrics.bytesReceived.inc({ route }, bytesIn);
      metrics.bytesSent.inc({ route }, bytesOut);
      const level = status >= 500 ? "error" : record.decision === "deny" ? "warn" : PROBE_ROUTES.has(route) ? "debug" : "info";
      logger.request(level, {
        method: c.req.method,
        route,
        namespace: record.namespace,
        key: record.key,
        status,
        bytesIn,
        bytesOut,
        durationMs: Math.round(seconds * 1000 * 10) / 10,
        user: record.user,
        groups: record.groups,
        verb: record.verb,
        decision: record.decision,
        s3Error: record.s3Error,
        aborted: !outgoing.writableFinished ? true : undefined,
      });
    };
    if (outgoing.closed) finish();
    else outgoing.once("close", finish);
  };
}
