// What a request claims about who sends it: a Bearer token, or a user name set by a trusted proxy.
import { unauthorized } from "../errors.js";

export type Credentials =
  | { readonly kind: "token"; readonly token: string }
  | { readonly kind: "trusted-header"; readonly user: string }
  | { readonly kind: "none" };

export interface TrustedHeaderSettings {
  /** Lower-cased header name, or undefined when the trusted header is off (then it is ignored). */
  readonly header: string | undefined;
  /** Required prefix of the header value, stripped from it ("" = none). */
  readonly prefix: string;
}

/**
 * The trusted header wins when it is configured and present (the proxy authenticated this request);
 * otherwise the Bearer token. Malformed credentials are a 401 at once; no credentials are "none".
 */
export function readCredentials(headers: Headers, trusted: TrustedHeaderSettings): Credentials {
  if (trusted.header) {
    const value = headers.get(trusted.header)?.trim();
    if (value) {
      if (!value.startsWith(trusted.prefix)) {
        throw unauthorized(`the ${trusted.header} header does not carry the expected prefix`);
      }
      const user = value.slice(trusted.prefix.length).trim();
      if (!user) throw unauthorized(`the ${trusted.header} header names no user`);
      return { kind: "trusted-header", user };
    }
  }
  const authorization = headers.get("authorization");
  if (authorization === null) return { kind: "none" };
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  if (!match?.[1]) throw unauthorized("the Authorization header must be \"Bearer <token>\"");
  return { kind: "token", token: match[1] };
}
