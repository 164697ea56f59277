// node:crypto behind the hash interface of the AWS SDK's signer, for tests that sign requests by hand.
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import type { SourceData } from "@smithy/types";

const bytes = (data: SourceData): Uint8Array | string =>
  typeof data === "string" || data instanceof Uint8Array ? data : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);

export class Sha256 {
  readonly #hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.#hash = secret === undefined ? createHash("sha256") : createHmac("sha256", bytes(secret));
  }
  update(data: SourceData): void {
    this.#hash.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }
}
