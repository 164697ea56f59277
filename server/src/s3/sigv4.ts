// AWS Signature Version 4, checked the way a strict S3 server checks it: parse the caller's claim (the
// Authorization header, or the presigned query), rebuild the canonical request from what arrived on the
// wire, sign it with the caller's own date, region, service and signed headers using the AWS SDK's
// signer (@smithy/signature-v4), and compare in constant time. The same signer then checks every chunk
// of a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body (chunked.ts).
import type { AccessRequest } from "../auth/types.js";
import { createHash, createHmac, createSecretKey, hash, timingSafeEqual, type Hash, type Hmac, type KeyObject } from "node:crypto";
import { SignatureV4, getCanonicalHeaders } from "@smithy/signature-v4";
import { LRUCache } from "lru-cache";
import type { HttpRequest, QueryParameterBag, SourceData } from "@smithy/types";
import { S3Error, accessDenied, invalidArgument } from "./errors.js";

export const ALGORITHM = "AWS4-HMAC-SHA256";
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/** How far a request's date may be from ours (S3's own limit). */
export const MAX_CLOCK_SKEW_MS = 15 * 60_000;
/** The longest a presigned URL may live (S3's limit). */
const MAX_PRESIGNED_SECONDS = 7 * 24 * 3600;

/** Payload modes of x-amz-content-sha256. */
export type PayloadMode =
  | { readonly kind: "sha256"; readonly sha256: string }
  | { readonly kind: "unsigned" }
  | { readonly kind: "streaming-signed"; readonly trailer: boolean }
  | { readonly kind: "streaming-unsigned-trailer" }
  /** No x-amz-content-sha256 (IAM calls, some clients): the signature covers the body's SHA-256. */
  | { readonly kind: "body-hash" };

export interface SignatureClaim {
  readonly presigned: boolean;
  readonly accessKeyId: string;
  /** YYYYMMDD'T'HHMMSS'Z' */
  readonly longDate: string;
  readonly region: string;
  readonly service: string;
  readonly signedHeaders: readonly string[];
  readonly signature: string;
  readonly payload: PayloadMode;
  /** Presigned URLs: seconds from `longDate` until they expire. */
  readonly expiresSeconds: number | undefined;
}

/** What a signature covers: the request as the authorization core sees it (path and query as sent). */
export type WireRequest = AccessRequest;

/**
 * node:crypto behind the hash interface the smithy signer's constructor requires. Nothing here asks it
 * for a hash: the canonical request is hashed in one call (requestStringToSign) and signatures are
 * HMACs with the derived key below.
 */
class NodeSha256 {
  readonly #hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.#hash = secret === undefined ? createHash("sha256") : createHmac("sha256", toBytes(secret));
  }
  update(data: SourceData): void {
    this.#hash.update(toBytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }
}

function toBytes(data: SourceData): Uint8Array | string {
  if (typeof data === "string" || data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

/**
 * The signer's protected canonicalisation, reached by subclassing (it is the SDK's own code path). It
 * only canonicalises: the signature itself is the HMAC of its string to sign with the derived key
 * below, so one instance per region and service serves every key.
 */
class Verifier extends SignatureV4 {
  constructor(region: string, service: string) {
    // S3 does not double-encode paths (uriEscapePath: false); we pass the canonical path ourselves.
    super({ credentials: { accessKeyId: "", secretAccessKey: "" }, region, service, sha256: NodeSha256, uriEscapePath: false });
  }

  requestStringToSign(request: HttpRequest, signedHeaders: ReadonlySet<string>, payloadHash: string, claim: SignatureClaim, scope: string): string {
    const canonicalHeaders = getCanonicalHeaders(request, undefined, new Set(signedHeaders));
    const canonical = this.createCanonicalRequest(request, canonicalHeaders, payloadHash);
    // The string to sign is four lines: the algorithm, the date, the scope and the canonical request's
    // SHA-256 in hex. The signer's own createStringToSign makes the same string through its async hash
    // interface (a Uint8Array copy, an await, a hex loop): 28-36 µs of a 4 KiB GET's event-loop time
    // here, against one call of node:crypto's one-shot hash.
    return `${ALGORITHM}\n${claim.longDate}\n${scope}\n${hash("sha256", canonical, "hex")}`;
  }
}

/** Canonicalisers by region and service (both from the client's credential scope, hence bounded). */
const verifiers = new LRUCache<string, Verifier>({ max: 16 });

function verifierFor(region: string, service: string): Verifier {
  const id = `${region}\n${service}`;
  let verifier = verifiers.get(id);
  if (verifier === undefined) verifiers.set(id, (verifier = new Verifier(region, service)));
  return verifier;
}

/**
 * Signature V4's signing key (HMAC-SHA256 of the date, region, service and "aws4_request", keyed from
 * "AWS4" + the secret), derived once per key and day. The SDK's signer derives it through a cache
 * whose lookup costs an HMAC of the secret and four awaits on every request: 24 µs of a 4 KiB S3
 * GET's 269 µs on this machine, against about 3 µs for the one HMAC with a cached KeyObject.
 */
const signingKeys = new LRUCache<string, KeyObject>({ max: 1024 });

function signingKey(secretAccessKey: string, shortDate: string, region: string, service: string): KeyObject {
  const id = `${shortDate}\n${region}\n${service}\n${secretAccessKey}`;
  let key = signingKeys.get(id);
  if (key === undefined) {
    let derived = createHmac("sha256", `AWS4${secretAccessKey}`).update(shortDate).digest();
    for (const part of [region, service, "aws4_request"]) derived = createHmac("sha256", derived).update(part).digest();
    signingKeys.set(id, (key = createSecretKey(derived)));
  }
  return key;
}

/** Verifies a request's signature and, for signed streaming bodies, each chunk's. */
export class RequestSigner {
  readonly #verifier: Verifier;
  readonly #scope: string;
  readonly #key: KeyObject;

  constructor(
    readonly claim: SignatureClaim,
    secretAccessKey: string,
  ) {
    const shortDate = claim.longDate.slice(0, 8);
    this.#verifier = verifierFor(claim.region, claim.service);
    this.#scope = `${shortDate}/${claim.region}/${claim.service}/aws4_request`;
    this.#key = signingKey(secretAccessKey, shortDate, claim.region, claim.service);
  }

  /** Throws SignatureDoesNotMatch unless the request is signed by this key; `bodySha256` for body-hash mode. */
  verifyRequest(request: WireRequest, bodySha256?: string): void {
    const { claim } = this;
    const signed = new Set(claim.signedHeaders);
    const headers: Record<string, string> = {};
    for (const name of signed) {
      const value = request.headers.get(name);
      if (value === null) throw signatureMismatch();
      headers[name] = value;
    }
    const query: QueryParameterBag = {};
    for (const [name, value] of request.query) {
      if (claim.presigned && name === "X-Amz-Signature") continue;
      const existing = query[name];
      if (existing === undefined || existing === null) query[name] = value;
      else query[name] = Array.isArray(existing) ? [...existing, value] : [existing, value];
    }
    const httpRequest: HttpRequest = {
      method: request.method,
      protocol: "http:",
      hostname: request.headers.get("host") ?? "",
      path: canonicalPath(request.rawPath),
      query,
      headers,
    };
    const payloadHash = payloadHashOf(claim, bodySha256);
    const expected = this.#sign(this.#verifier.requestStringToSign(httpRequest, signed, payloadHash, claim, this.#scope));
    if (!sameSignature(expected, claim.signature)) throw signatureMismatch();
  }

  /** The signature a chunk of a signed streaming body must carry, given the previous one. */
  chunkSignature(previous: string, chunkSha256: string): Promise<string> {
    const toSign = ["AWS4-HMAC-SHA256-PAYLOAD", this.claim.longDate, this.#scope, previous, EMPTY_SHA256, chunkSha256].join("\n");
    return Promise.resolve(this.#sign(toSign));
  }

  /** The signature of a signed streaming body's trailer (its header lines, each ending in "\n"). */
  trailerSignature(previous: string, trailerText: string): Promise<string> {
    const trailerHash = createHash("sha256").update(trailerText).digest("hex");
    return Promise.resolve(this.#sign(["AWS4-HMAC-SHA256-TRAILER", this.claim.longDate, this.#scope, previous, trailerHash].join("\n")));
  }

  #sign(stringToSign: string): string {
    return createHmac("sha256", this.#key).update(stringToSign).digest("hex");
  }
}

function payloadHashOf(claim: SignatureClaim, bodySha256: string | undefined): string {
  switch (claim.payload.kind) {
    case "sha256":
      return claim.payload.sha256;
    case "unsigned":
      return "UNSIGNED-PAYLOAD";
    case "streaming-signed":
      return claim.payload.trailer ? "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" : "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
    case "streaming-unsigned-trailer":
      return "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
    case "body-hash":
      return bodySha256 ?? EMPTY_SHA256;
  }
}

export function sameSignature(a: string, b: string): boolean {
  const left = Buffer.from(a, "utf8");
  const right = Buffer.from(b, "utf8");
  return left.length === right.length && timingSafeEqual(left, right);
}

export const signatureMismatch = () =>
  new S3Error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.");

/**
 * S3's canonical URI: each segment of the decoded path URI-encoded (RFC 3986 unreserved characters
 * kept). Rebuilt from the decoded path, as MinIO does, so a client that sends a character raw but
 * signs it encoded (or the reverse) still verifies.
 */
export function canonicalPath(rawPath: string): string {
  return rawPath
    .split("/")
    .map((segment) => uriEncode(safeDecode(segment)))
    .join("/");
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const LONG_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

function parseLongDate(text: string): Date | undefined {
  const match = LONG_DATE.exec(text);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s] = match.map(Number) as [number, number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function parseCredential(credential: string): { accessKeyId: string; shortDate: string; region: string; service: string } {
  // <key id>/<YYYYMMDD>/<region>/<service>/aws4_request; the key id itself has no '/'.
  const parts = credential.split("/");
  if (parts.length !== 5 || parts[4] !== "aws4_request" || !/^\d{8}$/.test(parts[1] ?? "")) {
    throw new S3Error(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".");
  }
  const [accessKeyId = "", shortDate = "", region = "", service = ""] = parts;
  return { accessKeyId, shortDate, region, service };
}

function payloadModeOf(header: string | null, presigned: boolean): PayloadMode {
  if (header === null) return presigned ? { kind: "unsigned" } : { kind: "body-hash" };
  switch (header) {
    case "UNSIGNED-PAYLOAD":
      return { kind: "unsigned" };
    case "STREAMING-AWS4-HMAC-SHA256-PAYLOAD":
      return { kind: "streaming-signed", trailer: false };
    case "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER":
      return { kind: "streaming-signed", trailer: true };
    case "STREAMING-UNSIGNED-PAYLOAD-TRAILER":
      return { kind: "streaming-unsigned-trailer" };
    default:
      if (/^[0-9a-f]{64}$/.test(header)) return { kind: "sha256", sha256: header };
      throw new S3Error(400, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-* or the hex SHA-256 of the payload.");
  }
}

/**
 * The signature a request claims, or undefined for an anonymous request. Refuses what S3 refuses
 * before any key is looked up: a malformed header, another algorithm, a skewed clock, an expired URL.
 */
export function readSignatureClaim(request: WireRequest, now: number): SignatureClaim | undefined {
  const authorization = request.headers.get("authorization");
  const queryValue = (name: string) => request.query.find(([key]) => key === name)?.[1];
  const queryAlgorithm = queryValue("X-Amz-Algorithm");
  // Nothing of Signature V4: anonymous, or Signature V2 (sigv2.ts).
  if ((authorization === null || authorization.startsWith("AWS ")) && queryAlgorithm === undefined) return undefined;
  if (authorization !== null && queryAlgorithm !== undefined) {
    throw invalidArgument("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.");
  }

  let claim: Omit<SignatureClaim, "payload" | "longDate"> & { longDate: string; shortDate: string };
  if (authorization !== null) {
    if (!authorization.startsWith(`${ALGORITHM} `)) throw invalidArgument(`Unsupported Authorization type; use ${ALGORITHM}.`);
    const fields = new Map<string, string>();
    for (const part of authorization.slice(ALGORITHM.length + 1).split(",")) {
      const eq = part.indexOf("=");
      if (eq !== -1) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
    }
    const credential = fields.get("Credential");
    const signedHeaders = fields.get("SignedHeaders");
    const signature = fields.get("Signature");
    if (credential === undefined || signedHeaders === undefined || signature === undefined) {
      throw new S3Error(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; it must name Credential, SignedHeaders and Signature.");
    }
    const longDate = request.headers.get("x-amz-date") ?? toLongDate(request.headers.get("date"));
    claim = {
      presigned: false,
      ...parseCredential(credential),
      longDate: longDate ?? "",
      signedHeaders: signedHeaders.split(";").map((name) => name.trim().toLowerCase()),
      signature,
      expiresSeconds: undefined,
    };
  } else {
    if (queryAlgorithm !== ALGORITHM) throw invalidArgument(`X-Amz-Algorithm only supports "${ALGORITHM}".`);
    const credential = queryValue("X-Amz-Credential");
    const signedHeaders = queryValue("X-Amz-SignedHeaders");
    const signature = queryValue("X-Amz-Signature");
    const expires = queryValue("X-Amz-Expires");
    if (credential === undefined || signedHeaders === undefined || signature === undefined || expires === undefined) {
      throw new S3Error(400, "AuthorizationQueryParametersError", "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.");
    }
    if (!/^\d+$/.test(expires) || Number(expires) > MAX_PRESIGNED_SECONDS) {
      throw new S3Error(400, "AuthorizationQueryParametersError", "X-Amz-Expires must be a number of seconds from 0 to 604800 (seven days).");
    }
    claim = {
      presigned: true,
      ...parseCredential(credential),
      longDate: queryValue("X-Amz-Date") ?? "",
      signedHeaders: signedHeaders.split(";").map((name) => name.trim().toLowerCase()),
      signature,
      expiresSeconds: Number(expires),
    };
  }

  const date = parseLongDate(claim.longDate);
  if (date === undefined) throw accessDenied("AWS authentication requires a valid Date or x-amz-date header.");
  // The scope's date must be the request's own (S3 answers a mismatch as a bad signature).
  if (claim.longDate.slice(0, 8) !== claim.shortDate) throw signatureMismatch();
  if (!claim.signedHeaders.includes("host")) {
    throw new S3Error(400, "AuthorizationHeaderMalformed", "The host header must be signed.");
  }
  if (claim.presigned) {
    if (date.getTime() - now > MAX_CLOCK_SKEW_MS) throw accessDenied("Request is not valid yet.");
    if (now > date.getTime() + (claim.expiresSeconds ?? 0) * 1000) throw accessDenied("Request has expired.");
  } else if (Math.abs(now - date.getTime()) > MAX_CLOCK_SKEW_MS) {
    throw new S3Error(403, "RequestTimeTooSkewed", "The difference between the request time and the server's time is too large.");
  }
  const { shortDate: _shortDate, ...rest } = claim;
  return { ...rest, payload: payloadModeOf(request.headers.get("x-amz-content-sha256"), claim.presigned) };
}

/** An RFC 1123 Date header as SigV4's long date (clients that sign Date instead of x-amz-date). */
function toLongDate(header: string | null): string | undefined {
  if (header === null) return undefined;
  const date = new Date(header);
  if (Number.isNaN(date.getTime())) return undefined;
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}
