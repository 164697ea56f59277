// Chooses the authorizer for AUTH_MODE.
import type { Config } from "../config.js";
import { createKubernetesAuthorizer } from "./kubernetes.js";
import type { Authorizer, AuthorizerDeps } from "./types.js";

export { AccessDenied } from "./access-denied.js";
export { createKubernetesAuthorizer, type KubernetesAuthorizerOptions } from "./kubernetes.js";
export type { AccessRequest, ArtifactVerb, Authorizer, AuthorizerDeps, Identity } from "./types.js";

const LOCAL_IDENTITY = Object.freeze({ user: "local", groups: Object.freeze([]), via: "none" as const });

/** AUTH_MODE=none: every request is allowed (local use only; the server warns loudly at start). */
export function createAllowAllAuthorizer(): Authorizer {
  return {
    authenticate: () => Promise.resolve(LOCAL_IDENTITY),
    authorizeIdentity: () => Promise.resolve(),
    checkReady: () => Promise.resolve(true),
  };
}

/** Throws at start-up when AUTH_MODE=kubernetes has no usable kubeconfig (KUBECONFIG or in-cluster). */
export function createAuthorizer(config: Config, deps: AuthorizerDeps): Authorizer {
  if (config.authMode === "none") return createAllowAllAuthorizer();
  return createKubernetesAuthorizer(config, deps);
}
