// The S3 API with the AWS SDK for JavaScript v3 — the client of the aws CLI's family and of KFP's own
// TypeScript tooling — against a real server on port 0, configured as KFP configures its clients
// (path-style, region "minio", a static key pair). Every operation KFP, its UI and people use, each
// payload mode the SDK sends, and the failure modes: wrong secret, unknown key, skew, expired presigned
// URLs, bad digests, hostile keys. Objects are checked against the native API: one file, one digest.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectTaggingCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  GetObjectAclCommand,
  ListBucketsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { KEEP_ALIVE_AFTER_MS } from "../../src/s3/kept-alive.js";
import { UploadWriter } from "../../src/storage/upload-writers.js";
import { listFiles, startTestServer, type TestServer } from "../support/harness.js";

const ACCESS_KEY = "minio";
const SECRET_KEY = "minio123-secret";
let s: TestServer;

function client(overrides: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client({
    endpoint: s.s3Url,
    region: "minio",
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    maxAttempts: 1,
    ...overrides,
  });
}

/** The S3 error code a failed call answered. */
async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof S3ServiceException) return error.name;
    throw error;
  }
  throw new Error("the call succeeded");
}

async function statusOf(promise: Promise<unknown>): Promise<number | undefined> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof S3ServiceException) return error.$metadata.httpStatusCode;
    throw error;
  }
  throw new Error("the call succeeded");
}

const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");
const md5 = (data: Uint8Array | string) => createHash("md5").update(data).digest("hex");

async function nativeGet(namespace: string, key: string): Promise<{ status: number; body: Buffer; sha256: string | null }> {
  const response = await fetch(`${s.url}/v1/namespaces/${namespace}/artifacts/${key.split("/").map(encodeURIComponent).join("/")}`);
  return { status: response.status, body: Buffer.from(await response.arrayBuffer()), sha256: response.headers.get("x-checksum-sha256") };
}

beforeAll(async () => {
  s = await startTestServer({ S3_ACCESS_KEY: ACCESS_KEY, S3_SECRET_KEY: SECRET_KEY });
});

afterAll(async () => {
  await s.close();
});

describe("S3 API with the AWS SDK v3", () => {
  it("bucket calls KFP's API server and UI make: HeadBucket, CreateBucket (idempotent), GetBucketLocation, ListBuckets", async () => {
    const s3 = client();
    await s3.send(new HeadBucketCommand({ Bucket: "mlpipeline" }));
    await s3.send(new CreateBucketCommand({ Bucket: "mlpipeline" }));
    await s3.send(new CreateBucketCommand({ Bucket: "mlpipeline" }));
    expect((await s3.send(new GetBucketLocationCommand({ Bucket: "mlpipeline" }))).LocationConstraint ?? "").toBe("");
    await s3.send(new PutObjectCommand({ Bucket: "team-z", Key: "seed", Body: "x" }));
    const buckets = (await s3.send(new ListBucketsCommand({}))).Buckets?.map((bucket) => bucket.Name);
    expect(buckets).toEqual(expect.arrayContaining(["mlpipeline", "team-z"]));
    expect(await codeOf(s3.send(new HeadBucketCommand({ Bucket: "Not_A_Namespace" })))).toBe("NotFound");
    expect(await codeOf(s3.send(new GetObjectCommand({ Bucket: "Not_A_Namespace", Key: "k" })))).toBe("NoSuchBucket");
  });

  it("PutObject / GetObject / HeadObject: Kubeflow's layout maps to the namespace, one file, same SHA-256 as the native API", async () => {
    const s3 = client();
    const keys = ["v2/artifacts/p/run-1/a.txt", "v2/artifacts/with space/ü-ñ.bin", "v2/artifacts/plus+and%percent/x", "empty"];
    for (const [index, key] of keys.entries()) {
      const body = index === 3 ? "" : `content of ${key}`;
      const put = await s3.send(new PutObjectCommand({ Bucket: "mlpipeline", Key: `private-artifacts/team-a/${key}`, Body: body }));
      expect(put.ETag).toBe(`"${md5(body)}"`);
      const got = await s3.send(new GetObjectCommand({ Bucket: "mlpipeline", Key: `private-artifacts/team-a/${key}` }));
      expect(await got.Body?.transformToString()).toBe(body);
      expect(got.ETag).toBe(`"${md5(body)}"`);
      expect(got.ContentLength).toBe(Buffer.byteLength(body));
      // The same object through the namespace's own bucket and through the native API.
      const head = await s3.send(new HeadObjectCommand({ Bucket: "team-a", Key: key }));
      expect(head.ETag).toBe(`"${md5(body)}"`);
      const native = await nativeGet("team-a", key);
      expect(native.status).toBe(200);
      expect(native.body.toString()).toBe(body);
      expect(native.sha256).toBe(sha256(body));
    }
    // Keys outside private-artifacts/ belong to the system namespace (pipeline specs, logs).
    await s3.send(new PutObjectCommand({ Bucket: "mlpipeline", Key: "pipelines/spec.yaml", Body: "spec" }));
    expect((await nativeGet("kubeflow", "pipelines/spec.yaml")).body.toString()).toBe("spec");
  });

  it("an artifact written with the native API is readable over S3 (and its ETag is its SHA-256)", async () => {
    const body = "written natively";
    expect((await fetch(`${s.url}/v1/namespaces/team-a/artifacts/native/one`, { method: "PUT", body })).status).toBe(201);
    const got = await client().send(new GetObjectCommand({ Bucket: "team-a", Key: "native/one" }));
    expect(await got.Body?.transformToString()).toBe(body);
    expect(got.ETag).toBe(`"${sha256(body)}"`);
  });

  it("every payload mode the SDK sends: CRC32 header, aws-chunked with a CRC32 trailer, CRC32C and SHA-256 trailers, no checksum", async () => {
    const data = Buffer.alloc(300_000, 7);
    const cases: Array<[string, Partial<S3ClientConfig>, Record<string, unknown>]> = [
      ["when-supported (default)", {}, {}],
      ["when-required", { requestChecksumCalculation: "WHEN_REQUIRED" }, {}],
      ["crc32c", {}, { ChecksumAlgorithm: "CRC32C" }],
      ["sha256", {}, { ChecksumAlgorithm: "SHA256" }],
      ["crc64nvme", {}, { ChecksumAlgorithm: "CRC64NVME" }],
    ];
    for (const [name, config, input] of cases) {
      const s3 = client(config);
      // A stream of known length: the SDK sends it aws-chunked with a trailing checksum (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
      await s3.send(new PutObjectCommand({ Bucket: "team-b", Key: `modes/${name}/stream`, Body: Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), ContentLength: data.length, ...input }));
      await s3.send(new PutObjectCommand({ Bucket: "team-b", Key: `modes/${name}/buffer`, Body: data, ...input }));
      for (const kind of ["stream", "buffer"]) {
        const native = await nativeGet("team-b", `modes/${name}/${kind}`);
        expect(native.sha256, `${name} ${kind}`).toBe(sha256(data));
      }
    }
  });

  it("a completion still assembling after 2 s is answered 200 at once, streamed, ending in its result or its <Error>: the SDK reads both", async () => {
    // The assembly is held up in its first append, as a large object's takes seconds per GiB.
    const { appendRange } = Object.getOwnPropertyDescriptors(UploadWriter.prototype);
    vi.spyOn(UploadWriter.prototype, "appendRange").mockImplementation(async function (this: UploadWriter, range) {
      // The first range of the staged object's hash (parts in place) or of the copy (parts of their own).
      if (range.offset === 0 && /(part-00001|object\.completing)$/.test(range.source)) await new Promise((resolve) => setTimeout(resolve, KEEP_ALIVE_AFTER_MS + 800));
      return (appendRange?.value as UploadWriter["appendRange"]).call(this, range);
    });
    try {
      // What arrives on the wire: a body streamed from the first moment (no Content-Length), starting with spaces after the declaration.
      const seen: Array<{ headers: Record<string, string>; status: number }> = [];
      const s3 = client();
      s3.middlewareStack.add(
        (next) => async (args) => {
          const out = await next(args);
          const response = out.response as { statusCode: number; headers: Record<string, string> };
          seen.push({ status: response.statusCode, headers: response.headers });
          return out;
        },
        { step: "deserialize", name: "recordResponse", priority: "low" },
      );
      const part1 = Buffer.alloc(5 << 20, 3);
      const part2 = Buffer.alloc(1000, 4);
      for (const outcome of ["completed", "failed"] as const) {
        const key = `slow/${outcome}.bin`;
        const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: "team-a", Key: key }));
        const e1 = (await s3.send(new UploadPartCommand({ Bucket: "team-a", Key: key, UploadId, PartNumber: 1, Body: part1 }))).ETag;
        const e2 = (await s3.send(new UploadPartCommand({ Bucket: "team-a", Key: key, UploadId, PartNumber: 2, Body: part2 }))).ETag;
        // Cut short on the volume: found only by the assembly, long after the 200 went out.
        // (The parts are in place in the staged object; removing the upload's part size makes the completion copy them.)
        if (outcome === "failed") await fs.rm(path.join(s.root, ".kfp-artifacts/multipart", UploadId ?? "", "layout.json"));
        if (outcome === "failed") await fs.truncate(path.join(s.root, ".kfp-artifacts/multipart", UploadId ?? "", "object"), 10);
        seen.length = 0;
        const completing = s3.send(
          new CompleteMultipartUploadCommand({ Bucket: "team-a", Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: e1 }, { PartNumber: 2, ETag: e2 }] } }),
        );
        if (outcome === "completed") {
          expect((await completing).ETag).toMatch(/^"[0-9a-f]{32}-2"$/);
          expect((await nativeGet("team-a", key)).sha256).toBe(sha256(Buffer.concat([part1, part2])));
        } else {
          await expect(completing).rejects.toMatchObject({ name: "InvalidPart" });
          expect((await nativeGet("team-a", key)).status).toBe(404);
          // The upload stays, as after any refused completion, until its client aborts it.
          await s3.send(new AbortMultipartUploadCommand({ Bucket: "team-a", Key: key, UploadId }));
        }
        expect(seen[0]?.status).toBe(200);
        expect(seen[0]?.headers["content-length"]).toBeUndefined();
        expect(seen[0]?.headers["transfer-encoding"]).toBe("chunked");
      }
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("multipart: create, upload parts, list parts, complete — S3's multipart ETag, the whole file natively; abort removes the parts", async () => {
    const s3 = client();
    const key = "private-artifacts/team-a/multi/big.bin";
    const part1 = Buffer.alloc(5 << 20, 1);
    const part2 = Buffer.alloc(1 << 20, 2);
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: "mlpipeline", Key: key }));
    expect(UploadId).toMatch(/^[0-9a-f]{32}$/);
    const e1 = (await s3.send(new UploadPartCommand({ Bucket: "mlpipeline", Key: key, UploadId, PartNumber: 1, Body: part1 }))).ETag;
    const e2 = (await s3.send(new UploadPartCommand({ Bucket: "mlpipeline", Key: key, UploadId, PartNumber: 2, Body: part2 }))).ETag;
    expect(e1).toBe(`"${md5(part1)}"`);
    // Not visible before completion.
    expect(await codeOf(s3.send(new HeadObjectCommand({ Bucket: "mlpipeline", Key: key })))).toBe("NotFound");
    const parts = await s3.send(new ListPartsCommand({ Bucket: "mlpipeline", Key: key, UploadId }));
    expect(parts.Parts?.map((part) => [part.PartNumber, part.Size])).toEqual([
      [1, part1.length],
      [2, part2.length],
    ]);
    // A wrong ETag or order is refused and the upload stays usable.
    expect(
      await codeOf(s3.send(new CompleteMultipartUploadCommand({ Bucket: "mlpipeline", Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"00"' }] } }))),
    ).toBe("InvalidPart");
    const done = await s3.send(
      new CompleteMultipartUploadCommand({ Bucket: "mlpipeline", Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: e1 }, { PartNumber: 2, ETag: e2 }] } }),
    );
    const expectedETag = `"${md5(Buffer.concat([Buffer.from(md5(part1), "hex"), Buffer.from(md5(part2), "hex")]))}-2"`;
    expect(done.ETag).toBe(expectedETag);
    expect((await s3.send(new HeadObjectCommand({ Bucket: "mlpipeline", Key: key }))).ETag).toBe(expectedETag);
    const native = await nativeGet("team-a", "multi/big.bin");
    expect(native.sha256).toBe(sha256(Buffer.concat([part1, part2])));
    expect(await listFiles(path.join(s.root, ".kfp-artifacts/multipart"))).toEqual([]);
    expect(await codeOf(s3.send(new ListPartsCommand({ Bucket: "mlpipeline", Key: key, UploadId })))).toBe("NoSuchUpload");

    const aborted = await s3.send(new CreateMultipartUploadCommand({ Bucket: "team-a", Key: "multi/aborted" }));
    await s3.send(new UploadPartCommand({ Bucket: "team-a", Key: "multi/aborted", UploadId: aborted.UploadId, PartNumber: 1, Body: part2 }));
    await s3.send(new AbortMultipartUploadCommand({ Bucket: "team-a", Key: "multi/aborted", UploadId: aborted.UploadId }));
    expect(await listFiles(path.join(s.root, ".kfp-artifacts/multipart"))).toEqual([]);
    expect((await nativeGet("team-a", "multi/aborted")).status).toBe(404);
    // An upload id used against another key is not that upload.
    const other = await s3.send(new CreateMultipartUploadCommand({ Bucket: "team-a", Key: "multi/mine" }));
    expect(await codeOf(s3.send(new UploadPartCommand({ Bucket: "team-a", Key: "multi/theirs", UploadId: other.UploadId, PartNumber: 1, Body: "x" })))).toBe("NoSuchUpload");
  });

  it("ListObjectsV2 and ListObjects: prefix, delimiter, max-keys, continuation, start-after, marker, encoding-type=url", async () => {
    const s3 = client();
    const keys = ["list/a/1", "list/a/2", "list/b", "list/c d/+%", "list/é/x"];
    for (const key of keys) await s3.send(new PutObjectCommand({ Bucket: "team-c", Key: key, Body: key }));
    const all: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: "team-c", Prefix: "list/", MaxKeys: 2, ContinuationToken: token }));
      expect(page.KeyCount).toBeLessThanOrEqual(2);
      all.push(...(page.Contents ?? []).map((object) => object.Key ?? ""));
      token = page.NextContinuationToken;
    } while (token !== undefined);
    expect(all).toEqual([...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));

    const delimited = await s3.send(new ListObjectsV2Command({ Bucket: "team-c", Prefix: "list/", Delimiter: "/" }));
    expect(delimited.Contents?.map((object) => object.Key)).toEqual(["list/b"]);
    expect(delimited.CommonPrefixes?.map((common) => common.Prefix)).toEqual(["list/a/", "list/c d/", "list/é/"]);

    const after = await s3.send(new ListObjectsV2Command({ Bucket: "team-c", Prefix: "list/", StartAfter: "list/b" }));
    expect(after.Contents?.map((object) => object.Key)).toEqual(["list/c d/+%", "list/é/x"]);

    // encoding-type=url: keys percent-encoded as MinIO does (space as %20, so both decodeURIComponent and
    // Python's unquote_plus read them back); the caller decodes.
    const encoded = await s3.send(new ListObjectsV2Command({ Bucket: "team-c", Prefix: "list/c", EncodingType: "url" }));
    expect(encoded.Contents?.map((object) => object.Key)).toEqual(["list/c%20d/%2B%25"]);
    expect(encoded.Contents?.map((object) => decodeURIComponent(object.Key ?? ""))).toEqual(["list/c d/+%"]);

    const v1 = await s3.send(new ListObjectsCommand({ Bucket: "team-c", Prefix: "list/", MaxKeys: 3 }));
    expect(v1.IsTruncated).toBe(true);
    const v1next = await s3.send(new ListObjectsCommand({ Bucket: "team-c", Prefix: "list/", Marker: v1.NextMarker ?? v1.Contents?.at(-1)?.Key }));
    expect([...(v1.Contents ?? []), ...(v1next.Contents ?? [])].map((object) => object.Key)).toEqual(all);

    // The shared bucket's top level: one common prefix per namespace.
    const top = await s3.send(new ListObjectsV2Command({ Bucket: "mlpipeline", Prefix: "private-artifacts/", Delimiter: "/" }));
    expect(top.CommonPrefixes?.map((common) => common.Prefix)).toContain("private-artifacts/team-c/");
  });

  it("DeleteObject (idempotent) and DeleteObjects", async () => {
    const s3 = client();
    for (const key of ["del/1", "del/2", "del/3"]) await s3.send(new PutObjectCommand({ Bucket: "team-d", Key: key, Body: key }));
    await s3.send(new DeleteObjectCommand({ Bucket: "team-d", Key: "del/1" }));
    await s3.send(new DeleteObjectCommand({ Bucket: "team-d", Key: "del/1" }));
    const result = await s3.send(new DeleteObjectsCommand({ Bucket: "team-d", Delete: { Objects: [{ Key: "del/2" }, { Key: "del/3" }, { Key: "del/missing" }] } }));
    expect(result.Deleted?.map((deleted) => deleted.Key).sort()).toEqual(["del/2", "del/3", "del/missing"]);
    expect(result.Errors ?? []).toEqual([]);
    expect((await s3.send(new ListObjectsV2Command({ Bucket: "team-d", Prefix: "del/" }))).KeyCount).toBe(0);
  });

  it("CopyObject, ranges (206, InvalidRange), conditional reads (304, 412) and create-only writes", async () => {
    const s3 = client();
    await s3.send(new PutObjectCommand({ Bucket: "team-e", Key: "src", Body: "0123456789" }));
    await s3.send(new CopyObjectCommand({ Bucket: "team-e", Key: "copy", CopySource: "team-e/src" }));
    expect(await (await s3.send(new GetObjectCommand({ Bucket: "team-e", Key: "copy" }))).Body?.transformToString()).toBe("0123456789");
    const range = await s3.send(new GetObjectCommand({ Bucket: "team-e", Key: "src", Range: "bytes=2-4" }));
    expect(await range.Body?.transformToString()).toBe("234");
    expect(range.ContentRange).toBe("bytes 2-4/10");
    expect(await codeOf(s3.send(new GetObjectCommand({ Bucket: "team-e", Key: "src", Range: "bytes=20-30" })))).toBe("InvalidRange");
    const etag = `"${md5("0123456789")}"`;
    // 304 has no body, so the SDK names no code: its status is what S3 answers.
    expect(await statusOf(s3.send(new GetObjectCommand({ Bucket: "team-e", Key: "src", IfNoneMatch: etag })))).toBe(304);
    expect(await statusOf(s3.send(new HeadObjectCommand({ Bucket: "team-e", Key: "src", IfModifiedSince: new Date(Date.now() + 60_000) })))).toBe(304);
    expect(await codeOf(s3.send(new GetObjectCommand({ Bucket: "team-e", Key: "src", IfMatch: '"other"' })))).toBe("PreconditionFailed");
    expect(await codeOf(s3.send(new PutObjectCommand({ Bucket: "team-e", Key: "src", Body: "new", IfNoneMatch: "*" })))).toBe("PreconditionFailed");
    expect(await codeOf(s3.send(new PutObjectCommand({ Bucket: "team-e", Key: "src", Body: "new", IfMatch: '"stale"' })))).toBe("PreconditionFailed");
    await s3.send(new PutObjectCommand({ Bucket: "team-e", Key: "src", Body: "new", IfMatch: etag }));
    expect((await nativeGet("team-e", "src")).body.toString()).toBe("new");
    // Small objects are served from memory after a first read: a rewrite is seen at once.
    expect(await (await s3.send(new GetObjectCommand({ Bucket: "team-e", Key: "src" }))).Body?.transformToString()).toBe("new");
  });

  it("refuses a wrong secret, an unknown key, a skewed clock and anonymous requests — nothing stored", async () => {
    const wrongSecret = client({ credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: "not-the-secret" } });
    expect(await codeOf(wrongSecret.send(new PutObjectCommand({ Bucket: "team-f", Key: "x", Body: "x" })))).toBe("SignatureDoesNotMatch");
    const unknown = client({ credentials: { accessKeyId: "nobody", secretAccessKey: SECRET_KEY } });
    expect(await codeOf(unknown.send(new PutObjectCommand({ Bucket: "team-f", Key: "x", Body: "x" })))).toBe("InvalidAccessKeyId");
    const skewed = client({ systemClockOffset: -30 * 60_000 });
    expect(await codeOf(skewed.send(new PutObjectCommand({ Bucket: "team-f", Key: "x", Body: "x" })))).toBe("RequestTimeTooSkewed");
    const anonymous = await fetch(`${s.s3Url}/team-f/x`, { method: "PUT", body: "x" });
    expect(anonymous.status).toBe(403);
    expect(await anonymous.text()).toMatch(/<Code>AccessDenied<\/Code>/);
    expect((await nativeGet("team-f", "x")).status).toBe(404);
  });

  it("a wrong Content-MD5 or x-amz-checksum stores nothing (BadDigest)", async () => {
    const s3 = client();
    const wrongMd5 = Buffer.from(md5("other"), "hex").toString("base64");
    expect(await codeOf(s3.send(new PutObjectCommand({ Bucket: "team-f", Key: "md5", Body: "body", ContentMD5: wrongMd5 })))).toBe("BadDigest");
    expect(await codeOf(s3.send(new PutObjectCommand({ Bucket: "team-f", Key: "crc", Body: "body", ChecksumCRC32: "AAAAAA==" })))).toBe("BadDigest");
    expect((await nativeGet("team-f", "md5")).status).toBe(404);
    expect((await nativeGet("team-f", "crc")).status).toBe(404);
    expect(await listFiles(path.join(s.root, ".kfp-artifacts/tmp"))).toEqual([]);
  });

  it("presigned GET and PUT URLs work; an expired one is refused", async () => {
    const s3 = client();
    await s3.send(new PutObjectCommand({ Bucket: "team-g", Key: "shared/report.html", Body: "<p>hi</p>" }));
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: "team-g", Key: "shared/report.html" }), { expiresIn: 60 });
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("<p>hi</p>");
    const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: "team-g", Key: "shared/upload" }), { expiresIn: 60 });
    expect((await fetch(putUrl, { method: "PUT", body: "via url" })).status).toBe(200);
    expect((await nativeGet("team-g", "shared/upload")).body.toString()).toBe("via url");
    const expired = await getSignedUrl(s3, new GetObjectCommand({ Bucket: "team-g", Key: "shared/report.html" }), {
      expiresIn: 1,
      signingDate: new Date(Date.now() - 60_000),
    });
    const refused = await fetch(expired);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toMatch(/<Code>AccessDenied<\/Code>[\s\S]*expired/);
    const tampered = url.replace("report.html", "other.html");
    expect((await fetch(tampered)).status).toBe(403);
  });

  it("operations it does not support answer NotImplemented (501) and change nothing: UploadPartCopy, tagging, ACLs", async () => {
    // Before, GET ?acl and ?tagging sent the object's bytes and DELETE ?tagging deleted the object.
    const s3 = client();
    await s3.send(new PutObjectCommand({ Bucket: "team-a", Key: "unsupported/source", Body: "source" }));
    const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: "team-a", Key: "unsupported/copy" }));
    const before = await listFiles(s.root);
    const copyPart = new UploadPartCopyCommand({ Bucket: "team-a", Key: "unsupported/copy", UploadId: upload.UploadId, PartNumber: 1, CopySource: "team-a/unsupported/source" });
    expect(await codeOf(s3.send(copyPart))).toBe("NotImplemented");
    const tagging = new PutObjectTaggingCommand({ Bucket: "team-a", Key: "unsupported/source", Tagging: { TagSet: [{ Key: "k", Value: "v" }] } });
    expect(await codeOf(s3.send(tagging))).toBe("NotImplemented");
    const source = { Bucket: "team-a", Key: "unsupported/source" };
    expect(await codeOf(s3.send(new GetObjectAclCommand(source)))).toBe("NotImplemented");
    expect(await codeOf(s3.send(new GetObjectTaggingCommand(source)))).toBe("NotImplemented");
    expect(await codeOf(s3.send(new DeleteObjectTaggingCommand(source)))).toBe("NotImplemented");
    expect(await listFiles(s.root)).toEqual(before);
    expect((await nativeGet("team-a", "unsupported/source")).status).toBe(200);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: "team-a", Key: "unsupported/copy", UploadId: upload.UploadId }));
  });

  it("hostile object keys are refused as on the native API, and nothing is written anywhere", async () => {
    const s3 = client();
    const before = await listFiles(s.root);
    for (const key of ["../escape", "a/../../escape", "a//b", "./x", "a/./b", "back\\slash", "nul\u0000byte", "ctrl\u0001x", `${"x".repeat(256)}`, "private-artifacts/../kubeflow/x"]) {
      const code = await codeOf(s3.send(new PutObjectCommand({ Bucket: "team-h", Key: key, Body: "pwned" }))).catch((error: unknown) => String(error));
      expect(["InvalidArgument", "InvalidRequest", "BadRequest"], `${JSON.stringify(key)} answered ${code}`).toContain(code);
    }
    for (const key of ["private-artifacts/UPPER/x", "private-artifacts/../x", "private-artifacts//x"]) {
      expect(await codeOf(s3.send(new PutObjectCommand({ Bucket: "mlpipeline", Key: key, Body: "pwned" })))).toBe("InvalidArgument");
    }
    expect(await listFiles(s.root)).toEqual(before);
    await fs.access(s.root);
  });
});
