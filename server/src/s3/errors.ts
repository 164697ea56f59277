// S3's errors: an HTTP status, one of S3's error codes and a message, answered as S3's XML document.
// The S3 API's error mapper (app.ts) also translates the store's HttpErrors into these codes, so a
// refusal keeps its meaning (507 stays "not enough space", 412 stays a failed precondition).
import { HttpError } from "../errors.js";

/** An HttpError whose code is one of S3's; the S3 API answers it as S3's XML error document. */
export class S3Error extends HttpError {
  override name = "S3Error";
}

export const accessDenied = (message = "Access Denied.") => new S3Error(403, "AccessDenied", message);
export const invalidRequest = (message: string) => new S3Error(400, "InvalidRequest", message);
export const invalidArgument = (message: string) => new S3Error(400, "InvalidArgument", message);
export const notImplemented = (message: string) => new S3Error(501, "NotImplemented", message);
export const noSuchKey = () => new S3Error(404, "NoSuchKey", "The specified key does not exist.");
export const noSuchUpload = () =>
  new S3Error(404, "NoSuchUpload", "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.");
export const malformedXml = () =>
  new S3Error(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.");

/** The S3 code for a store or route refusal, so clients see the condition they know. */
export function fromHttpError(error: HttpError): S3Error {
  const { status, message } = error;
  switch (error.code) {
    case "ChecksumMismatch":
      return new S3Error(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.");
    case "BadDigest":
      return new S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
    case "PayloadTooLarge":
      return new S3Error(400, "EntityTooLarge", message);
    case "PreconditionFailed":
      return new S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.");
    case "InsufficientStorage":
      return new S3Error(507, "InsufficientStorage", message);
    case "NotFound":
      return noSuchKey();
    case "Conflict":
      return new S3Error(409, "OperationAborted", message);
    case "ServiceUnavailable":
      return new S3Error(503, "ServiceUnavailable", message);
    case "Unauthorized":
      return accessDenied(message);
    case "Forbidden":
      return accessDenied();
    case "ClientClosedRequest":
      return new S3Error(400, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.");
    default:
      return new S3Error(status >= 500 ? 500 : 400, status >= 500 ? "InternalError" : "InvalidArgument", message);
  }
}
