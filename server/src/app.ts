// createApp(config, deps): the whole HTTP surface as a Hono app — testable with app.request(), served
// by server.ts. Errors are thrown as HttpError anywhere and mapped to JSON once, here.
import { Hono } from "hono";
import type { Context } from "hono";
import type { Authorizer } from "./auth/types.js";
import type { Config } from "./config.js";
import { badRequest, HttpError } from "./errors.js";
import type { AppEnv } from "./http/env.js";
import { accessLog } from "./http/access-log.js";
import { refusedRequest } from "./http/listener.js";
import { allowedMethods } from "./http/methods.js";
import { rawPath } from "./http/transport.js";
import type { Logger } from "./log.js";
import type { HttpMetrics } from "./metrics.js";
import { registerFilesystemStorageRoutes } from "./routes/filesystem-storage.js";
import { isKfpPath, registerKfpRoutes } from "./routes/kfp.js";
import { registerNativeRoutes } from "./routes/native.js";
import { registerOperationsRoutes, type Lifecycle } from "./routes/operations.js";
import type { RunIndex } from "./storage/runs.js";
import type { ArtifactStore } from "./storage/store.js";
import { volumeFault } from "./storage/volume-health.js";

export interface AppDeps {
  readonly store: ArtifactStore;
  readonly runs: RunIndex;
  readonly authorizer: Authorizer;
  readonly metrics: HttpMetrics;
  readonly logger: Logger;
  readonly lifecycle: Lifecycle;
}

const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

/** Errors from the client's side of a transfer (it went away mid-body): not ours, not worth a stack. */
function isClientAbort(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ECONNRESET" || code === "ERR_STREAM_PREMATURE_CLOSE" || (error as Error | undefined)?.message === "aborted";
}

/** The JSON error body: the native API's shape, or KFP's on the compatibility API. */
function errorResponse(c: Context<AppEnv>, error: HttpError): Response {
  for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
  if (isKfpPath(rawPath(c))) {
    return c.json({ error_message: error.message, error_details: `${error.code}: ${error.message}` }, error.status);
  }
  return c.json({ error: { code: error.code, message: error.message } }, error.status);
}

export function createApp(config: Config, deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { logger, metrics } = deps;

  app.use(accessLog({ logger, metrics }));

  // '.' and '..' segments (also percent-encoded) are refused, not normalized into another path.
  app.use(async (c, next) => {
    if (rawPath(c).split("/").some((segment) => DOT_SEGMENT.test(segment))) {
      throw badRequest("the path must not contain '.' or '..' segments");
    }
    await next();
  });
  // Marked by the listener (a duplicate Host, a backslash in the path): refused before any route.
  app.use(async (c, next) => {
    const refusal = refusedRequest(c.env?.incoming);
    if (refusal !== undefined) throw badRequest(refusal);
    await next();
  });
  app.use(allowedMethods(app));

  registerOperationsRoutes(app, { ...deps, nodeName: config.nodeName, usesKubernetes: config.authMode === "kubernetes" });
  const access = { authorizer: deps.authorizer, scopeNamespace: config.scopeNamespace };
  registerNativeRoutes(app, { ...access, store: deps.store });
  registerKfpRoutes(app, { ...access, store: deps.store, runs: deps.runs });
  registerFilesystemStorageRoutes(app, config, logger);

  app.notFound((c) => errorResponse(c, new HttpError(404, "NotFound", "no such route")));

  app.onError(async (error, c: Context<AppEnv>) => {
    if (error instanceof HttpError) return errorResponse(c, error);
    if (isClientAbort(error)) {
      return errorResponse(c, new HttpError(400, "ClientClosedRequest", "the request body was not received completely"));
    }
    // Every route's filesystem errors meet here: a full, read-only or vanished volume is said as such.
    const fault = await volumeFault(error, () => deps.store.checkVolume());
    if (fault !== undefined) {
      logger.warn("artifact volume fault", { method: c.req.method, route: c.req.routePath, error: String(error), status: fault.status });
      return errorResponse(c, fault);
    }
    // Unexpected: the details (stack, paths) go to our log only, never to the client.
    logger.error("unhandled error", { method: c.req.method, route: c.req.routePath, error: String(error), stack: error.stack });
    return errorResponse(c, new HttpError(500, "Internal", "internal server error"));
  });

  return app;
}
