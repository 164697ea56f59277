// Buckets are views of namespaces; nothing is copied. Kubeflow's shared bucket (`mlpipeline`) keeps each
// profile's artifacts under `private-artifacts/<namespace>/` (kubeflow/manifests' layout), and its other
// keys (pipeline specs, the API server's own files) belong to the system namespace. Any other bucket whose
// name is a namespace name is that namespace. Object keys become artifact keys under the same rules as
// the native API's, so a hostile key gets the same refusal on either door.
import { NAMESPACE_PATTERN, type S3Config } from "../config.js";
import { parseKey, type ArtifactKey } from "../storage/names.js";
import { HttpError } from "../errors.js";
import { S3Error } from "./errors.js";

export const PRIVATE_PREFIX = "private-artifacts/";

export interface ObjectTarget {
  readonly namespace: string;
  readonly key: ArtifactKey;
}

export type ListingScope =
  /** Keys of one namespace: `keyPrefix` + artifact key is the object key. */
  | { readonly kind: "namespace"; readonly namespace: string; readonly keyPrefix: string; readonly artifactPrefix: string }
  /** The shared bucket's `private-artifacts/` level: one common prefix per namespace. */
  | { readonly kind: "namespaces"; readonly keyPrefix: string };

export class BucketMap {
  constructor(private readonly config: S3Config) {}

  isKubeflowBucket(bucket: string): boolean {
    return bucket === this.config.kubeflowBucket;
  }

  exists(bucket: string): boolean {
    return this.isKubeflowBucket(bucket) || NAMESPACE_PATTERN.test(bucket);
  }

  /** The namespace a bucket as a whole belongs to (the shared bucket: the system namespace). */
  bucketNamespace(bucket: string): string {
    return this.isKubeflowBucket(bucket) ? this.config.systemNamespace : bucket;
  }

  objectTarget(bucket: string, objectKey: string): ObjectTarget {
    let namespace = bucket;
    let key = objectKey;
    if (this.isKubeflowBucket(bucket)) {
      namespace = this.config.systemNamespace;
      if (objectKey.startsWith(PRIVATE_PREFIX)) {
        const rest = objectKey.slice(PRIVATE_PREFIX.length);
        const slash = rest.indexOf("/");
        namespace = slash === -1 ? rest : rest.slice(0, slash);
        key = slash === -1 ? "" : rest.slice(slash + 1);
        if (!NAMESPACE_PATTERN.test(namespace)) throw invalidKey(`${PRIVATE_PREFIX}<namespace>/ must name a namespace (a DNS-1123 label).`);
      }
    }
    try {
      return { namespace, key: parseKey(key) };
    } catch (error) {
      if (error instanceof HttpError) throw invalidKey(error.message);
      throw error;
    }
  }

  listingScope(bucket: string, prefix: string): ListingScope {
    if (this.isKubeflowBucket(bucket)) {
      if (prefix.startsWith(PRIVATE_PREFIX)) {
        const rest = prefix.slice(PRIVATE_PREFIX.length);
        const slash = rest.indexOf("/");
        if (slash === -1) return { kind: "namespaces", keyPrefix: PRIVATE_PREFIX };
        const namespace = rest.slice(0, slash);
        if (!NAMESPACE_PATTERN.test(namespace)) throw invalidKey(`${PRIVATE_PREFIX}<namespace>/ must name a namespace (a DNS-1123 label).`);
        return { kind: "namespace", namespace, keyPrefix: `${PRIVATE_PREFIX}${namespace}/`, artifactPrefix: rest.slice(slash + 1) };
      }
      return { kind: "namespace", namespace: this.config.systemNamespace, keyPrefix: "", artifactPrefix: prefix };
    }
    return { kind: "namespace", namespace: bucket, keyPrefix: "", artifactPrefix: prefix };
  }
}

function invalidKey(message: string): S3Error {
  return new S3Error(400, "InvalidArgument", `Invalid object key: ${message}`);
}
