// The Hono environment of this server: Node's request/response when served by @hono/node-server
// (absent under app.request() in tests), and the per-request audit record.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ArtifactVerb } from "../auth/types.js";

export interface RequestRecord {
  namespace?: string;
  key?: string;
  verb?: ArtifactVerb;
  user?: string;
  groups?: readonly string[];
  decision?: "allow" | "deny" | "error";
  /** The S3 operation (e.g. "s3:PutObject"): the route label of S3 requests in logs and metrics. */
  operation?: string;
  /** The S3 error code answered, if any. */
  s3Error?: string;
  /** Body bytes, when the transport cannot count them (app.request()). */
  bytesIn?: number;
  bytesOut?: number;
}

export type AppEnv = {
  Bindings: { incoming?: IncomingMessage; outgoing?: ServerResponse };
  Variables: { record: RequestRecord };
};
