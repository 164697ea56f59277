// S3 failure modes no well-behaved client produces, so they are built here from the AWS SDK's own
// signer (@smithy/signature-v4): a tampered chunk of a signed streaming body, a body that does not match
// its declared SHA-256, a truncated chunked body. Each is refused with S3's code and stores nothing. Also:
// a 10,000-key listing paged at many sizes against a sorted reference, SIGKILL in the middle of a
// multipart upload, a part changed on the volume before its completion, the sweep of abandoned uploads,
// and the s3-credentials command.
import { execFileSync } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { Readable } from "node:stream";
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, ListObjectsV2Command, ListPartsCommand, S3Client, UploadPartCommand } from "@aws-sdk/client-s3";
import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "./sha256.js";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { deriveSecretKey } from "../../src/s3/credentials.js";
import { MultipartUploads } from "../../src/s3/multipart.js";
import { testStore } from "../support/store.js";
import { listFiles, SERVER_BUNDLE, startChildServer, startTestServer, tempDir, within, type ChildServer, type TestServer } from "../support/harness.js";

const KEY = { accessKeyId: "minio", secretAccessKey: "minio123-secret" };
const EMPTY_SHA256 = createHash("sha256").update("").digest("hex");
let s: TestServer;

beforeAll(async () => {
  s = await startTestServer({ S3_ACCESS_KEY: KEY.accessKeyId, S3_SECRET_KEY: KEY.secretAccessKey });
});
afterAll(async () => {
  await s.close();
});

const hex = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();

/** Sends a request as built, returning status and body. */
function send(url: string, method: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; body: string }> {
  return within(
    10_000,
    new Promise((resolve, reject) => {
      const request = http.request(url, { method, headers }, (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => (text += chunk.toString()));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text }));
      });
      request.on("error", reject);
      request.end(body);
    }),
  );
}

/**
 * A PUT signed by the AWS SDK's signer in STREAMING-AWS4-HMAC-SHA256-PAYLOAD mode, its chunks signed per
 * the SigV4 streaming specification; `tamper` may change the encoded body afterwards.
 */
async function signedStreamingPut(objectPath: string, chunks: Buffer[], tamper: (encoded: Buffer) => Buffer = (encoded) => encoded) {
  const url = new URL(`${s.s3Url}${objectPath}`);
  const date = new Date();
  const longDate = date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const shortDate = longDate.slice(0, 8);
  const region = "minio";
  const decodedLength = chunks.reduce((total, chunk) => total + chunk.length, 0);
  const signer = new SignatureV4({ credentials: KEY, region, service: "s3", sha256: Sha256, uriEscapePath: false });
  const signed = await signer.sign(
    {
      method: "PUT",
      protocol: "http:",
      hostname: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      query: {},
      headers: {
        host: url.host,
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "x-amz-decoded-content-length": String(decodedLength),
        "content-encoding": "aws-chunked",
      },
    },
    { signingDate: date },
  );
  const seed = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1] ?? "";
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${KEY.secretAccessKey}`, shortDate), region), "s3"), "aws4_request");
  const scope = `${shortDate}/${region}/s3/aws4_request`;
  let previous = seed;
  const parts: Buffer[] = [];
  for (const chunk of [...chunks, Buffer.alloc(0)]) {
    const signature = hmac(signingKey, ["AWS4-HMAC-SHA256-PAYLOAD", longDate, scope, previous, EMPTY_SHA256, hex(chunk)].join("\n")).toString("hex");
    previous = signature;
    parts.push(Buffer.from(`${chunk.length.toString(16)};chunk-signature=${signature}\r\n`), chunk, Buffer.from("\r\n"));
  }
  const body = tamper(Buffer.concat(parts));
  const headers = { ...(signed.headers as Record<string, string>), "content-length": String(body.length) };
  return send(url.toString(), "PUT", headers, body);
}

describe("S3 payload verification", () => {
  it("a signed streaming body whose every chunk signature verifies is stored", async () => {
    const result = await signedStreamingPut("/team-a/stream/ok", [Buffer.alloc(65536, 1), Buffer.from("tail")]);
    expect(result.status, result.body).toBe(200);
    const native = await fetch(`${s.url}/v1/namespaces/team-a/artifacts/stream/ok`);
    expect((await native.arrayBuffer()).byteLength).toBe(65540);
  });

  it("a tampered chunk, a forged chunk signature or a truncated body is refused and nothing is stored", async () => {
    const tampers: Array<[string, (encoded: Buffer) => Buffer, string]> = [
      ["a changed data byte", (encoded) => Buffer.from(encoded.toString("latin1").replace("tail", "tAil"), "latin1"), "SignatureDoesNotMatch"],
      ["a forged chunk signature", (encoded) => Buffer.from(encoded.toString("latin1").replace(/chunk-signature=[0-9a-f]{4}/, "chunk-signature=0000"), "latin1"), "SignatureDoesNotMatch"],
      ["the last chunk missing", (encoded) => encoded.subarray(0, encoded.lastIndexOf("0;chunk-signature")), "IncompleteBody"],
    ];
    for (const [name, tamper, code] of tampers) {
      const result = await signedStreamingPut(`/team-a/stream/${name.replaceAll(" ", "-")}`, [Buffer.alloc(65536, 1), Buffer.from("tail")], tamper);
      expect(result.status, name).toBeGreaterThanOrEqual(400);
      expect(result.body, name).toContain(`<Code>${code}</Code>`);
      expect((await fetch(`${s.url}/v1/namespaces/team-a/artifacts/stream/${name.replaceAll(" ", "-")}`)).status, name).toBe(404);
    }
    expect(await listFiles(path.join(s.root, ".kfp-artifacts/tmp"))).toEqual([]);
  });

  it("a body that does not match its signed x-amz-content-sha256 is refused (XAmzContentSHA256Mismatch), nothing stored", async () => {
    const url = new URL(`${s.s3Url}/team-a/hex/mismatch`);
    const signer = new SignatureV4({ credentials: KEY, region: "minio", service: "s3", sha256: Sha256, uriEscapePath: false });
    const signed = await signer.sign({
      method: "PUT",
      protocol: "http:",
      hostname: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      query: {},
      headers: { host: url.host, "x-amz-content-sha256": hex("what was signed") },
    });
    const result = await send(url.toString(), "PUT", signed.headers, Buffer.from("what was sent"));
    expect(result.status).toBe(400);
    expect(result.body).toContain("<Code>XAmzContentSHA256Mismatch</Code>");
    expect((await fetch(`${s.url}/v1/namespaces/team-a/artifacts/hex/mismatch`)).status).toBe(404);
  });

  it("an error never carries a filesystem path or a stack", async () => {
    const response = await fetch(`${s.s3Url}/team-a/x`, { headers: { Authorization: "AWS4-HMAC-SHA256 Credential=minio/bad" } });
    const body = await response.text();
    expect(response.status).toBe(400);
    expect(body).not.toContain(s.root);
    expect(body).not.toMatch(/at .*\.(ts|js|mjs):\d+/);
  });
});

describe("S3 listing at scale", () => {
  it("10,000 keys paged at many page sizes match a sorted reference, with and without a delimiter", async () => {
    // Files written directly: the listing is under test, not 10,000 uploads.
    const keys: string[] = [];
    for (let i = 0; i < 10_000; i += 1) keys.push(`big/d${String(i % 37).padStart(2, "0")}/f-${i} ${i % 3 === 0 ? "+" : "é"}`);
    const root = path.join(s.root, "team-list");
    await Promise.all(keys.map(async (key) => {
      await fs.mkdir(path.dirname(path.join(root, key)), { recursive: true });
      await fs.writeFile(path.join(root, key), "x");
    }));
    const reference = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const s3 = new S3Client({ endpoint: s.s3Url, region: "minio", forcePathStyle: true, credentials: KEY, maxAttempts: 1 });
    for (const pageSize of [1000, 377, 37]) {
      const listed: string[] = [];
      let token: string | undefined;
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: "mlpipeline", Prefix: "private-artifacts/team-list/big/", MaxKeys: pageSize, ContinuationToken: token }));
        listed.push(...(page.Contents ?? []).map((object) => (object.Key ?? "").slice("private-artifacts/team-list/".length)));
        token = page.NextContinuationToken;
      } while (token !== undefined);
      expect(listed.length, `page size ${pageSize}`).toBe(10_000);
      expect(listed, `page size ${pageSize}`).toEqual(reference);
    }
    // Page size 1 over a slice, and delimited pages: every common prefix once, in order.
    const prefixes: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: "team-list", Prefix: "big/", Delimiter: "/", MaxKeys: 1, ContinuationToken: token }));
      prefixes.push(...(page.CommonPrefixes ?? []).map((common) => common.Prefix ?? ""));
      token = page.NextContinuationToken;
    } while (token !== undefined);
    expect(prefixes).toEqual(Array.from({ length: 37 }, (_, i) => `big/d${String(i).padStart(2, "0")}/`));
  }, 120_000);
});

describe("multipart uploads across a crash", () => {
  const children: ChildServer[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) child.child.kill("SIGKILL");
  });

  it.each([
    // Longer than the upload's part size (5 MiB, fixed by part 1): staged in a temporary file of its own.
    { layout: "in a file of its own", declared: 8 << 20, started: (root: string) => listFiles(path.join(root, ".kfp-artifacts/tmp")).then((files) => files.length > 0) },
    // Declared at the part size: written into the staged object in place, under its claim.
    {
      layout: "in place",
      declared: 5 << 20,
      started: async (root: string) => (await listFiles(path.join(root, ".kfp-artifacts/multipart"))).some((file) => file.endsWith("claim-part-00002")),
    },
  ])("SIGKILL mid-part ($layout): the completed parts survive, the partial one never appears, and the upload completes after restart", async ({ declared, started }) => {
    const root = await tempDir("s3-sigkill");
    const env = { ARTIFACTS_ROOT: root, S3_ACCESS_KEY: KEY.accessKeyId, S3_SECRET_KEY: KEY.secretAccessKey };
    const first = await startChildServer(env);
    children.push(first);
    const client = (url: string) => new S3Client({ endpoint: url, region: "minio", forcePathStyle: true, credentials: KEY, maxAttempts: 1 });
    const s3 = client(first.s3Url);
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: "team-a", Key: "crash/model.bin" }));
    const part1 = Buffer.alloc(5 << 20, 9);
    const e1 = (await s3.send(new UploadPartCommand({ Bucket: "team-a", Key: "crash/model.bin", UploadId, PartNumber: 1, Body: part1 }))).ETag;
    // Part 2 starts (signed, its length declared, 1 MiB of it sent), then the server is killed.
    const partUrl = new URL(`${first.s3Url}/team-a/crash/model.bin?partNumber=2&uploadId=${UploadId}`);
    const signed = await new SignatureV4({ credentials: KEY, region: "minio", service: "s3", sha256: Sha256, uriEscapePath: false }).sign({
      method: "PUT",
      protocol: "http:",
      hostname: partUrl.hostname,
      port: Number(partUrl.port),
      path: partUrl.pathname,
      query: { partNumber: "2", uploadId: UploadId ?? "" },
      headers: { host: partUrl.host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "content-length": String(declared) },
    });
    const request = http.request(partUrl, { method: "PUT", headers: signed.headers });
    request.on("error", () => {});
    request.write(Buffer.alloc(1 << 20, 1));
    await vi.waitFor(async () => expect(await started(root)).toBe(true), { timeout: 5_000 });
    first.child.kill("SIGKILL");
    await first.exited;

    const second = await startChildServer(env);
    children.push(second);
    const again = client(second.s3Url);
    const parts = await again.send(new ListPartsCommand({ Bucket: "team-a", Key: "crash/model.bin", UploadId }));
    expect(parts.Parts?.map((part) => part.PartNumber)).toEqual([1]);
    expect(await listFiles(path.join(root, ".kfp-artifacts/tmp"))).toEqual([]);
    // A claim the killed start left does not hold the completion up for the 30 s after which a claim counts
    // as abandoned: it names an earlier start of this host.
    const began = Date.now();
    await again.send(new CompleteMultipartUploadCommand({ Bucket: "team-a", Key: "crash/model.bin", UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: e1 }] } }));
    expect(Date.now() - began).toBeLessThan(20_000);
    const native = await fetch(`${second.url}/v1/namespaces/team-a/artifacts/crash/model.bin`);
    expect(native.headers.get("x-checksum-sha256")).toBe(hex(part1));
  }, 60_000);

  it.each([
    // Parts sent in order are written into the staged object in place; truncating it changes them.
    { layout: "in place", order: [1, 2], cut: "object" },
    // Part 2 first fixes a part size of 1000 bytes: part 1 does not fit and gets a file of its own.
    { layout: "in its own file", order: [2, 1], cut: "part-00001" },
  ])("a part changed on the volume after it was stored ($layout) is InvalidPart at completion: nothing appears, the upload stays", async ({ order, cut }) => {
    const root = await tempDir("s3-changed-part");
    const local = await startTestServer({ S3_ACCESS_KEY: KEY.accessKeyId, S3_SECRET_KEY: KEY.secretAccessKey }, { root });
    try {
      const s3 = new S3Client({ endpoint: local.s3Url, region: "minio", forcePathStyle: true, credentials: KEY, maxAttempts: 1 });
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: "team-a", Key: "changed/model.bin" }));
      const parts = [Buffer.alloc(5 << 20, 1), Buffer.alloc(1000, 2)];
      const etags: string[] = [];
      for (const partNumber of order) {
        const uploaded = await s3.send(new UploadPartCommand({ Bucket: "team-a", Key: "changed/model.bin", UploadId, PartNumber: partNumber, Body: parts[partNumber - 1] }));
        etags[partNumber - 1] = uploaded.ETag ?? "";
      }
      const upload = path.join(root, ".kfp-artifacts/multipart", UploadId ?? "");
      expect((await fs.stat(path.join(upload, "part-00001")).catch(() => undefined)) !== undefined).toBe(cut === "part-00001");
      // Cut short in place (same inode): the record still names it, the bytes are not the part's.
      await fs.truncate(path.join(upload, cut), 4096);
      const completing = s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: "team-a",
          Key: "changed/model.bin",
          UploadId,
          MultipartUpload: { Parts: etags.map((ETag, index) => ({ PartNumber: index + 1, ETag })) },
        }),
      );
      await expect(completing).rejects.toMatchObject({ name: "InvalidPart", $metadata: { httpStatusCode: 400 } });
      expect((await fetch(`${local.url}/v1/namespaces/team-a/artifacts/changed/model.bin`)).status).toBe(404);
      expect(await listFiles(path.join(root, ".kfp-artifacts/tmp"))).toEqual([]);
      const listed = await s3.send(new ListPartsCommand({ Bucket: "team-a", Key: "changed/model.bin", UploadId }));
      expect(listed.Parts?.map((part) => part.PartNumber)).toEqual([1, 2]);
      // The staged object is back where the parts and a retry find it.
      expect((await fs.readdir(upload)).filter((name) => name.startsWith("object") || name.startsWith("claim-"))).toEqual(["object"]);
    } finally {
      await local.close();
    }
  });

  it("with FSYNC=true an upload's record and each part are flushed, names included, before they are answered", async () => {
    // The part's bytes are flushed by the upload worker; what the event loop flushes goes through FileHandle.sync.
    const probe = await fs.open(await tempDir("filehandle-probe").then((dir) => path.join(dir, "probe")), "w");
    const fileHandle = Object.getPrototypeOf(probe) as { sync(): Promise<void> };
    await probe.close();
    for (const fsync of [true, false]) {
      const store = await testStore({ fsync });
      const uploads = new MultipartUploads(store, store.layout.internalDir);
      await uploads.init();
      const syncs = vi.spyOn(fileHandle, "sync");
      const uploadId = await uploads.create({ namespace: "team-a", key: "flushed", objectKey: "flushed", bucket: "team-a" });
      // Its (empty) staged object and its record, their names in the upload's directory, and that directory's name.
      expect(syncs).toHaveBeenCalledTimes(fsync ? 4 : 0);
      syncs.mockClear();
      await uploads.putPart(uploadId, 1, Readable.from([Buffer.from("the part")]), {});
      // No declared length, so a file of its own: its record, then the directory holding the part's and the record's names.
      expect(syncs).toHaveBeenCalledTimes(fsync ? 2 : 0);
      syncs.mockClear();
      await uploads.putPart(uploadId, 2, Readable.from([Buffer.from("part two")]), {}, 8);
      // In place, the first to fix the part size: the layout and its name, then the record and its name.
      expect(syncs).toHaveBeenCalledTimes(fsync ? 4 : 0);
      syncs.mockClear();
      await uploads.putPart(uploadId, 3, Readable.from([Buffer.from("part 3..")]), {}, 8);
      expect(syncs).toHaveBeenCalledTimes(fsync ? 2 : 0);
      syncs.mockRestore();
      expect((await uploads.parts(uploadId)).map((part) => [part.size, part.at])).toEqual([[8, undefined], [8, 8], [8, 16]]);
    }
  });

  it("abandoned uploads older than the expiry are swept; recent ones are kept", async () => {
    const root = await tempDir("s3-sweep");
    const local = await startTestServer({ S3_ACCESS_KEY: KEY.accessKeyId, S3_SECRET_KEY: KEY.secretAccessKey }, { root });
    try {
      const s3 = new S3Client({ endpoint: local.s3Url, region: "minio", forcePathStyle: true, credentials: KEY, maxAttempts: 1 });
      const old = await s3.send(new CreateMultipartUploadCommand({ Bucket: "team-a", Key: "old" }));
      const recent = await s3.send(new CreateMultipartUploadCommand({ Bucket: "team-a", Key: "recent" }));
      await s3.send(new UploadPartCommand({ Bucket: "team-a", Key: "old", UploadId: old.UploadId, PartNumber: 1, Body: "x" }));
      const uploads = new MultipartUploads({} as never, path.join(root, ".kfp-artifacts"));
      const record = path.join(root, ".kfp-artifacts/multipart", old.UploadId ?? "", "upload.json");
      const parsed = JSON.parse(await fs.readFile(record, "utf8")) as Record<string, unknown>;
      await fs.writeFile(record, JSON.stringify({ ...parsed, initiated: new Date(Date.now() - 8 * 24 * 3_600_000).toISOString() }));
      expect(await uploads.sweep(7 * 24 * 3_600_000)).toBe(1);
      const left = await fs.readdir(path.join(root, ".kfp-artifacts/multipart"));
      expect(left).toEqual([recent.UploadId]);
    } finally {
      await local.close();
    }
  });
});

describe("readiness covers the S3 listener", () => {
  it("/readyz reports s3; a server whose S3 listener is gone is not ready", async () => {
    const local = await startTestServer({});
    try {
      const ready = await fetch(`${local.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ checks: { s3: true } });
      await new Promise<void>((resolve) => local.running.s3Server?.close(() => resolve()));
      const gone = await fetch(`${local.url}/readyz`);
      expect(gone.status).toBe(503);
      expect(await gone.json()).toMatchObject({ status: "not ready", checks: { s3: false } });
    } finally {
      await local.close();
    }
  });
});

describe("the s3-credentials command", () => {
  it("prints a namespace's key pair, which the server accepts", () => {
    const output = execFileSync(process.execPath, [SERVER_BUNDLE, "s3-credentials", "team-a"], {
      env: { PATH: process.env.PATH ?? "", S3_MASTER_KEY: "k".repeat(40) },
      encoding: "utf8",
    });
    const printed = JSON.parse(output) as { accesskey: string; secretkey: string };
    expect(printed).toEqual({ accesskey: "kfp.team-a", secretkey: deriveSecretKey("k".repeat(40), "kfp.team-a") });
  });

  it("refuses a bad namespace or a missing master key with a clear message and exit 2", () => {
    for (const [args, env, message] of [
      [["s3-credentials", "Not_A_Namespace"], { S3_MASTER_KEY: "k".repeat(40) }, /namespace/],
      [["s3-credentials", "team-a"], {}, /S3_MASTER_KEY/],
    ] as const) {
      let status = 0;
      let stderr = "";
      try {
        execFileSync(process.execPath, [SERVER_BUNDLE, ...args], { env: { PATH: process.env.PATH ?? "", ...env }, encoding: "utf8", stdio: "pipe" });
      } catch (error) {
        status = (error as { status: number }).status;
        stderr = String((error as { stderr: string }).stderr);
      }
      expect(status).toBe(2);
      expect(stderr).toMatch(message);
    }
  });
});
