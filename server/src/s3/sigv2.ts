// AWS Signature Version 2, which boto3 still uses for presigned URLs in us-east-1 (its default region)
// and some older tools send as headers. HMAC-SHA1 over the method, Content-MD5, Content-Type, the date
// (or, presigned, the expiry), the x-amz-* headers and the resource with its subresources. The payload
// is not signed in V2: a Content-MD5 the client sends is still verified while the body streams.
import { createHmac } from "node:crypto";
import { S3Error, accessDenied } from "./errors.js";
import { MAX_CLOCK_SKEW_MS, sameSignature, signatureMismatch, type WireRequest } from "./sigv4.js";

export interface V2Claim {
  readonly accessKeyId: string;
  readonly signature: string;
  /** Presigned: seconds since the epoch at which the URL expires. */
  readonly expires: number | undefined;
}

/** Subresources that are part of the signed resource (S3's list for V2). */
const SUBRESOURCES = new Set([
  "acl", "delete", "lifecycle", "location", "logging", "notification", "partNumber", "policy", "requestPayment",
  "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning", "versions", "website", "cors",
  "response-cache-control", "response-content-disposition", "response-content-encoding", "response-content-language",
  "response-content-type", "response-expires",
]);

export function readV2Claim(request: WireRequest, now: number): V2Claim | undefined {
  const authorization = request.headers.get("authorization");
  if (authorization !== null && authorization.startsWith("AWS ")) {
    const credentials = authorization.slice(4);
    const colon = credentials.lastIndexOf(":");
    if (colon <= 0) throw new S3Error(400, "InvalidArgument", "The Authorization header must be 'AWS <access key>:<signature>'.");
    const dated = request.headers.get("x-amz-date") ?? request.headers.get("date");
    const time = dated === null ? Number.NaN : Date.parse(dated);
    if (Number.isNaN(time)) throw accessDenied("AWS authentication requires a valid Date or x-amz-date header.");
    if (Math.abs(now - time) > MAX_CLOCK_SKEW_MS) {
      throw new S3Error(403, "RequestTimeTooSkewed", "The difference between the request time and the server's time is too large.");
    }
    return { accessKeyId: credentials.slice(0, colon), signature: credentials.slice(colon + 1), expires: undefined };
  }
  const value = (name: string) => request.query.find(([key]) => key === name)?.[1];
  const accessKeyId = value("AWSAccessKeyId");
  if (accessKeyId === undefined) return undefined;
  const signature = value("Signature");
  const expires = value("Expires");
  if (signature === undefined || expires === undefined || !/^\d+$/.test(expires)) {
    throw new S3Error(400, "AuthorizationQueryParametersError", "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters.");
  }
  if (now / 1000 > Number(expires)) throw accessDenied("Request has expired.");
  return { accessKeyId, signature, expires: Number(expires) };
}

export function verifyV2(request: WireRequest, claim: V2Claim, secretAccessKey: string): void {
  const header = (name: string) => request.headers.get(name) ?? "";
  const amzHeaders: string[] = [];
  request.headers.forEach((value, name) => {
    if (name.startsWith("x-amz-")) amzHeaders.push(`${name}:${value.trim()}`);
  });
  amzHeaders.sort();
  const subresources = request.query
    .filter(([name]) => SUBRESOURCES.has(name))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => (value === "" ? name : `${name}=${value}`));
  const resource = request.rawPath + (subresources.length > 0 ? `?${subresources.join("&")}` : "");
  const date = claim.expires !== undefined ? String(claim.expires) : request.headers.has("x-amz-date") ? "" : header("date");
  const stringToSign = [request.method, header("content-md5"), header("content-type"), date, ...amzHeaders, resource].join("\n");
  const expected = createHmac("sha1", secretAccessKey).update(stringToSign, "utf8").digest("base64");
  if (!sameSignature(expected, claim.signature)) throw signatureMismatch();
}
