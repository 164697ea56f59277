// The authorization core every API shares: the gate each artifact request passes before any byte is
// read or written. An API brings its authentication adapter (a bearer token or a trusted proxy's
// header for the native and KFP APIs, a verified signature for S3); the core runs it once per request
// on the whole request, then checks the namespace's shape, the credential's own namespace, the dedicated
// server's scope and the authorizer's decision, and records all of it for the audit log.
import type { Context } from "hono";
import { AccessDenied } from "../auth/access-denied.js";
import type { AccessRequest, ArtifactVerb, Authorizer, Identity } from "../auth/types.js";
import { HttpError } from "../errors.js";
import type { AccessState, AppEnv } from "../http/env.js";
import { requestTarget } from "../http/transport.js";
import { validateNamespace } from "../storage/names.js";

export interface AccessPolicy {
  readonly authorizer: Authorizer;
  /** A dedicated server answers only for this namespace. */
  readonly scopeNamespace: string | undefined;
}

/** Who sent a request, as an authentication adapter established it. */
export interface Caller {
  readonly identity: Identity;
  /** The one namespace the credential is valid in (a dedicated server's S3 key pair); undefined: any. */
  readonly onlyNamespace?: string | undefined;
}

/**
 * An API's way of establishing who sends a request. Rejects with an HttpError: 401 or 403 for missing
 * or bad credentials, 503 when the service that decides could not answer.
 */
export type AuthenticationAdapter<C extends Caller> = (c: Context<AppEnv>, request: AccessRequest) => Promise<C>;

/** A namespace this dedicated server does not serve: answered as if nothing were there. */
export class OutsideScope extends HttpError {
  constructor(readonly scopeNamespace: string) {
    super(404, "NotFound", `this artifact server serves only the namespace ${scopeNamespace}`);
  }
}

/** The native and KFP APIs' adapter: the authorizer reads the request's credentials (headers). */
export function authorizerAuthentication(authorizer: Authorizer): AuthenticationAdapter<Caller> {
  // No async function of its own: one promise hop fewer on every request.
  return (_c, request) => authorizer.authenticate(request).then(toCaller);
}

function toCaller(identity: Identity): Caller {
  return { identity };
}

/** The request as the core and the adapters see it; its query is parsed on first use. */
export function accessRequest(c: Context<AppEnv>): AccessRequest {
  return accessState(c).request;
}

function accessState(c: Context<AppEnv>): AccessState {
  let state = c.get("access");
  if (state === undefined) {
    state = { request: new WireRequest(c.req.method, requestTarget(c), c.req.raw.headers) };
    c.set("access", state);
  }
  return state;
}

/** One class, not an object literal with a getter closure per request: the query is parsed on first use. */
class WireRequest implements AccessRequest {
  readonly rawPath: string;
  #query: Array<[string, string]> | undefined;

  constructor(
    readonly method: string,
    private readonly target: string,
    readonly headers: Headers,
  ) {
    const queryStart = target.indexOf("?");
    this.rawPath = queryStart === -1 ? target : target.slice(0, queryStart);
  }

  get query(): Array<[string, string]> {
    const queryStart = this.target.indexOf("?");
    return (this.#query ??= parseQuery(queryStart === -1 ? "" : this.target.slice(queryStart + 1)));
  }
}

function parseQuery(rawQuery: string): Array<[string, string]> {
  const query: Array<[string, string]> = [];
  for (const pair of rawQuery.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    query.push([formDecode(eq === -1 ? pair : pair.slice(0, eq)), formDecode(eq === -1 ? "" : pair.slice(eq + 1))]);
  }
  return query;
}

/** Query components decode '+' as a space, as S3 and MinIO do. */
function formDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    throw new HttpError(400, "InvalidArgument", "The query string is not correctly percent-encoded.");
  }
}

export class AccessCore<C extends Caller = Caller> {
  constructor(
    readonly policy: AccessPolicy,
    private readonly adapter: AuthenticationAdapter<C>,
  ) {}

  /**
   * Who is calling, established once per request, before anything is looked up: an anonymous caller
   * gets the same 401 whatever exists.
   */
  authenticate(c: Context<AppEnv>): Promise<C> {
    const state = accessState(c);
    // Set only by this core, from its own adapter, so it is a C.
    if (state.owner === this && state.caller !== undefined) return state.caller as Promise<C>;
    const caller = this.#establish(c, state.request);
    state.owner = this;
    state.caller = caller;
    return caller;
  }

  #authenticated(c: Context<AppEnv>): boolean {
    return c.get("access")?.owner === this;
  }

  async #establish(c: Context<AppEnv>, request: AccessRequest): Promise<C> {
    const record = c.get("record");
    try {
      const caller = await this.adapter(c, request);
      record.user = caller.identity.user;
      record.groups = caller.identity.groups;
      return caller;
    } catch (error) {
      record.decision = error instanceof HttpError && (error.status === 401 || error.status === 403) ? "deny" : "error";
      throw error;
    }
  }

  /** Admits the request's caller for `verb` in `namespace`, or rejects: 401, 403, 404 (outside the scope), 503. */
  async admit(c: Context<AppEnv>, namespace: string, verb: ArtifactVerb): Promise<C> {
    const record = c.get("record");
    record.verb = verb;
    validateNamespace(namespace);
    record.namespace = namespace;
    // Not ours: answered as if nothing were here, without asking the API server who is calling (unless
    // the caller is known already: then its credential's own namespace is judged first).
    const authenticated = this.#authenticated(c);
    if (!authenticated) this.#checkScope(namespace);
    const caller = await this.authenticate(c);
    // Before RBAC: a credential for one namespace is refused elsewhere even where its identity is
    // bound, and even with AUTH_MODE=none.
    if (caller.onlyNamespace !== undefined && namespace !== caller.onlyNamespace) {
      record.decision = "deny";
      throw new AccessDenied(caller.identity, verb, namespace);
    }
    if (authenticated) this.#checkScope(namespace);
    try {
      // No identity to ask about: AUTH_MODE=none, or an S3 endpoint without keys (the server warned at start).
      if (caller.identity.via !== "none") await this.policy.authorizer.authorizeIdentity(caller.identity, namespace, verb);
      record.decision = "allow";
    } catch (error) {
      record.decision = error instanceof HttpError && error.status === 403 ? "deny" : "error";
      throw error;
    }
    return caller;
  }

  #checkScope(namespace: string): void {
    if (this.policy.scopeNamespace !== undefined && namespace !== this.policy.scopeNamespace) throw new OutsideScope(this.policy.scopeNamespace);
  }

  /** Whether the caller may `verb` in `namespace`, for choosing among candidates: a denial is false, 503 still throws. */
  async mayAccess(caller: C, namespace: string, verb: ArtifactVerb): Promise<boolean> {
    if (caller.onlyNamespace !== undefined && namespace !== caller.onlyNamespace) return false;
    if (this.policy.scopeNamespace !== undefined && namespace !== this.policy.scopeNamespace) return false;
    if (caller.identity.via === "none") return true;
    try {
      await this.policy.authorizer.authorizeIdentity(caller.identity, namespace, verb);
      return true;
    } catch (error) {
      if (error instanceof AccessDenied) return false;
      throw error;
    }
  }
}
