// The gate every artifact request passes before any byte is read or written: namespace shape, the
// dedicated server's scope, then authentication and authorization, all recorded for the audit log.
import type { Context } from "hono";
import { AccessDenied } from "../auth/access-denied.js";
import type { Authorizer, ArtifactVerb } from "../auth/types.js";
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
