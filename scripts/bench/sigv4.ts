// AWS Signature Version 4 for the benchmark's S3 requests, path-style (/{bucket}/{key}), header-signed,
// the same for every S3 server in the run (kfp-artifacts, MinIO, SeaweedFS). The payload is declared by
// its hex SHA-256 in x-amz-content-sha256 (the empty string's for GET), which is what the AWS SDKs (KFP's
// launcher: aws-sdk-go-v2; boto3) send over plain HTTP, and what a server must hash to verify.
import { createHash, createHmac, createSecretKey, type KeyObject } from "node:crypto";

export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SIGNED_HEADERS = "host;x-amz-content-sha256;x-amz-date";

export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
}

/** RFC 3986 unreserved characters stay, everything else is %XX (S3: '/' stays in paths, no double encoding). */
function uriEncode(text: string, keepSlash: boolean): string {
  // encodeURIComponent leaves !'()* as they are, which RFC 3986 reserves.
  const encoded = encodeURIComponent(text).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
  return keepSlash ? encoded.replaceAll("%2F", "/") : encoded;
}

/** YYYYMMDD'T'HHMMSS'Z' */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/**
 * Signs requests for one host at one instant (S3 accepts a signed request for 15 minutes around its date,
 * and the same request may be sent any number of times, so a wrk run can replay one GET).
 */
export class S3Signer {
  readonly #credentials: S3Credentials;
  readonly #host: string;
  readonly #date: string;
  readonly #scope: string;
  /** A KeyObject: HMACs with it cost a fraction of those with the raw bytes (tens of thousands are signed per run). */
  readonly #key: KeyObject;

  constructor(credentials: S3Credentials, host: string, at: Date = new Date()) {
    this.#credentials = credentials;
    this.#host = host;
    this.#date = amzDate(at);
    const day = this.#date.slice(0, 8);
    this.#scope = `${day}/${credentials.region}/s3/aws4_request`;
    const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();
    this.#key = createSecretKey(hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), credentials.region), "s3"), "aws4_request"));
  }

  /** The path of `key` in `bucket`, percent-encoded as sent and as signed. */
  static path(bucket: string, key = ""): string {
    return `/${uriEncode(bucket, false)}${key === "" ? "" : `/${uriEncode(key, true)}`}`;
  }

  /** The Authorization header's value for `method path?query` with this payload hash. */
  authorization(method: string, encodedPath: string, payloadSha256: string, query: Readonly<Record<string, string>> = {}): string {
    const canonicalQuery = Object.entries(query)
      .map(([name, value]) => `${uriEncode(name, false)}=${uriEncode(value, false)}`)
      .sort()
      .join("&");
    const canonical = [
      method,
      encodedPath,
      canonicalQuery,
      `host:${this.#host}\nx-amz-content-sha256:${payloadSha256}\nx-amz-date:${this.#date}\n`,
      SIGNED_HEADERS,
      payloadSha256,
    ].join("\n");
    const stringToSign = ["AWS4-HMAC-SHA256", this.#date, this.#scope, createHash("sha256").update(canonical).digest("hex")].join("\n");
    const signature = createHmac("sha256", this.#key).update(stringToSign).digest("hex");
    return `AWS4-HMAC-SHA256 Credential=${this.#credentials.accessKeyId}/${this.#scope}, SignedHeaders=${SIGNED_HEADERS}, Signature=${signature}`;
  }

  /** Every header a signed request carries (Host is the one the client sends from the URL). */
  headers(method: string, encodedPath: string, payloadSha256: string, query: Readonly<Record<string, string>> = {}): Record<string, string> {
    return {
      Authorization: this.authorization(method, encodedPath, payloadSha256, query),
      "x-amz-date": this.#date,
      "x-amz-content-sha256": payloadSha256,
    };
  }

  get date(): string {
    return this.#date;
  }
}
