// S3's additional checksums (x-amz-checksum-<algorithm>): the AWS SDK's own implementations, so what
// we compute is exactly what the client computed. Values travel base64-encoded.
import { createHash, type Hash } from "node:crypto";
import { Crc32, Crc32c, Crc64Nvme } from "@aws-sdk/checksums/crc";
import { S3Error, invalidRequest } from "./errors.js";

export const CHECKSUM_ALGORITHMS = ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export interface RunningChecksum {
  update(data: Uint8Array): void;
  /** Base64, as in the x-amz-checksum-* header or trailer. */
  digest(): Promise<string>;
}

class NodeHashChecksum implements RunningChecksum {
  readonly #hash: Hash;
  constructor(algorithm: "sha1" | "sha256") {
    this.#hash = createHash(algorithm);
  }
  update(data: Uint8Array): void {
    this.#hash.update(data);
  }
  digest(): Promise<string> {
    return Promise.resolve(this.#hash.digest("base64"));
  }
}

class SdkChecksum implements RunningChecksum {
  constructor(private readonly checksum: { update(data: Uint8Array): void; digest(): Promise<Uint8Array> }) {}
  update(data: Uint8Array): void {
    this.checksum.update(data);
  }
  async digest(): Promise<string> {
    return Buffer.from(await this.checksum.digest()).toString("base64");
  }
}

export function isChecksumAlgorithm(name: string): name is ChecksumAlgorithm {
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(name);
}

export function startChecksum(algorithm: ChecksumAlgorithm): RunningChecksum {
  switch (algorithm) {
    case "crc32":
      return new SdkChecksum(new Crc32());
    case "crc32c":
      return new SdkChecksum(new Crc32c());
    case "crc64nvme":
      return new SdkChecksum(new Crc64Nvme());
    case "sha1":
    case "sha256":
      return new NodeHashChecksum(algorithm);
  }
}

/** The algorithm of a header or trailer name such as `x-amz-checksum-crc32`. */
export function checksumAlgorithmOf(name: string): ChecksumAlgorithm {
  const algorithm = name.toLowerCase().replace(/^x-amz-checksum-/, "");
  if (!isChecksumAlgorithm(algorithm)) throw invalidRequest(`The checksum algorithm of ${name} is not supported.`);
  return algorithm;
}

export const badChecksum = (algorithm: ChecksumAlgorithm) =>
  new S3Error(400, "BadDigest", `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`);
