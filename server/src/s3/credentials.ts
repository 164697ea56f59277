// S3 access keys and the Kubernetes identities they act as.
//
// - The static key (S3_ACCESS_KEY/S3_SECRET_KEY) is the system key of KFP's API server, UI and profile
//   controller; under AUTH_MODE=kubernetes it acts as the user S3_ACCESS_KEY_USER.
// - A namespace key `kfp.<namespace>` (or `kfp.<namespace>.<serviceaccount>`) acts as that
//   ServiceAccount — by default the namespace's `default-editor`, which runs Kubeflow's pipelines. Its
//   secret is an HMAC of the key id under a master key, so every replica (and the dedicated servers)
//   verify it with no lookup and no API call, and nothing needs to read Secrets cluster-wide.
// - A dedicated server may instead hold one namespace's pair alone (S3_NAMESPACE_ACCESS_KEY/_SECRET_KEY),
//   as the manager writes it into that namespace: it verifies that key and refuses every other, and the
//   key is valid in that namespace only, whatever RBAC would allow. Nothing in the namespace then lets
//   anyone derive another namespace's key.
// Either way every request is then authorized by SubjectAccessReview like a Bearer request.
import { createHmac } from "node:crypto";
import { LRUCache } from "lru-cache";
import { NAMESPACE_PATTERN, type S3Config } from "../config.js";
import type { Identity } from "../auth/types.js";

export const NAMESPACE_KEY_PREFIX = "kfp.";
export const SERVICE_ACCOUNT_PATTERN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** Versioned, so the derivation can change without ever producing the same secret for two schemes. */
const DERIVATION_CONTEXT = "kfp-artifacts/s3-namespace-key/v1\n";

export interface ResolvedKey {
  readonly secretAccessKey: string;
  readonly identity: Identity;
  /** The static system key: it may also call the IAM subset. */
  readonly isSystemKey: boolean;
  /** The one namespace the key is valid in (a dedicated server's namespace pair); undefined: any. */
  readonly onlyNamespace?: string;
}

/** The secret of a namespace key: 40 URL-safe characters, the length AWS secrets have. */
export function deriveSecretKey(masterKey: string, accessKeyId: string): string {
  return createHmac("sha256", masterKey).update(DERIVATION_CONTEXT + accessKeyId).digest("base64url").slice(0, 40);
}

export function namespaceAccessKeyId(namespace: string, serviceAccount?: string): string {
  return serviceAccount === undefined ? `${NAMESPACE_KEY_PREFIX}${namespace}` : `${NAMESPACE_KEY_PREFIX}${namespace}.${serviceAccount}`;
}

export function serviceAccountIdentity(namespace: string, serviceAccount: string): Identity {
  return Object.freeze({
    user: `system:serviceaccount:${namespace}:${serviceAccount}`,
    groups: Object.freeze(["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"]),
    via: "s3-key" as const,
  });
}

/** Namespace and ServiceAccount named by a namespace key id, or undefined when it is not one. */
export function parseNamespaceKeyId(accessKeyId: string, defaultServiceAccount: string): { namespace: string; serviceAccount: string } | undefined {
  if (!accessKeyId.startsWith(NAMESPACE_KEY_PREFIX)) return undefined;
  const rest = accessKeyId.slice(NAMESPACE_KEY_PREFIX.length);
  // Namespaces are DNS labels (no dots): the first dot ends the namespace.
  const dot = rest.indexOf(".");
  const namespace = dot === -1 ? rest : rest.slice(0, dot);
  const serviceAccount = dot === -1 ? defaultServiceAccount : rest.slice(dot + 1);
  if (!NAMESPACE_PATTERN.test(namespace) || !SERVICE_ACCOUNT_PATTERN.test(serviceAccount)) return undefined;
  return { namespace, serviceAccount };
}

/**
 * Namespace keys resolved under the master key, by key id, so that a request does not pay the
 * derivation's HMAC again (5 µs warm on Node 24, more between requests). Bounded: key ids come from
 * clients, and one that parses as a namespace key is resolved (and kept) before its signature is checked.
 */
const DERIVED_KEYS_KEPT = 4096;

export class S3KeyRing {
  /** The static key's and the one namespace pair's answers, made once. */
  readonly #staticKey: ResolvedKey | undefined;
  readonly #namespaceKey: ResolvedKey | undefined;
  readonly #derived = new LRUCache<string, ResolvedKey>({ max: DERIVED_KEYS_KEPT });

  constructor(
    private readonly config: S3Config,
    authMode: "kubernetes" | "none",
  ) {
    const { staticKey, namespaceKey } = config;
    if (staticKey !== undefined) {
      const user = authMode === "none" ? "local" : (staticKey.user ?? "");
      this.#staticKey = Object.freeze({
        secretAccessKey: staticKey.secretAccessKey,
        identity: Object.freeze({ user, groups: Object.freeze(["system:authenticated"]), via: "s3-key" as const }),
        isSystemKey: true,
      });
    }
    if (namespaceKey !== undefined) {
      this.#namespaceKey = Object.freeze({
        secretAccessKey: namespaceKey.secretAccessKey,
        identity: serviceAccountIdentity(namespaceKey.namespace, namespaceKey.serviceAccount),
        isSystemKey: false,
        onlyNamespace: namespaceKey.namespace,
      });
    }
  }

  /** Whether any key can be verified; without one (and AUTH_MODE=none) the endpoint is open. */
  get verifiesSignatures(): boolean {
    return this.config.staticKey !== undefined || this.config.masterKey !== undefined || this.config.namespaceKey !== undefined;
  }

  resolve(accessKeyId: string): ResolvedKey | undefined {
    const { staticKey, masterKey, namespaceKey } = this.config;
    if (namespaceKey !== undefined) {
      // The configuration admits it only alone: no static key, no master key, so no other key resolves.
      return accessKeyId === namespaceKey.accessKeyId ? this.#namespaceKey : undefined;
    }
    if (staticKey !== undefined && accessKeyId === staticKey.accessKeyId) return this.#staticKey;
    if (masterKey === undefined) return undefined;
    const kept = this.#derived.get(accessKeyId);
    if (kept !== undefined) return kept;
    const named = parseNamespaceKeyId(accessKeyId, this.config.namespaceServiceAccount);
    if (named === undefined) return undefined;
    const resolved: ResolvedKey = Object.freeze({
      secretAccessKey: deriveSecretKey(masterKey, accessKeyId),
      identity: serviceAccountIdentity(named.namespace, named.serviceAccount),
      isSystemKey: false,
    });
    this.#derived.set(accessKeyId, resolved);
    return resolved;
  }

  /** The key pair of a namespace (the IAM CreateAccessKey answer, the s3-credentials command). */
  namespaceKey(namespace: string, serviceAccount?: string): { accessKeyId: string; secretAccessKey: string } | undefined {
    if (this.config.masterKey === undefined) return undefined;
    const accessKeyId = namespaceAccessKeyId(namespace, serviceAccount);
    return { accessKeyId, secretAccessKey: deriveSecretKey(this.config.masterKey, accessKeyId) };
  }
}
