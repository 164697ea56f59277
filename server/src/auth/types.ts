// The contract between the HTTP routes and identity/authorization.
import type { Registry } from "prom-client";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";

/** The SubjectAccessReview verbs on pipelines.kubeflow.org/v1beta1 runs. */
export type ArtifactVerb = "readArtifact" | "writeArtifact" | "deleteArtifact" | "createArtifactCredentials";

export interface Identity {
  readonly user: string;
  readonly groups: readonly string[];
  readonly uid?: string;
  readonly extra?: Readonly<Record<string, readonly string[]>>;
  /** How the identity was established. */
  readonly via: "token" | "trusted-header" | "s3-key" | "none";
}

export interface Authorizer {
  /**
   * Authenticates the request and authorizes `verb` in `namespace`. Resolves with the identity when
   * allowed; rejects with an HttpError: 401 (no or bad identity), 403 (denied), 503 (the API server
   * could not answer — fail closed, never open).
   */
  authorize(headers: Headers, namespace: string, verb: ArtifactVerb): Promise<Identity>;
  /**
   * Only who is calling: rejects with 401 (no or bad identity) or 503, like authorize(). For requests
   * whose namespace must be looked up first, so nothing is looked up for an anonymous caller.
   */
  authenticate(headers: Headers): Promise<Identity>;
  /**
   * Authorizes `verb` in `namespace` for an identity the caller has already authenticated (an S3 key
   * whose signature was verified). Rejects like authorize(): 403 (AccessDenied) or 503.
   */
  authorizeIdentity(identity: Identity, namespace: string, verb: ArtifactVerb): Promise<void>;
  /** For /readyz: true when no API server is needed, or it answered within the ready window. */
  checkReady(): Promise<boolean>;
}

export interface AuthorizerDeps {
  readonly registry: Registry;
  readonly logger: Logger;
}

export type CreateAuthorizer = (config: Config, deps: AuthorizerDeps) => Authorizer;
