// Typed HTTP errors. Code anywhere throws one; app.onError maps it once to the JSON error body.
// Messages are written for clients: they never contain a filesystem path or a stack trace.
import type { ContentfulStatusCode } from "hono/utils/http-status";

export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

export const badRequest = (message: string) => new HttpError(400, "BadRequest", message);
export const unauthorized = (message: string) =>
  new HttpError(401, "Unauthorized", message, { "WWW-Authenticate": 'Bearer realm="kfp-artifacts"' });
export const forbidden = (message: string) => new HttpError(403, "Forbidden", message);
export const notFound = (message: string) => new HttpError(404, "NotFound", message);
export const conflict = (message: string) => new HttpError(409, "Conflict", message);
export const preconditionFailed = (message: string) => new HttpError(412, "PreconditionFailed", message);
export const payloadTooLarge = (message: string) => new HttpError(413, "PayloadTooLarge", message);
export const rangeNotSatisfiable = (size: number) =>
  new HttpError(416, "RangeNotSatisfiable", "the requested range is not satisfiable", {
    "Content-Range": `bytes */${size}`,
  });
export const insufficientStorage = (message: string) => new HttpError(507, "InsufficientStorage", message);
export const serviceUnavailable = (message: string) => new HttpError(503, "ServiceUnavailable", message);
