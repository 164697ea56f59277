// The S3 API with minio-js 8.0.x, configured as the KFP UI's server configures it: no region (so it
// asks GetBucketLocation first), plain HTTP (hex SHA-256 payload signatures), a static key pair. The UI
// reads artifacts with getObject, falls back to listing a prefix (ListObjectsV2 with
// encoding-type=url) on NoSuchKey, and previews through presigned URLs.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { Client, S3Error as MinioS3Error } from "minio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/harness.js";

const ACCESS_KEY = "minio";
const SECRET_KEY = "minio123-secret";
let s: TestServer;
let minio: Client;

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof MinioS3Error) return error.code ?? "unknown";
    if (error instanceof Error && "code" in error) return String((error as { code: unknown }).code);
    throw error;
  }
  throw new Error("the call succeeded");
}

beforeAll(async () => {
  s = await startTestServer({ S3_ACCESS_KEY: ACCESS_KEY, S3_SECRET_KEY: SECRET_KEY });
  const url = new URL(s.s3Url);
  minio = new Client({ endPoint: url.hostname, port: Number(url.port), useSSL: false, accessKey: ACCESS_KEY, secretKey: SECRET_KEY });
});

afterAll(async () => {
  await s.close();
});

describe("S3 API with minio-js (the KFP UI's client)", () => {
  it("putObject, statObject, getObject and a partial getObject, as the UI reads an artifact", async () => {
    const key = "private-artifacts/team-a/v2/artifacts/pipe/run/node/metrics.json";
    await minio.putObject("mlpipeline", key, Buffer.from('{"accuracy":0.9}'));
    const stat = await minio.statObject("mlpipeline", key);
    expect(stat.size).toBe(16);
    expect(stat.etag).toBe(createHash("md5").update('{"accuracy":0.9}').digest("hex"));
    expect(await text(await minio.getObject("mlpipeline", key))).toBe('{"accuracy":0.9}');
    expect(await text(await minio.getPartialObject("mlpipeline", key, 2, 8))).toBe("accuracy");
    const native = await fetch(`${s.url}/v1/namespaces/team-a/artifacts/v2/artifacts/pipe/run/node/metrics.json`);
    expect(await native.text()).toBe('{"accuracy":0.9}');
  });

  it("NoSuchKey on a directory output, then the listing of its prefix (the UI's tarball fallback)", async () => {
    const prefix = "private-artifacts/team-a/v2/artifacts/pipe/run/node/model";
    for (const name of ["saved_model.pb", "variables/variables.index", "variables/with space+plus.data"]) {
      await minio.putObject("mlpipeline", `${prefix}/${name}`, Buffer.from(name));
    }
    expect(await codeOf(minio.getObject("mlpipeline", prefix))).toBe("NoSuchKey");
    const listed: string[] = [];
    for await (const item of minio.listObjectsV2("mlpipeline", `${prefix}/`, true)) listed.push((item as { name: string }).name);
    expect(listed).toEqual([`${prefix}/saved_model.pb`, `${prefix}/variables/variables.index`, `${prefix}/variables/with space+plus.data`]);
    const delimited: string[] = [];
    for await (const item of minio.listObjectsV2("mlpipeline", `${prefix}/`, false)) {
      delimited.push((item as { name?: string; prefix?: string }).name ?? (item as { prefix: string }).prefix);
    }
    expect(delimited).toEqual([`${prefix}/saved_model.pb`, `${prefix}/variables/`]);
  });

  it("a large stream goes multipart (minio-js splits at its part size) and reads back whole", async () => {
    const size = 70 << 20;
    const chunk = Buffer.alloc(1 << 20, 3);
    const source = Readable.from(
      (function* () {
        for (let sent = 0; sent < size; sent += chunk.length) yield chunk;
      })(),
    );
    const uploaded = await minio.putObject("team-b", "logs/big.log", source, size);
    expect(uploaded.etag).toMatch(/-\d+$/);
    const hash = createHash("sha256");
    let length = 0;
    for await (const piece of await minio.getObject("team-b", "logs/big.log")) {
      hash.update(piece as Buffer);
      length += (piece as Buffer).length;
    }
    expect(length).toBe(size);
    const expected = createHash("sha256");
    for (let sent = 0; sent < size; sent += chunk.length) expected.update(chunk);
    expect(hash.digest("hex")).toBe(expected.digest("hex"));
  });

  it("presignedGetObject serves the UI's previews; removeObject and removeObjects delete", async () => {
    await minio.putObject("team-c", "preview/a.html", Buffer.from("<b>a</b>"));
    await minio.putObject("team-c", "preview/b.html", Buffer.from("<b>b</b>"));
    const url = await minio.presignedGetObject("team-c", "preview/a.html", 60);
    expect(await (await fetch(url)).text()).toBe("<b>a</b>");
    await minio.removeObject("team-c", "preview/a.html");
    await minio.removeObjects("team-c", ["preview/b.html"]);
    expect(await codeOf(minio.statObject("team-c", "preview/b.html"))).toBe("NotFound");
  });

  it("bucketExists and makeBucket for namespace buckets; a wrong secret is refused", async () => {
    expect(await minio.bucketExists("mlpipeline")).toBe(true);
    await minio.makeBucket("team-d");
    const url = new URL(s.s3Url);
    const wrong = new Client({ endPoint: url.hostname, port: Number(url.port), useSSL: false, accessKey: ACCESS_KEY, secretKey: "wrong-secret" });
    expect(await codeOf(wrong.putObject("team-d", "x", Buffer.from("x")))).toBe("SignatureDoesNotMatch");
  });
});
