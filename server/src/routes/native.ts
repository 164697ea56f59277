// The native artifact API: /v1/namespaces/{ns}/artifacts/{key}.
import type { Context, Hono } from "hono";
import { badRequest, conflict } from "../errors.js";
import type { AppEnv } from "../http/env.js";
import { writePrecondition } from "../http/preconditions.js";
import { attachmentDisposition, ifRangeAllows, notModified, parseRange } from "../http/ranges.js";
import { declaredLength } from "../http/declared-length.js";
import { rawPath, requestBody, sendArtifactBody, sendStream } from "../http/transport.js";
import { artifactUri, decodePathTail, parseKey, type ArtifactKey } from "../storage/names.js";
import { packArchive } from "../storage/archive.js";
import type { ArtifactStore } from "../storage/store.js";
import type { AccessCore } from "./access.js";
import { defineApi, nativeErrorBody, type FaultHandling } from "./api.js";

/** Where the native API is mounted; the routes below are relative to it. */
export const NATIVE_API_PATH = "/v1";
const ARTIFACT_ROUTE = "/namespaces/:namespace/artifacts/*";
const LIST_ROUTE = "/namespaces/:namespace/artifacts";
const ARTIFACT_PATH = /^\/v1\/namespaces\/([^/]*)\/artifacts\/(.+)$/;
const MAX_LIST_LIMIT = 1000;

export interface NativeApiDeps {
  readonly access: AccessCore;
  readonly store: ArtifactStore;
  readonly faults: FaultHandling;
}

export const etagOf = (sha256: string) => `"${sha256}"`;

/** Namespace and key from the raw request target (the router sees a normalized URL). */
function artifactTarget(c: Context<AppEnv>): { namespace: string; key: ArtifactKey } {
  const match = ARTIFACT_PATH.exec(rawPath(c));
  if (!match) throw badRequest("the artifact path is malformed");
  const [, namespace = "", encodedKey = ""] = match;
  const key = parseKey(decodePathTail(encodedKey));
  c.get("record").key = key.key;
  return { namespace: decodePathTail(namespace, "namespace"), key };
}

function expectedChecksum(c: Context<AppEnv>): string | undefined {
  const header = c.req.header("x-checksum-sha256");
  if (header === undefined) return undefined;
  const value = header.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(value)) throw badRequest("X-Checksum-SHA256 must be 64 hexadecimal digits");
  return value;
}

function createOnly(c: Context<AppEnv>): boolean {
  const header = c.req.header("if-none-match");
  if (header === undefined) return false;
  if (header.trim() !== "*") throw badRequest("on PUT, If-None-Match supports only '*' (create-only)");
  return true;
}

/** `?archive=tar.gz` selects directory-artifact handling; any other value is a client error. */
function archiveParam(c: Context<AppEnv>): boolean {
  const value = c.req.query("archive");
  if (value === undefined) return false;
  if (value !== "tar.gz") throw badRequest("archive must be tar.gz");
  return true;
}

function wholeNumberParam(c: Context<AppEnv>, name: string, min: number, max: number): number | undefined {
  const value = c.req.query(name);
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw badRequest(`${name} must be a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

export function createNativeApi(deps: NativeApiDeps): Hono<AppEnv> {
  return defineApi({ basePath: NATIVE_API_PATH, errorBody: nativeErrorBody, faults: deps.faults }, (app) => registerRoutes(app, deps));
}

function registerRoutes(app: Hono<AppEnv>, deps: NativeApiDeps): void {
  const { store, access } = deps;

  // Before the wildcard routes: "/artifacts/*" would also match "/artifacts".
  app.get(LIST_ROUTE, async (c) => {
    const namespace = decodePathTail(c.req.param("namespace"), "namespace");
    const prefix = c.req.query("prefix") ?? "";
    if (prefix !== "" && !prefix.endsWith("/")) parseKey(prefix, "prefix");
    else if (prefix !== "") parseKey(prefix.slice(0, -1), "prefix");
    const delimiter = c.req.query("delimiter");
    if (delimiter !== undefined && delimiter !== "/" && delimiter !== "") throw badRequest("delimiter must be '/'");
    const limit = wholeNumberParam(c, "limit", 1, MAX_LIST_LIMIT) ?? MAX_LIST_LIMIT;
    const after = decodeCursor(c.req.query("cursor"));
    await access.admit(c, namespace, "readArtifact");
    const page = await store.list({ namespace, prefix, delimiter: delimiter === "/" ? "/" : undefined, limit, after });
    return c.json({
      items: page.items,
      prefixes: page.prefixes,
      nextCursor: page.lastReturned === undefined ? null : encodeCursor(page.lastReturned),
    });
  });

  app.put(ARTIFACT_ROUTE, async (c) => {
    const { namespace, key } = artifactTarget(c);
    const archive = archiveParam(c);
    const request = {
      namespace,
      key,
      declaredSize: declaredLength(c),
      expectedSha256: expectedChecksum(c),
      createOnly: createOnly(c),
      precondition: writePrecondition((name) => c.req.header(name), etagOf),
    };
    await access.admit(c, namespace, "writeArtifact");
    const body = requestBody(c);
    if (archive) {
      const result = await store.putArchive({ ...request, body });
      c.get("record").bytesIn = result.size;
      return c.json(
        // A directory has no digest of its own: sha256 is the uploaded archive's, also under its own name.
        { uri: artifactUri(namespace, key.key), namespace, key: key.key, size: result.size, sha256: result.sha256, archiveSha256: result.sha256, files: result.files },
        result.created ? 201 : 200,
      );
    }
    const result = await store.put({ ...request, body });
    c.get("record").bytesIn = result.size;
    c.header("ETag", etagOf(result.sha256));
    return c.json(
      { uri: artifactUri(namespace, key.key), namespace, key: key.key, size: result.size, sha256: result.sha256 },
      result.created ? 201 : 200,
    );
  });

  app.on(["GET", "HEAD"], ARTIFACT_ROUTE, async (c) => {
    const { namespace, key } = artifactTarget(c);
    const peek = wholeNumberParam(c, "peek", 0, Number.MAX_SAFE_INTEGER);
    const archive = archiveParam(c);
    await access.admit(c, namespace, "readArtifact");
    if (archive) {
      const location = await store.resolveForArchive(namespace, key);
      const name = key.segments.at(-1) ?? "artifact";
      const headers = {
        "Content-Type": "application/gzip",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": attachmentDisposition(`${name}.tar.gz`),
        "Cache-Control": "private, no-cache",
      };
      if (c.req.method === "HEAD") return await sendStream(c, 200, headers, null);
      const source = "directory" in location ? location : { file: location.file, singleName: name };
      return await sendStream(c, 200, headers, packArchive(source));
    }
    const artifact = await store.read(namespace, key);
    if ("directory" in artifact) throw conflict("this key is a directory; download it with ?archive=tar.gz");
    const { size, sha256, modified } = artifact;
    try {
      const etag = etagOf(sha256);
      const headers: Record<string, string> = {
        "Content-Type": "application/octet-stream",
        ETag: etag,
        "Last-Modified": modified.toUTCString(),
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": attachmentDisposition(key.segments.at(-1) ?? "artifact"),
        "Cache-Control": "private, no-cache",
        "X-Checksum-SHA256": sha256,
      };
      if (notModified((name) => c.req.header(name), etag, headers["Last-Modified"] ?? "")) {
        return await sendStream(c, 304, withoutBodyHeaders(headers), null);
      }
      let status = 200;
      let start = 0;
      let end = size - 1;
      if (peek !== undefined) {
        end = Math.min(size, peek) - 1;
        headers["X-Artifact-Size"] = String(size);
      } else {
        const range = ifRangeAllows(c.req.header("if-range"), etag, modified) ? parseRange(c.req.header("range"), size) : undefined;
        if (range !== undefined) {
          status = 206;
          ({ start, end } = range);
          headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
        }
      }
      const length = Math.max(0, end - start + 1);
      headers["Content-Length"] = String(length);
      if (c.req.method === "HEAD" || length === 0) return await sendStream(c, status, headers, null);
      // The store picks the body: bytes kept in memory, one read, or the file produced into buffers.
      return await sendArtifactBody(c, status, headers, await artifact.body(start, length));
    } finally {
      // Lets go of the file unless the body took it.
      await artifact.release();
    }
  });

  app.delete(ARTIFACT_ROUTE, async (c) => {
    const { namespace, key } = artifactTarget(c);
    const recursive = c.req.query("recursive");
    if (recursive !== undefined && recursive !== "true" && recursive !== "false") throw badRequest("recursive must be true or false");
    await access.admit(c, namespace, "deleteArtifact");
    await store.delete(namespace, key, recursive === "true", writePrecondition((name) => c.req.header(name), etagOf));
    return c.body(null, 204);
  });
}

function withoutBodyHeaders(headers: Record<string, string>): Record<string, string> {
  const { "Content-Type": _type, "Content-Disposition": _disposition, ...rest } = headers;
  return rest;
}

function encodeCursor(after: string): string {
  return Buffer.from(JSON.stringify({ after }), "utf8").toString("base64url");
}

function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined || cursor === "") return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as { after?: unknown };
    if (typeof parsed.after === "string") return parsed.after;
  } catch {
    // fall through to the client error
  }
  throw badRequest("cursor is not one this server returned");
}
