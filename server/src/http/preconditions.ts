// Conditional writes on the native API (RFC 9110 §13.1.1, §13.1.4): If-Match and If-Unmodified-Since
// on PUT and DELETE. They are evaluated by the store under its commit lock, against the version being
// replaced, so two writers that both saw the same version cannot both succeed.
import { preconditionFailed } from "../errors.js";
import type { VersionPrecondition } from "../storage/store.js";

/**
 * The precondition a request's If-Match / If-Unmodified-Since headers state, or undefined when it states
 * none. A file's entity tag is its quoted SHA-256 (the ETag a GET answers); a directory artifact has
 * none, so only `If-Match: *` matches it. An invalid date is ignored, as RFC 9110 requires.
 */
export function writePrecondition(header: (name: string) => string | undefined, etagOf: (sha256: string) => string): VersionPrecondition | undefined {
  const ifMatch = header("if-match");
  const unmodifiedSince = httpDateSeconds(header("if-unmodified-since"));
  if (ifMatch === undefined && unmodifiedSince === undefined) return undefined;
  return (current) => {
    if (ifMatch !== undefined) {
      // Without a current version, even '*' is false: the client expected something to replace.
      if (current === undefined || !matchesStrongly(ifMatch, "directory" in current ? undefined : etagOf(current.sha256))) {
        throw preconditionFailed("the artifact is not the version If-Match names");
      }
      return; // If-Unmodified-Since is ignored when If-Match is present
    }
    // Nothing to compare with: the condition does not apply (creation goes ahead).
    if (current === undefined || unmodifiedSince === undefined) return;
    if (Math.floor(current.modified.getTime() / 1000) > unmodifiedSince) {
      throw preconditionFailed("the artifact was modified after the If-Unmodified-Since date");
    }
  };
}

/** If-Match uses the strong comparison: a weak tag never matches, '*' matches any current version. */
function matchesStrongly(header: string, etag: string | undefined): boolean {
  return header.split(",").some((candidate) => {
    const value = candidate.trim();
    return value === "*" || (etag !== undefined && value === etag);
  });
}

/** An HTTP-date in whole seconds (the resolution of Last-Modified), undefined when absent or invalid. */
export function httpDateSeconds(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const time = Date.parse(header);
  return Number.isNaN(time) ? undefined : Math.floor(time / 1000);
}
