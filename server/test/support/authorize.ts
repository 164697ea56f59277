// What the authorization core asks of an authorizer for one request: who sends these headers, then may
// they `verb` in `namespace`.
import type { AccessRequest, ArtifactVerb, Authorizer, Identity } from "../../src/auth/types.js";

export function requestWith(headers: Headers, method = "GET", rawPath = "/"): AccessRequest {
  return { method, rawPath, query: [], headers };
}

export async function authorize(authorizer: Authorizer, headers: Headers, namespace: string, verb: ArtifactVerb): Promise<Identity> {
  const identity = await authorizer.authenticate(requestWith(headers));
  await authorizer.authorizeIdentity(identity, namespace, verb);
  return identity;
}
