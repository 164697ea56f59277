// Chooses the authorizer for AUTH_MODE.
import type { Config } from "../config.js";
import type { Authorizer, AuthorizerDeps } from "./types.js";

const LOCAL_IDENTITY = Object.freeze({ user: "local", groups: Object.freeze([]), via: "none" as const });

/** AUTH_MODE=none: every request is allowed (local use only; the server warns loudly at start). */
export function createAllowAllAuthorizer(): Authorizer {
  return {
    authorize: () => Promise.resolve(LOCAL_IDENTITY),
    checkReady: () => Promise.resolve(true),
  };
}

export function createAuthorizer(config: Config, _deps: AuthorizerDeps): Authorizer {
  if (config.authMode === "none") return createAllowAllAuthorizer();
  throw new Error("AUTH_MODE=kubernetes is being implemented in server/src/auth (issue 3)");
}
