// The shape every API has: a Hono sub-app under its own path prefix, with the request guards, 405 with
// Allow from its own routes, a catch-all 404, and its own error mapper. app.ts mounts the sub-apps with
// app.route(); Hono (4.x) wraps each mounted handler and middleware in the sub-app's onError, so an
// error thrown anywhere in an API is answered in that API's shape (its own notFound is not carried
// over, hence the catch-all route).
import type { Context, ErrorHandler } from "hono";
import { Hono } from "hono";
import { badRequest, HttpError, notFound } from "../errors.js";
import type { AppEnv } from "../http/env.js";
import { refusedRequest } from "../http/listener.js";
import { allowedMethods } from "../http/methods.js";
import { rawPath } from "../http/transport.js";
import type { Logger } from "../log.js";
import { volumeFault, type VolumeHealth } from "../storage/volume-health.js";

const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

/** How an API answers an error: its body shape, given the error as an HttpError. */
export type ErrorBody = (c: Context<AppEnv>, error: HttpError) => Response;

export interface FaultHandling {
  readonly logger: Logger;
  /** The volume's probe, asked when a filesystem error may be the volume's (full, read-only, gone). */
  readonly checkVolume: () => Promise<VolumeHealth>;
}

/** What every unexpected error becomes for the client; the details go to our log only. */
export const INTERNAL_ERROR_CODE = "Internal";

export interface ApiOptions {
  /** Every path the API answers starts with this ("" for the operations API, which also answers every path no other API claims and so is mounted last). */
  readonly basePath: string;
  readonly errorBody: ErrorBody;
  readonly faults: FaultHandling;
  /**
   * The request guards: '.' and '..' segments and requests the listener marked (a duplicate Host, a
   * backslash in the path) refused, and 405 for a wrong method. Off for S3, whose keys are its clients'.
   */
  readonly guards?: boolean;
}

/** Errors from the client's side of a transfer (it went away mid-body): not ours, not worth a stack. */
function isClientAbort(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ECONNRESET" || code === "ERR_STREAM_PREMATURE_CLOSE" || (error as Error | undefined)?.message === "aborted";
}

/** Any error as an HttpError the client may see: ours as they are, the volume's named, the unexpected hidden. */
async function classify(error: unknown, c: Context<AppEnv>, { logger, checkVolume }: FaultHandling): Promise<HttpError> {
  if (error instanceof HttpError) return error;
  if (isClientAbort(error)) return new HttpError(400, "ClientClosedRequest", "the request body was not received completely");
  const where = { method: c.req.method, route: c.req.routePath, operation: c.get("record")?.operation };
  // Every route's filesystem errors meet here: a full, read-only or vanished volume is said as such.
  const fault = await volumeFault(error, checkVolume);
  if (fault !== undefined) {
    logger.warn("artifact volume fault", { ...where, error: String(error), status: fault.status });
    return fault;
  }
  // Unexpected: the details (stack, paths) go to our log only, never to the client.
  logger.error("unhandled error", { ...where, error });
  return new HttpError(500, INTERNAL_ERROR_CODE, "internal server error");
}

export function errorMapper(errorBody: ErrorBody, faults: FaultHandling): ErrorHandler<AppEnv> {
  return async (error, c) => errorBody(c, await classify(error, c, faults));
}

/**
 * A new API: `register` adds its routes. The sub-app is complete (guards, catch-all, error mapper) and
 * can also be served alone (S3 on its own port).
 */
export function defineApi(options: ApiOptions, register: (api: Hono<AppEnv>) => void): Hono<AppEnv> {
  const api = options.basePath === "" ? new Hono<AppEnv>() : new Hono<AppEnv>().basePath(options.basePath);
  if (options.guards !== false) {
    api.use(async (c, next) => {
      // '.' and '..' segments (also percent-encoded) are refused, not normalized into another path.
      if (rawPath(c).split("/").some((segment) => DOT_SEGMENT.test(segment))) {
        throw badRequest("the path must not contain '.' or '..' segments");
      }
      // Marked by the listener: refused before any route.
      const refusal = refusedRequest(c.env?.incoming);
      if (refusal !== undefined) throw badRequest(refusal);
      await next();
    });
    api.use(allowedMethods(api));
  }
  register(api);
  api.all("*", (c) => {
    c.get("record").operation = "unmatched";
    throw notFound("no such route");
  });
  const onError = errorMapper(options.errorBody, options.faults);
  api.onError(onError);
  api.notFound((c) => options.errorBody(c, notFound("no such route")));
  return api;
}

/** The native API's error body, also the operations API's and that of paths no API claims. */
export const nativeErrorBody: ErrorBody = (c, error) => {
  for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
  return c.json({ error: { code: error.code, message: error.message } }, error.status);
};
