// Validation of the names that become paths on the volume.
// Everything a client sends is checked here before any filesystem call is made.
import { NAMESPACE_PATTERN } from "../config.js";
import { badRequest } from "../errors.js";

/** Filesystems refuse longer names (NAME_MAX). */
export const MAX_SEGMENT_BYTES = 255;
/** Keeps every path well under PATH_MAX together with the root and namespace. */
export const MAX_KEY_BYTES = 1024;
export const MAX_KEY_DEPTH = 64;

// C0 and C1 control characters, DEL, and the Unicode line/paragraph separators.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const FORBIDDEN_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\\]/u;

/** A DNS-1123 label, the shape of a Kubernetes namespace. */
export function validateNamespace(namespace: string): string {
  if (!NAMESPACE_PATTERN.test(namespace)) {
    throw badRequest("namespace must be a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters)");
  }
  return namespace;
}

/** The validated, decoded form of an artifact key: its `/`-separated segments. */
export interface ArtifactKey {
  readonly key: string;
  readonly segments: readonly string[];
}

/**
 * Checks a decoded key. Segments are never empty, "." or "..", contain no NUL, control character or
 * backslash, and stay within byte limits; the key therefore cannot leave its namespace directory.
 */
export function parseKey(key: string, what = "key"): ArtifactKey {
  if (key.length === 0) throw badRequest(`${what} must not be empty`);
  if (Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES) throw badRequest(`${what} is longer than ${MAX_KEY_BYTES} bytes`);
  if (!key.isWellFormed()) throw badRequest(`${what} is not valid UTF-8`);
  const segments = key.split("/");
  if (segments.length > MAX_KEY_DEPTH) throw badRequest(`${what} has more than ${MAX_KEY_DEPTH} segments`);
  for (const segment of segments) {
    if (segment === "") throw badRequest(`${what} must not have empty segments (leading, trailing or doubled '/')`);
    if (segment === "." || segment === "..") throw badRequest(`${what} must not contain '.' or '..' segments`);
    if (FORBIDDEN_CHARACTERS.test(segment)) throw badRequest(`${what} must not contain control characters or backslashes`);
    if (Buffer.byteLength(segment, "utf8") > MAX_SEGMENT_BYTES) {
      throw badRequest(`${what} has a segment longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
  }
  return { key, segments };
}

/** Decodes a percent-encoded path tail; malformed escapes are a client error, not a crash. */
export function decodePathTail(encoded: string, what = "key"): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw badRequest(`${what} is not correctly percent-encoded`);
  }
}

/** A single segment (run id, node id, artifact name, pipeline name) under the same rules as a key segment. */
export function parseSegment(value: string, what: string): string {
  const { segments } = parseKey(value, what);
  if (segments.length !== 1) throw badRequest(`${what} must not contain '/'`);
  return value;
}

/** kfp-artifacts://<namespace>/<key>: the artifact's URI, derived from its names with no lookup. */
export function artifactUri(namespace: string, key: string): string {
  return `kfp-artifacts://${namespace}/${key}`;
}
