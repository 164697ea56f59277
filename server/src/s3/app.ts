// The S3-compatible API: the subset Kubeflow Pipelines' launcher (gocloud.dev over aws-sdk-go-v2), API
// server, UI (minio-js), Argo's log archive (minio-go) and people's tools (aws CLI, boto3, rclone) use.
// Path-style only: /{bucket}/{key}. Buckets are views of namespaces (mapping.ts); every object is the
// same file, digest and permission as on the native API. Requests are authenticated by their SigV4
// signature (sigv4.ts, the API's authentication adapter) and admitted by the authorization core every
// API shares (routes/access.ts). Served alone on its own port, in the shape every API has (routes/api.ts).
import type { Context } from "hono";
import type { Hono } from "hono";
import { createHash, randomBytes } from "node:crypto";
import type { Authorizer, ArtifactVerb, Identity } from "../auth/types.js";
import type { S3Config } from "../config.js";
import { HttpError } from "../errors.js";
import type { AppEnv } from "../http/env.js";
import { attachmentDisposition } from "../http/ranges.js";
import { rawPath, requestBody, sendArtifactBody, sendStream } from "../http/transport.js";
import { AccessCore, accessRequest, OutsideScope, type AuthenticationAdapter } from "../routes/access.js";
import { defineApi, INTERNAL_ERROR_CODE, type FaultHandling } from "../routes/api.js";
import type { ArtifactKey } from "../storage/names.js";
import type { ArtifactStore, CurrentVersion, ListItem } from "../storage/store.js";
import { checksumAlgorithmOf, CHECKSUM_ALGORITHMS } from "./checksums.js";
import { decodeAwsChunked, verifyChecksumHeader } from "./chunked.js";
import { S3KeyRing } from "./credentials.js";
import { S3Error, accessDenied, fromHttpError, invalidArgument, malformedXml, noSuchKey, notImplemented } from "./errors.js";
import { handleIam, isIamRequest } from "./iam.js";
import { BucketMap, type ObjectTarget } from "./mapping.js";
import { MAX_PARTS, normalizeETag, type MultipartUploads } from "./multipart.js";
import type { LifecycleStore } from "../retention/lifecycle.js";
import { answerOrKeepAlive } from "./kept-alive.js";
import { lifecycleDocument, parseLifecycle } from "./lifecycle-xml.js";
import { readV2Claim, verifyV2 } from "./sigv2.js";
import { readSignatureClaim, RequestSigner, uriEncode, type SignatureClaim, type WireRequest } from "./sigv4.js";
import { DECLARATION, parseXml, S3_XMLNS, xmlDocument, type XmlValue } from "./xml.js";

export interface S3AppDeps {
  readonly store: ArtifactStore;
  readonly multipart: MultipartUploads;
  /** Bucket lifecycle configurations, applied by the retention sweep. */
  readonly bucketLifecycles: LifecycleStore;
  readonly authorizer: Authorizer;
  readonly faults: FaultHandling;
  readonly authMode: "kubernetes" | "none";
  /** A dedicated server answers only for this namespace. */
  readonly scopeNamespace: string | undefined;
  readonly now?: () => number;
}

/** Request bodies that are read whole (XML documents, IAM forms, bodies signed by their hash). */
const MAX_SMALL_BODY_BYTES = 2 << 20;
const MAX_LIST_KEYS = 1000;
const LOCAL_IDENTITY: Identity = Object.freeze({ user: "local", groups: Object.freeze([]), via: "none" as const });

/** Who sent the request, once its signature (if any) verified. */
export interface S3Caller {
  readonly identity: Identity;
  readonly claim: SignatureClaim | undefined;
  readonly signer: RequestSigner | undefined;
  readonly isSystemKey: boolean;
  /** The one namespace the caller's key is valid in; undefined: any. */
  readonly onlyNamespace?: string;
  /** The body, when it had to be read whole to verify the signature. */
  readonly body: Buffer | undefined;
}

export interface S3Request {
  readonly c: Context<AppEnv>;
  readonly wire: WireRequest;
  readonly caller: S3Caller;
  readonly query: URLSearchParams;
  readonly bucket: string;
  /** The decoded object key ("" for bucket and service requests). */
  readonly objectKey: string;
}

export function createS3App(config: S3Config, deps: S3AppDeps): Hono<AppEnv> {
  return defineApi({ basePath: "", errorBody: s3ErrorBody, faults: deps.faults, guards: false }, (app) => registerRoutes(app, config, deps));
}

function registerRoutes(app: Hono<AppEnv>, config: S3Config, deps: S3AppDeps): void {
  const { store, multipart, authorizer } = deps;
  const { logger } = deps.faults;
  const now = deps.now ?? Date.now;
  const keys = new S3KeyRing(config, deps.authMode);
  const buckets = new BucketMap(config);
  const open = !keys.verifiesSignatures && deps.authMode === "none";

  /**
   * Verifies the request's signature and resolves who sent it. `wholeBody` (IAM's form posts) reads the
   * small body first, so its SHA-256 can be checked whatever payload mode signed it.
   */
  const verifySignature = async (c: Context<AppEnv>, wire: WireRequest, service: "s3" | "iam", wholeBody: boolean): Promise<S3Caller> => {
    const claim = readSignatureClaim(wire, now());
    const needsBody = wholeBody || claim?.payload.kind === "body-hash";
    const body = needsBody ? await readSmallBody(c) : undefined;
    if (claim === undefined) {
      const v2 = readV2Claim(wire, now());
      if (v2 === undefined || (open && keys.resolve(v2.accessKeyId) === undefined)) {
        if (open) return { identity: LOCAL_IDENTITY, claim, signer: undefined, isSystemKey: true, body };
        throw accessDenied("Anonymous access is not allowed; sign the request with an access key.");
      }
      const resolvedV2 = keys.resolve(v2.accessKeyId);
      if (resolvedV2 === undefined) throw new S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
      verifyV2(wire, v2, resolvedV2.secretAccessKey);
      return { identity: resolvedV2.identity, claim, signer: undefined, isSystemKey: resolvedV2.isSystemKey, onlyNamespace: resolvedV2.onlyNamespace, body };
    }
    const resolved = keys.resolve(claim.accessKeyId);
    if (resolved === undefined) {
      // AUTH_MODE=none with no key configured: any signature is accepted (the server warned at start).
      if (open) return { identity: LOCAL_IDENTITY, claim, signer: undefined, isSystemKey: true, body };
      throw new S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
    }
    if (claim.service !== service) throw new S3Error(400, "AuthorizationHeaderMalformed", `The credential scope's service must be '${service}'.`);
    const signer = new RequestSigner(claim, resolved.secretAccessKey);
    const bodySha256 = body === undefined ? undefined : createHash("sha256").update(body).digest("hex");
    signer.verifyRequest(wire, bodySha256);
    if (claim.payload.kind === "sha256" && bodySha256 !== undefined && bodySha256 !== claim.payload.sha256) {
      throw new S3Error(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
    return { identity: resolved.identity, claim, signer, isSystemKey: resolved.isSystemKey, onlyNamespace: resolved.onlyNamespace, body };
  };

  // The API's authentication adapter: IAM's form posts are signed for the iam service over their whole body.
  const authenticate: AuthenticationAdapter<S3Caller> = (c, wire) => {
    const iam = isIamRequest(c, wire, bucketOf(wire));
    return verifySignature(c, wire, iam ? "iam" : "s3", iam);
  };
  const access = new AccessCore<S3Caller>({ authorizer, scopeNamespace: deps.scopeNamespace }, authenticate);
  const admit = async (request: S3Request, namespace: string, verb: ArtifactVerb): Promise<void> => {
    await access.admit(request.c, namespace, verb);
  };

  /** The object a request names, validated as a native key is (hostile names refused alike). */
  const objectTarget = (request: S3Request): ObjectTarget & { key: ArtifactKey } => {
    const target = buckets.objectTarget(request.bucket, request.objectKey);
    request.c.get("record").key = target.key.key;
    return target;
  };

  app.all("*", async (c) => {
    const wire = accessRequest(c);
    const query = new URLSearchParams(wire.query.map(([name, value]) => [name, value]));
    const segments = wire.rawPath.split("/");
    const bucket = bucketOf(wire);
    const objectKey = segments.length > 2 ? decodeSegment(segments.slice(2).join("/")) : "";
    const record = c.get("record");

    if (isIamRequest(c, wire, bucket)) {
      record.operation = "iam";
      const caller = await access.authenticate(c);
      return handleIam(c, caller, { keys, authorizer, record, now });
    }

    const caller = await access.authenticate(c);
    const request: S3Request = { c, wire, caller, query, bucket, objectKey };
    const method = c.req.method;

    if (bucket === "") {
      if (objectKey !== "") throw new S3Error(400, "InvalidBucketName", "The specified bucket is not valid.");
      if (method !== "GET") throw methodNotAllowed();
      record.operation = "s3:ListBuckets";
      return listBuckets(request);
    }
    if (!buckets.exists(bucket)) throw new S3Error(404, "NoSuchBucket", "The specified bucket does not exist.");

    if (objectKey === "") {
      const sub = bucketSubresource(query);
      record.operation = `s3:${bucketOperation(method, sub)}`;
      switch (record.operation) {
        case "s3:HeadBucket":
          await admitBucket(request, "readArtifact");
          return c.body(null, 200, { "x-amz-bucket-region": config.region });
        case "s3:GetBucketLocation":
          await admitBucket(request, "readArtifact");
          return xml(c, 200, "LocationConstraint", config.region === "us-east-1" ? "" : config.region);
        case "s3:CreateBucket":
          // Buckets are views of namespaces: creating one that maps is a no-op that succeeds.
          await admitBucket(request, "writeArtifact");
          return c.body(null, 200, { Location: `/${bucket}` });
        case "s3:DeleteBucket":
          throw new S3Error(409, "BucketNotEmpty", "Buckets are views of namespaces here and cannot be deleted; delete the objects instead.");
        case "s3:ListObjectsV2":
        case "s3:ListObjects":
          return listObjects(request, record.operation === "s3:ListObjectsV2");
        case "s3:ListMultipartUploads":
          return listMultipartUploads(request);
        case "s3:DeleteObjects":
          return deleteObjects(request);
        case "s3:GetBucketVersioning":
          await admitBucket(request, "readArtifact");
          return xml(c, 200, "VersioningConfiguration", {});
        case "s3:GetBucketPolicy":
          await admitBucket(request, "readArtifact");
          throw new S3Error(404, "NoSuchBucketPolicy", "The bucket policy does not exist: access is decided by Kubernetes RBAC.");
        case "s3:PutBucketPolicy":
        case "s3:DeleteBucketPolicy":
          // Kubeflow's profile controller sets a policy for SeaweedFS; here Kubernetes RBAC decides access,
          // so the policy is accepted and has no effect (docs/s3.md).
          await admitBucket(request, "writeArtifact");
          return c.body(null, 204);
        case "s3:GetBucketLifecycleConfiguration": {
          await admitBucket(request, "readArtifact");
          const rules = deps.bucketLifecycles.get(bucket);
          if (rules === undefined) throw new S3Error(404, "NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist.");
          return xml(c, 200, "LifecycleConfiguration", lifecycleDocument(rules));
        }
        case "s3:PutBucketLifecycleConfiguration":
        case "s3:DeleteBucketLifecycle": {
          // Expiring is deleting: in Kubeflow's bucket a rule can reach every namespace, so it takes the
          // right to delete in the system namespace (the system key's); a namespace bucket, in that namespace.
          await admit(request, buckets.bucketNamespace(bucket), "deleteArtifact");
          if (record.operation === "s3:DeleteBucketLifecycle") {
            await deps.bucketLifecycles.delete(bucket);
            return c.body(null, 204);
          }
          const text = (request.caller.body ?? (await readSmallBody(c))).toString("utf8");
          await deps.bucketLifecycles.put(bucket, parseLifecycle(parseXml(text)));
          return c.body(null, 200);
        }
        default:
          throw notImplemented(`This server does not support ${method} with ${sub ?? "no"} subresource.`);
      }
    }

    // An object's tags, ACL, retention and attributes are kept nowhere here. Answered before the object
    // calls below, which ignore the query: a GET ?acl would otherwise send the object's bytes, and a
    // DELETE ?tagging would delete the object.
    const objectSubresource = OBJECT_SUBRESOURCES.find((name) => query.has(name));
    if (objectSubresource !== undefined) {
      record.operation = "s3:ObjectSubresource";
      throw notImplemented(`Object ${objectSubresource} is not supported: tags, ACLs, retention and attributes are not kept.`);
    }

    switch (method) {
      case "GET":
      case "HEAD":
        if (query.has("uploadId")) {
          record.operation = "s3:ListParts";
          return listParts(request);
        }
        record.operation = method === "GET" ? "s3:GetObject" : "s3:HeadObject";
        return getObject(request);
      case "PUT":
        if (c.req.header("x-amz-copy-source") !== undefined) {
          record.operation = query.has("uploadId") ? "s3:UploadPartCopy" : "s3:CopyObject";
          if (query.has("uploadId")) throw notImplemented("UploadPartCopy is not supported; upload the part's bytes.");
          return copyObject(request);
        }
        if (query.has("uploadId") || query.has("partNumber")) {
          record.operation = "s3:UploadPart";
          return uploadPart(request);
        }
        record.operation = "s3:PutObject";
        return putObject(request);
      case "POST":
        if (query.has("uploads")) {
          record.operation = "s3:CreateMultipartUpload";
          return createMultipartUpload(request);
        }
        if (query.has("uploadId")) {
          record.operation = "s3:CompleteMultipartUpload";
          return completeMultipartUpload(request);
        }
        throw notImplemented("This server does not support this POST operation.");
      case "DELETE":
        if (query.has("uploadId")) {
          record.operation = "s3:AbortMultipartUpload";
          return abortMultipartUpload(request);
        }
        record.operation = "s3:DeleteObject";
        return deleteObject(request);
      default:
        throw methodNotAllowed();
    }
  });

  /** Bucket-level access: the bucket's namespace; Kubeflow's shared bucket by any authenticated caller. */
  const admitBucket = async (request: S3Request, verb: ArtifactVerb) => {
    if (buckets.isKubeflowBucket(request.bucket)) {
      // Like Kubeflow's own bucket policy: the shared bucket exists for everyone with a key; what is
      // inside is authorized per namespace.
      if (request.caller.identity.via === "none" || request.caller.claim !== undefined) return;
    }
    await admit(request, buckets.bucketNamespace(request.bucket), verb);
  };

  async function listBuckets(request: S3Request): Promise<Response> {
    const namespaces = deps.scopeNamespace !== undefined ? [deps.scopeNamespace] : await store.namespaces();
    const created = new Date(0).toISOString();
    const visible: string[] = [config.kubeflowBucket];
    for (const namespace of namespaces.sort()) {
      if (namespace === config.kubeflowBucket) continue;
      const allowed = await admit(request, namespace, "readArtifact").then(
        () => true,
        () => false,
      );
      if (allowed) visible.push(namespace);
    }
    request.c.get("record").decision = "allow";
    return xml(request.c, 200, "ListAllMyBucketsResult", {
      Owner: { ID: request.caller.identity.user, DisplayName: request.caller.identity.user },
      Buckets: { Bucket: visible.map((name) => ({ Name: name, CreationDate: created })) },
    });
  }

  async function listObjects(request: S3Request, v2: boolean): Promise<Response> {
    const { query, c } = request;
    const prefix = query.get("prefix") ?? "";
    const delimiterParam = query.get("delimiter") ?? "";
    if (delimiterParam !== "" && delimiterParam !== "/") throw notImplemented("Only '/' is supported as a delimiter.");
    const delimiter = delimiterParam === "/" ? "/" : undefined;
    const maxKeysParam = query.get("max-keys");
    if (maxKeysParam !== null && !/^\d+$/.test(maxKeysParam)) throw invalidArgument("max-keys must be a whole number.");
    const maxKeys = Math.min(MAX_LIST_KEYS, maxKeysParam === null ? MAX_LIST_KEYS : Number(maxKeysParam));
    const encodingType = query.get("encoding-type");
    if (encodingType !== null && encodingType !== "url") throw invalidArgument("Invalid Encoding Method specified in Request");
    const encode = (key: string) => (encodingType === "url" ? key.split("/").map(uriEncode).join("/") : key);

    let after: string | undefined;
    const token = query.get("continuation-token");
    if (v2) {
      if (token !== null) after = decodeContinuationToken(token);
      else after = query.get("start-after") ?? undefined;
    } else {
      after = query.get("marker") ?? undefined;
    }

    const scope = buckets.listingScope(request.bucket, prefix);
    let items: ListItem[] = [];
    let prefixes: string[] = [];
    let truncated = false;
    let last: string | undefined;
    if (scope.kind === "namespace") {
      await admit(request, scope.namespace, "readArtifact");
      // A marker outside this namespace's keys either precedes them all (list from the start) or follows
      // them all (nothing left).
      const beyond = after !== undefined && !after.startsWith(scope.keyPrefix) && after > scope.keyPrefix;
      const innerAfter = after?.startsWith(scope.keyPrefix) ? after.slice(scope.keyPrefix.length) : undefined;
      if (maxKeys > 0 && !beyond) {
        const page = await store.list({ namespace: scope.namespace, prefix: scope.artifactPrefix, delimiter, limit: maxKeys, after: innerAfter });
        items = page.items.map((item) => ({ ...item, key: scope.keyPrefix + item.key }));
        prefixes = page.prefixes.map((common) => scope.keyPrefix + common);
        truncated = page.lastReturned !== undefined;
        last = page.lastReturned === undefined ? undefined : scope.keyPrefix + page.lastReturned;
      }
    } else if (scope.kind === "namespaces") {
      // Browsing the shared bucket's top level: one common prefix per namespace on the volume, names only
      // (as Kubeflow's bucket policy allows a delimited top-level browse); their contents need access.
      request.c.get("record").decision = "allow";
      if (delimiter === "/") {
        const all = (deps.scopeNamespace !== undefined ? [deps.scopeNamespace] : await store.namespaces())
          .map((namespace) => `${scope.keyPrefix}${namespace}/`)
          .filter((common) => common.startsWith(prefix) && (after === undefined || common > after))
          .sort();
        prefixes = all.slice(0, maxKeys);
        truncated = all.length > maxKeys;
        last = prefixes.at(-1);
      }
    }

    const contents = items.map((item) => ({
      Key: encode(item.key),
      LastModified: item.modified,
      ETag: `"${item.s3ETag ?? item.sha256 ?? ""}"`,
      Size: item.size,
      StorageClass: "STANDARD",
    }));
    const common = prefixes.map((value) => ({ Prefix: encode(value) }));
    const body: Record<string, XmlValue> = {
      Name: request.bucket,
      Prefix: encode(prefix),
      ...(v2 ? { KeyCount: contents.length + common.length, MaxKeys: maxKeys } : { Marker: encode(after ?? ""), MaxKeys: maxKeys }),
      ...(delimiter !== undefined ? { Delimiter: delimiter } : {}),
      ...(encodingType === "url" ? { EncodingType: "url" } : {}),
      IsTruncated: truncated,
      Contents: contents,
      CommonPrefixes: common,
    };
    if (v2) {
      if (token !== null) body.ContinuationToken = token;
      if (query.get("start-after") !== null) body.StartAfter = encode(query.get("start-after") ?? "");
      if (truncated && last !== undefined) body.NextContinuationToken = encodeContinuationToken(last);
    } else if (truncated && last !== undefined) {
      body.NextMarker = encode(last);
    }
    return xml(c, 200, "ListBucketResult", body);
  }

  async function getObject(request: S3Request): Promise<Response> {
    const { c, query } = request;
    const target = objectTarget(request);
    await admit(request, target.namespace, "readArtifact");
    const artifact = await store.read(target.namespace, target.key).catch(notFoundAsNoSuchKey);
    if ("directory" in artifact) throw noSuchKey();
    try {
      const etag = `"${artifact.s3ETag ?? artifact.sha256}"`;
      const { size, modified } = artifact;
      const headers: Record<string, string> = {
        ETag: etag,
        "Last-Modified": modified.toUTCString(),
        "Accept-Ranges": "bytes",
        "Content-Type": query.get("response-content-type") ?? "binary/octet-stream",
        "X-Checksum-SHA256": artifact.sha256,
      };
      const disposition = query.get("response-content-disposition");
      if (disposition !== null) headers["Content-Disposition"] = disposition;
      else if (query.has("response-content-disposition")) headers["Content-Disposition"] = attachmentDisposition(target.key.segments.at(-1) ?? "object");
      for (const name of ["cache-control", "content-encoding", "content-language", "expires"] as const) {
        const value = query.get(`response-${name}`);
        if (value !== null) headers[name] = value;
      }
      const conditional = checkReadConditions(c, { sha256: artifact.sha256, s3ETag: artifact.s3ETag, modified }, etag);
      if (conditional !== undefined) return await sendStream(c, conditional, { ETag: etag, "Last-Modified": headers["Last-Modified"] ?? "" }, null);

      let status = 200;
      let start = 0;
      let end = size - 1;
      const range = parseS3Range(c.req.header("range"), size, query.get("partNumber"));
      if (range !== undefined) {
        status = 206;
        ({ start, end } = range);
        headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
      } else if (c.req.header("x-amz-checksum-mode")?.toUpperCase() === "ENABLED") {
        // The whole object's SHA-256 (S3 sends no checksum with a range: it would not describe the bytes sent).
        headers["x-amz-checksum-sha256"] = Buffer.from(artifact.sha256, "hex").toString("base64");
        headers["x-amz-checksum-type"] = "FULL_OBJECT";
      }
      const length = Math.max(0, end - start + 1);
      headers["Content-Length"] = String(length);
      if (c.req.method === "HEAD" || length === 0) return await sendStream(c, status, headers, null);
      // As on the native API: the store picks the body (bytes kept in memory, one read, or the file produced).
      return await sendArtifactBody(c, status, headers, await artifact.body(start, length));
    } finally {
      await artifact.release();
    }
  }

  async function putObject(request: S3Request): Promise<Response> {
    const { c } = request;
    const target = objectTarget(request);
    const conditions = writeConditions(c);
    const upload = uploadBody(request);
    await admit(request, target.namespace, "writeArtifact");
    const result = await store.put({
      namespace: target.namespace,
      key: target.key,
      body: upload.body,
      declaredSize: upload.declaredSize,
      expectedSha256: upload.expectedSha256,
      expectedMd5: upload.expectedMd5,
      md5: true,
      createOnly: conditions.createOnly,
      precondition: conditions.precondition,
    });
    c.get("record").bytesIn = result.size;
    return c.body(null, 200, { ETag: `"${result.s3ETag ?? result.sha256}"`, ...upload.echoChecksum });
  }

  async function copyObject(request: S3Request): Promise<Response> {
    const { c } = request;
    const target = objectTarget(request);
    const sourceHeader = c.req.header("x-amz-copy-source") ?? "";
    const [sourcePath = ""] = sourceHeader.split("?versionId=");
    const decoded = decodeSegment(sourcePath.replace(/^\//, ""));
    const slash = decoded.indexOf("/");
    if (slash <= 0) throw invalidArgument("x-amz-copy-source must be /bucket/key.");
    const sourceBucket = decoded.slice(0, slash);
    if (!buckets.exists(sourceBucket)) throw new S3Error(404, "NoSuchBucket", "The specified bucket does not exist.");
    const source = buckets.objectTarget(sourceBucket, decoded.slice(slash + 1));
    await admit(request, source.namespace, "readArtifact");
    await admit(request, target.namespace, "writeArtifact");
    const opened = await store.read(source.namespace, source.key).catch(notFoundAsNoSuchKey);
    if ("directory" in opened) throw noSuchKey();
    const sourceETag = `"${opened.s3ETag ?? opened.sha256}"`;
    try {
      const ifMatch = c.req.header("x-amz-copy-source-if-match");
      if (ifMatch !== undefined && !etagListMatches(ifMatch, sourceETag)) throw preconditionFailed();
      const ifNoneMatch = c.req.header("x-amz-copy-source-if-none-match");
      if (ifNoneMatch !== undefined && etagListMatches(ifNoneMatch, sourceETag)) throw preconditionFailed();
      const result = await store.put({
        namespace: target.namespace,
        key: target.key,
        body: opened.chunks(),
        declaredSize: opened.size,
        md5: true,
      });
      return xml(c, 200, "CopyObjectResult", { LastModified: new Date().toISOString(), ETag: `"${result.s3ETag ?? result.sha256}"` });
    } finally {
      await opened.release();
    }
  }

  async function deleteObject(request: S3Request): Promise<Response> {
    const target = objectTarget(request);
    await admit(request, target.namespace, "deleteArtifact");
    await deleteQuietly(target);
    return request.c.body(null, 204);
  }

  /** S3 deletes are idempotent: a missing key (or a directory, which is no object) is not an error. */
  async function deleteQuietly(target: ObjectTarget): Promise<void> {
    try {
      await store.delete(target.namespace, target.key, false);
    } catch (error) {
      if (error instanceof HttpError && (error.status === 404 || error.status === 409)) return;
      throw error;
    }
  }

  async function deleteObjects(request: S3Request): Promise<Response> {
    const { c } = request;
    const text = (request.caller.body ?? (await readSmallBody(c))).toString("utf8");
    const md5 = c.req.header("content-md5");
    if (md5 !== undefined && createHash("md5").update(text).digest("base64") !== md5) {
      throw new S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
    }
    const document = parseXml(text).Delete as { Object?: Array<{ Key?: unknown }>; Quiet?: unknown } | undefined;
    if (document === undefined) throw malformedXml();
    const objects = document.Object ?? [];
    if (objects.length > 1000) throw malformedXml();
    const quiet = typeof document.Quiet === "string" && document.Quiet.trim() === "true";
    const deleted: XmlValue[] = [];
    const errors: XmlValue[] = [];
    for (const object of objects) {
      const key = typeof object.Key === "string" ? object.Key : "";
      try {
        const target = buckets.objectTarget(request.bucket, key);
        await admit(request, target.namespace, "deleteArtifact");
        await deleteQuietly(target);
        if (!quiet) deleted.push({ Key: key });
      } catch (error) {
        const s3 = toS3Error(error, logger, "s3:DeleteObjects");
        errors.push({ Key: key, Code: s3.code, Message: s3.message });
      }
    }
    return xml(c, 200, "DeleteResult", { Deleted: deleted, Error: errors });
  }

  async function createMultipartUpload(request: S3Request): Promise<Response> {
    const target = objectTarget(request);
    await admit(request, target.namespace, "writeArtifact");
    const uploadId = await multipart.create({ namespace: target.namespace, key: target.key.key, objectKey: request.objectKey, bucket: request.bucket });
    return xml(request.c, 200, "InitiateMultipartUploadResult", { Bucket: request.bucket, Key: request.objectKey, UploadId: uploadId });
  }

  /** The upload named by ?uploadId=, checked to belong to this bucket and key. */
  async function ownUpload(request: S3Request, verb: ArtifactVerb) {
    const target = objectTarget(request);
    await admit(request, target.namespace, verb);
    const uploadId = request.query.get("uploadId") ?? "";
    const upload = await multipart.get(uploadId);
    if (upload.namespace !== target.namespace || upload.key !== target.key.key) {
      throw new S3Error(404, "NoSuchUpload", "The specified multipart upload does not exist.");
    }
    return { target, uploadId, upload };
  }

  async function uploadPart(request: S3Request): Promise<Response> {
    const partNumber = Number(request.query.get("partNumber") ?? "");
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PARTS) {
      throw invalidArgument(`Part number must be an integer between 1 and ${MAX_PARTS}, inclusive.`);
    }
    const upload = uploadBody(request);
    const { uploadId } = await ownUpload(request, "writeArtifact");
    const part = await multipart.putPart(uploadId, partNumber, upload.body, { expectedSha256: upload.expectedSha256, expectedMd5: upload.expectedMd5 }, upload.declaredSize);
    request.c.get("record").bytesIn = part.size;
    return request.c.body(null, 200, { ETag: `"${part.md5}"`, ...upload.echoChecksum });
  }

  async function listParts(request: S3Request): Promise<Response> {
    const { uploadId, upload } = await ownUpload(request, "readArtifact");
    const marker = Number(request.query.get("part-number-marker") ?? "0");
    const maxParts = Math.min(1000, Number(request.query.get("max-parts") ?? "1000"));
    const after = (await multipart.parts(uploadId)).filter((part) => part.partNumber > marker);
    const page = after.slice(0, maxParts);
    const truncated = after.length > page.length;
    return xml(request.c, 200, "ListPartsResult", {
      Bucket: request.bucket,
      Key: upload.objectKey,
      UploadId: uploadId,
      PartNumberMarker: marker,
      ...(truncated ? { NextPartNumberMarker: page.at(-1)?.partNumber ?? 0 } : {}),
      MaxParts: maxParts,
      IsTruncated: truncated,
      StorageClass: "STANDARD",
      Part: page.map((part) => ({ PartNumber: part.partNumber, LastModified: part.modified, ETag: `"${part.md5}"`, Size: part.size })),
    });
  }

  async function completeMultipartUpload(request: S3Request): Promise<Response> {
    const { c } = request;
    const conditions = writeConditions(c);
    const { target, uploadId } = await ownUpload(request, "writeArtifact");
    const text = (request.caller.body ?? (await readSmallBody(c))).toString("utf8");
    const document = parseXml(text).CompleteMultipartUpload as { Part?: Array<{ PartNumber?: unknown; ETag?: unknown }> } | undefined;
    if (document === undefined) throw malformedXml();
    const parts = (document.Part ?? []).map((part) => {
      const partNumber = Number(typeof part.PartNumber === "string" ? part.PartNumber.trim() : NaN);
      if (!Number.isInteger(partNumber) || typeof part.ETag !== "string") throw malformedXml();
      return { partNumber, etag: normalizeETag(part.ETag) };
    });
    const answer = await answerOrKeepAlive(
      multipart.complete(uploadId, target, parts, conditions.precondition),
      (result) => {
        c.get("record").bytesIn = result.size;
        return xmlDocument("CompleteMultipartUploadResult", {
          Location: `/${request.bucket}/${request.objectKey}`,
          Bucket: request.bucket,
          Key: request.objectKey,
          ETag: `"${result.s3ETag ?? result.sha256}"`,
        });
      },
      // Already answered 200: the error goes in the body, as S3 sends it.
      (error) => errorDocument(c, toS3Error(error, logger, "s3:CompleteMultipartUpload")).document,
    );
    if ("now" in answer) return c.body(answer.now, 200, XML_HEADERS);
    return sendStream(c, 200, XML_HEADERS, answer.body);
  }

  async function abortMultipartUpload(request: S3Request): Promise<Response> {
    const { uploadId } = await ownUpload(request, "writeArtifact");
    await multipart.abort(uploadId);
    return request.c.body(null, 204);
  }

  async function listMultipartUploads(request: S3Request): Promise<Response> {
    const prefix = request.query.get("prefix") ?? "";
    const uploads: XmlValue[] = [];
    for (const upload of await multipart.list(10_000)) {
      if (upload.bucket !== request.bucket || !upload.objectKey.startsWith(prefix)) continue;
      const allowed = await admit(request, upload.namespace, "readArtifact").then(
        () => true,
        () => false,
      );
      if (allowed) uploads.push({ Key: upload.objectKey, UploadId: upload.uploadId, Initiated: upload.initiated, StorageClass: "STANDARD" });
      if (uploads.length >= 1000) break;
    }
    request.c.get("record").decision = "allow";
    return xml(request.c, 200, "ListMultipartUploadsResult", { Bucket: request.bucket, Prefix: prefix, MaxUploads: 1000, IsTruncated: false, Upload: uploads });
  }

}

/** The bucket a request names: its first path segment, decoded ("" for the service). */
function bucketOf(wire: WireRequest): string {
  return decodeSegment(wire.rawPath.split("/")[1] ?? "");
}

/**
 * An error as S3's: ours as they are, the core's and the store's translated (so a refusal keeps its
 * meaning), the unexpected hidden. `unexpected` errors (not HttpErrors) are logged by the caller.
 */
function asS3Error(error: HttpError): S3Error {
  if (error instanceof S3Error) return error;
  if (error instanceof OutsideScope) return new S3Error(404, "NoSuchBucket", `This artifact server serves only the namespace ${error.scopeNamespace}.`);
  if (error.code === INTERNAL_ERROR_CODE) return new S3Error(500, "InternalError", "We encountered an internal error. Please try again.");
  if (error.code === "ClientClosedRequest") return new S3Error(400, "IncompleteBody", "The request body was not received completely.");
  return fromHttpError(error);
}

/** An error answered inside a 200 (a DeleteObjects entry's, a long completion's): HttpErrors translated, anything else logged and hidden. */
function toS3Error(error: unknown, logger: FaultHandling["logger"], operation: string): S3Error {
  if (error instanceof HttpError) return asS3Error(error);
  logger.error("unhandled error", { operation, error });
  return asS3Error(new HttpError(500, INTERNAL_ERROR_CODE, "internal server error"));
}

/** S3's <Error> document for `error`, with a new request id; the access log records its code. */
function errorDocument(c: Context<AppEnv>, error: S3Error): { readonly document: string; readonly requestId: string } {
  const record = c.get("record") as AppEnv["Variables"]["record"] | undefined;
  if (record !== undefined) record.s3Error = error.code;
  const requestId = randomBytes(8).toString("hex").toUpperCase();
  return { document: xmlDocument("Error", { Code: error.code, Message: error.message, Resource: rawPath(c), RequestId: requestId }, false), requestId };
}

function s3ErrorBody(c: Context<AppEnv>, httpError: HttpError): Response {
  const error = asS3Error(httpError);
  const { document, requestId } = errorDocument(c, error);
  const headers: Record<string, string> = { "x-amz-request-id": requestId, ...error.headers };
  // HEAD answers carry no body; clients read the status (and minio-js the x-amz headers).
  if (c.req.method === "HEAD") return c.body(null, error.status, headers);
  return c.body(document, error.status, { ...headers, "Content-Type": "application/xml" });
}

function xml(c: Context<AppEnv>, status: 200, root: string, content: Record<string, XmlValue> | string): Response {
  const body = typeof content === "string" ? `${DECLARATION}<${root} xmlns="${S3_XMLNS}">${content}</${root}>` : xmlDocument(root, content);
  return c.body(body, status, XML_HEADERS);
}

const XML_HEADERS = { "Content-Type": "application/xml" } as const;

const methodNotAllowed = () => new S3Error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
const preconditionFailed = () => new S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.");

function decodeSegment(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw invalidArgument("The path is not correctly percent-encoded.");
  }
}

/** Object subresources S3 has and this server keeps nothing for (each answers NotImplemented). */
const OBJECT_SUBRESOURCES = ["acl", "tagging", "retention", "legal-hold", "attributes", "torrent", "restore", "select"] as const;
const BUCKET_SUBRESOURCES = ["location", "uploads", "delete", "versioning", "policy", "lifecycle", "list-type"] as const;

function bucketSubresource(query: URLSearchParams): string | undefined {
  return BUCKET_SUBRESOURCES.find((name) => query.has(name));
}

function bucketOperation(method: string, sub: string | undefined): string {
  switch (`${method} ${sub ?? ""}`) {
    case "HEAD ":
      return "HeadBucket";
    case "GET location":
      return "GetBucketLocation";
    case "PUT ":
      return "CreateBucket";
    case "DELETE ":
      return "DeleteBucket";
    case "GET list-type":
      return "ListObjectsV2";
    case "GET ":
      return "ListObjects";
    case "GET uploads":
      return "ListMultipartUploads";
    case "POST delete":
      return "DeleteObjects";
    case "GET versioning":
      return "GetBucketVersioning";
    case "GET policy":
      return "GetBucketPolicy";
    case "PUT policy":
      return "PutBucketPolicy";
    case "DELETE policy":
      return "DeleteBucketPolicy";
    case "GET lifecycle":
      return "GetBucketLifecycleConfiguration";
    case "PUT lifecycle":
      return "PutBucketLifecycleConfiguration";
    case "DELETE lifecycle":
      return "DeleteBucketLifecycle";
    default:
      return `Unsupported${method}`;
  }
}

async function readSmallBody(c: Context<AppEnv>): Promise<Buffer> {
  const declared = c.req.header("content-length");
  if (declared !== undefined && Number(declared) > MAX_SMALL_BODY_BYTES) {
    throw new S3Error(400, "MaxMessageLengthExceeded", "Your request was too big.");
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of requestBody(c)) {
    size += chunk.byteLength;
    if (size > MAX_SMALL_BODY_BYTES) throw new S3Error(400, "MaxMessageLengthExceeded", "Your request was too big.");
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/** The decoded body of a PutObject or UploadPart, by payload mode, with what must be verified. */
function uploadBody(request: S3Request): {
  body: AsyncIterable<Uint8Array>;
  declaredSize: number | undefined;
  expectedSha256: string | undefined;
  expectedMd5: string | undefined;
  echoChecksum: Record<string, string>;
} {
  const { c, caller } = request;
  const header = (name: string) => c.req.header(name);
  const contentLength = header("content-length");
  if (contentLength !== undefined && !/^\d+$/.test(contentLength)) throw invalidArgument("Content-Length must be a whole number.");
  const decodedLengthHeader = header("x-amz-decoded-content-length");
  if (decodedLengthHeader !== undefined && !/^\d+$/.test(decodedLengthHeader)) throw invalidArgument("x-amz-decoded-content-length must be a whole number.");
  const decodedLength = decodedLengthHeader === undefined ? undefined : Number(decodedLengthHeader);
  const payload = caller.claim?.payload;
  let body: AsyncIterable<Uint8Array> = caller.body !== undefined ? oneChunk(caller.body) : requestBody(c);
  let declaredSize = contentLength === undefined ? undefined : Number(contentLength);
  let expectedSha256: string | undefined;
  const trailer = header("x-amz-trailer");
  const chunked = payload?.kind === "streaming-signed" || payload?.kind === "streaming-unsigned-trailer" || (payload === undefined && decodedLength !== undefined);
  if (chunked) {
    if (decodedLength === undefined) throw new S3Error(411, "MissingContentLength", "You must provide the x-amz-decoded-content-length header for aws-chunked uploads.");
    body = decodeAwsChunked(body, { signer: payload?.kind === "streaming-signed" ? caller.signer : undefined, trailer, decodedLength });
    declaredSize = decodedLength;
  } else if (payload?.kind === "sha256") {
    expectedSha256 = payload.sha256;
  }
  if (declaredSize === undefined && !chunked && header("transfer-encoding") === undefined && caller.body === undefined) {
    throw new S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.");
  }
  const echoChecksum: Record<string, string> = {};
  for (const algorithm of CHECKSUM_ALGORITHMS) {
    const name = `x-amz-checksum-${algorithm}`;
    const value = header(name);
    if (value === undefined) continue;
    body = verifyChecksumHeader(body, checksumAlgorithmOf(name), value.trim());
    echoChecksum[name] = value.trim();
  }
  const md5Header = header("content-md5");
  let expectedMd5: string | undefined;
  if (md5Header !== undefined) {
    const bytes = Buffer.from(md5Header.trim(), "base64");
    if (bytes.length !== 16) throw new S3Error(400, "InvalidDigest", "The Content-MD5 you specified is not valid.");
    expectedMd5 = bytes.toString("hex");
  }
  return { body, declaredSize, expectedSha256, expectedMd5, echoChecksum };
}

/** If-Match / If-None-Match on writes (S3 conditional writes), checked under the store's commit lock. */
function writeConditions(c: Context<AppEnv>): { createOnly: boolean; precondition: ((current: CurrentVersion | undefined) => void) | undefined } {
  const ifNoneMatch = c.req.header("if-none-match");
  const ifMatch = c.req.header("if-match");
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== "*") throw notImplemented("If-None-Match on writes supports only '*'.");
  const createOnly = ifNoneMatch !== undefined;
  if (ifMatch === undefined) return { createOnly, precondition: undefined };
  return {
    createOnly,
    precondition: (current) => {
      if (current === undefined) throw noSuchKey();
      if (!etagListMatches(ifMatch, `"${current.s3ETag ?? current.sha256}"`)) throw preconditionFailed();
    },
  };
}

function etagListMatches(header: string, etag: string): boolean {
  return header.split(",").some((candidate) => {
    const value = candidate.trim();
    return value === "*" || normalizeETag(value) === normalizeETag(etag);
  });
}

/** S3's read conditions, in S3's order of precedence; the status to answer instead, or undefined. */
function checkReadConditions(c: Context<AppEnv>, current: CurrentVersion, etag: string): 304 | undefined {
  const ifMatch = c.req.header("if-match");
  const ifNoneMatch = c.req.header("if-none-match");
  const ifModifiedSince = httpDate(c.req.header("if-modified-since"));
  const ifUnmodifiedSince = httpDate(c.req.header("if-unmodified-since"));
  const modifiedSeconds = Math.floor(current.modified.getTime() / 1000);
  if (ifMatch !== undefined) {
    if (!etagListMatches(ifMatch, etag)) throw preconditionFailed();
  } else if (ifUnmodifiedSince !== undefined && modifiedSeconds > ifUnmodifiedSince) {
    throw preconditionFailed();
  }
  if (ifNoneMatch !== undefined) {
    if (etagListMatches(ifNoneMatch, etag)) return 304;
  } else if (ifModifiedSince !== undefined && modifiedSeconds <= ifModifiedSince) {
    return 304;
  }
  return undefined;
}

function httpDate(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const time = Date.parse(header);
  return Number.isNaN(time) ? undefined : Math.floor(time / 1000);
}

/** One byte range (S3 does not serve multi-range); an unsatisfiable one is S3's InvalidRange. */
function parseS3Range(header: string | undefined, size: number, partNumber: string | null): { start: number; end: number } | undefined {
  if (partNumber !== null && partNumber !== "1") throw new S3Error(416, "InvalidPartNumber", "The requested partnumber is not satisfiable");
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Anything but one byte range is ignored, as RFC 9110 and S3 do.
  if (!match || (match[1] === "" && match[2] === "")) return undefined;
  const [, first = "", last = ""] = match;
  let start: number;
  let end: number;
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0) throw invalidRangeError(size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(first);
    end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
    if (last !== "" && Number(last) < start) return undefined;
  }
  if (start >= size) throw invalidRangeError(size);
  return { start, end };
}

function invalidRangeError(size: number): S3Error {
  return new S3Error(416, "InvalidRange", "The requested range is not satisfiable", { "Content-Range": `bytes */${size}` });
}

function notFoundAsNoSuchKey(error: unknown): never {
  if (error instanceof HttpError && error.status === 404) throw noSuchKey();
  throw error;
}

function oneChunk(chunk: Uint8Array): AsyncIterable<Uint8Array> {
  return (async function* () {
    yield await Promise.resolve(chunk);
  })();
}

function encodeContinuationToken(after: string): string {
  return Buffer.from(after, "utf8").toString("base64url");
}

function decodeContinuationToken(token: string): string {
  const after = Buffer.from(token, "base64url").toString("utf8");
  if (after === "" || Buffer.from(after, "utf8").toString("base64url") !== token) {
    throw invalidArgument("The continuation token provided is incorrect");
  }
  return after;
}
