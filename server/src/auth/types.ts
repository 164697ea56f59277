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

/**
 * The request as the authorization core and the authentication adapters see it: everything a credential
 * can be carried in or signed over. The path and query are as sent, before any URL normalization (a
 * SigV4 signature covers the bytes the client sent, not what a router made of them).
 */
export interface AccessRequest {
  readonly method: string;
  /** The request target's path as sent. */
  readonly rawPath: string;
  /** The query's parameters in order, '+' and percent-escapes decoded. */
  readonly query: ReadonlyArray<readonly [string, string]>;
  readonly headers: Headers;
}

export interface Authorizer {
  /**
   * Who is calling: rejects with 401 (no or bad identity) or 503 (the API server could not answer —
   * fail closed, never open).
   */
  authenticate(request: AccessRequest): Promise<Identity>;
  /**
   * Authorizes `verb` in `namespace` for an identity an authentication adapter established (a token's
   * user, an S3 key whose signature was verified). Rejects with 403 (AccessDenied) or 503.
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
