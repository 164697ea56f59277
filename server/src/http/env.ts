// The Hono environment of this server: Node's request/response (every app is served by
// @hono/node-server), and the per-request audit record.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AccessRequest, ArtifactVerb } from "../auth/types.js";

export interface RequestRecord {
  namespace?: string;
  key?: string;
  verb?: ArtifactVerb;
  user?: string;
  groups?: readonly string[];
  decision?: "allow" | "deny" | "error";
  /** The route label in logs and metrics when the route pattern is not it: the S3 operation (e.g.
   * "s3:PutObject"), or "unmatched" for a path no route answers. */
  operation?: string;
  /** The S3 error code answered, if any. */
  s3Error?: string;
  /** Body bytes received, as the handlers counted them (Node's parser consumes the socket itself). */
  bytesIn?: number;
}

/**
 * What the authorization core (routes/access.ts) keeps for the rest of a request, on the request's own
 * variables (a WeakMap per request would cost the garbage collector more): the request as the
 * authentication adapters see it, and who is calling once established.
 */
export interface AccessState {
  readonly request: AccessRequest;
  /** The core that established `caller`, whose adapter's type it has. */
  owner?: object;
  caller?: Promise<unknown>;
}

export type AppEnv = {
  Bindings: { incoming?: IncomingMessage; outgoing?: ServerResponse };
  Variables: { record: RequestRecord; access?: AccessState };
};
