// The gate every artifact request passes before any byte is read or written: namespace shape, the
// dedicated server's scope, then authentication and authorization, all recorded for the audit log.
import type { Context } from "hono";
import { AccessDenied } from "../auth/access-denied.js";
import type { Authorizer, ArtifactVerb, Identity } from "../auth/types.js";
import { HttpError, notFound } from "../errors.js";
import type { AppEnv } from "../http/env.js";
import { validateNamespace } from "../storage/names.js";

export interface AccessPolicy {
  readonly authorizer: Authorizer;
  /** A dedicated server answers only for this namespace. */
  readonly scopeNamespace: string | undefined;
}

export async function admit(c: Context<AppEnv>, policy: AccessPolicy, namespace: string, verb: ArtifactVerb): Promise<void> {
  const record = c.get("record");
  record.verb = verb;
  validateNamespace(namespace);
  record.namespace = namespace;
  if (policy.scopeNamespace !== undefined && namespace !== policy.scopeNamespace) {
    // Not ours: answer as if nothing were here, without asking the API server.
    throw notFound(`this artifact server serves only the namespace ${policy.scopeNamespace}`);
  }
  try {
    const identity = await policy.authorizer.authorize(c.req.raw.headers, namespace, verb);
    record.user = identity.user;
    record.groups = identity.groups;
    record.decision = "allow";
  } catch (error) {
    record.decision = error instanceof HttpError && (error.status === 401 || error.status === 403) ? "deny" : "error";
    // A denial knows who was denied: the audit line names them.
    if (error instanceof AccessDenied) {
      record.user = error.identity.user;
      record.groups = error.identity.groups;
    }
    throw error;
  }
}

/**
 * The first step of a two-step gate, for requests whose namespace is found by a lookup (a KFP run): who
 * is calling, before anything is looked up, so that an anonymous caller learns nothing about what
 * exists (401 whatever the target).
 */
export async function authenticate(c: Context<AppEnv>, policy: AccessPolicy): Promise<Identity> {
  const record = c.get("record");
  try {
    const identity = await policy.authorizer.authenticate(c.req.raw.headers);
    record.user = identity.user;
    record.groups = identity.groups;
    return identity;
  } catch (error) {
    record.decision = error instanceof HttpError && error.status === 401 ? "deny" : "error";
    throw error;
  }
}

/** The second step: admit() for an identity authenticate() established. */
export async function admitIdentity(c: Context<AppEnv>, policy: AccessPolicy, identity: Identity, namespace: string, verb: ArtifactVerb): Promise<void> {
  const record = c.get("record");
  record.verb = verb;
  validateNamespace(namespace);
  record.namespace = namespace;
  if (policy.scopeNamespace !== undefined && namespace !== policy.scopeNamespace) {
    throw notFound(`this artifact server serves only the namespace ${policy.scopeNamespace}`);
  }
  try {
    await policy.authorizer.authorizeIdentity(identity, namespace, verb);
    record.decision = "allow";
  } catch (error) {
    record.decision = error instanceof HttpError && error.status === 403 ? "deny" : "error";
    throw error;
  }
}

/** Whether `identity` may `verb` in `namespace`, for choosing among candidates: a denial is false, 503 still throws. */
export async function mayAccess(policy: AccessPolicy, identity: Identity, namespace: string, verb: ArtifactVerb): Promise<boolean> {
  if (policy.scopeNamespace !== undefined && namespace !== policy.scopeNamespace) return false;
  try {
    await policy.authorizer.authorizeIdentity(identity, namespace, verb);
    return true;
  } catch (error) {
    if (error instanceof AccessDenied) return false;
    throw error;
  }
}
