// The S3 API with the tools people and Kubeflow's own scripts run, as Debian ships them: boto3 (what
// kubeflow/manifests' isolation test and the profile controller use), the aws CLI and rclone (which
// compares MD5 ETags after every transfer). `make test` installs them (mk/clients.mk); each runs with a
// clean environment so no local AWS configuration leaks in.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deriveSecretKey } from "../../src/s3/credentials.js";
import { EDITOR_VERBS, FakeKubeApi } from "../support/fake-kube-api.js";
import { startTestServer, tempDir, type TestServer } from "../support/harness.js";

const run = promisify(execFile);
const AWS = "/usr/bin/aws";
const PYTHON = "/usr/bin/python3";
const RCLONE = "/usr/bin/rclone";
const KEY = { accessKeyId: "minio", secretAccessKey: "minio123-secret" };
let s: TestServer;
let home: string;

async function requireTool(file: string, hint: string): Promise<void> {
  await fs.access(file).catch(() => {
    throw new Error(`${file} is missing: ${hint} (make client-tools installs it)`);
  });
}

function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: "/usr/bin:/bin",
    HOME: home,
    AWS_ACCESS_KEY_ID: KEY.accessKeyId,
    AWS_SECRET_ACCESS_KEY: KEY.secretAccessKey,
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_EC2_METADATA_DISABLED: "true",
    ...extra,
  };
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

async function nativeSha256(namespace: string, key: string): Promise<string | null> {
  const response = await fetch(`${s.url}/v1/namespaces/${namespace}/artifacts/${key.split("/").map(encodeURIComponent).join("/")}`, { method: "HEAD" });
  return response.status === 200 ? response.headers.get("x-checksum-sha256") : null;
}

beforeAll(async () => {
  await requireTool(AWS, "apt-get install awscli");
  await requireTool(RCLONE, "apt-get install rclone");
  await requireTool(PYTHON, "apt-get install python3-boto3");
  home = await tempDir("clients-home");
  s = await startTestServer({ S3_ACCESS_KEY: KEY.accessKeyId, S3_SECRET_KEY: KEY.secretAccessKey });
});

afterAll(async () => {
  await s.close();
});

describe("boto3", () => {
  it("put, get, head, paginated list, multipart upload_file and download_file, delete_objects, presigned URL", async () => {
    const work = await tempDir("boto3");
    const big = randomBytes(12 << 20);
    await fs.writeFile(path.join(work, "big.bin"), big);
    const script = `
import boto3, json, sys, urllib.request
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
out = {}
s3.put_object(Bucket="mlpipeline", Key="private-artifacts/team-a/boto/a b+c.txt", Body=b"hello boto")
out["get"] = s3.get_object(Bucket="mlpipeline", Key="private-artifacts/team-a/boto/a b+c.txt")["Body"].read().decode()
out["etag"] = s3.head_object(Bucket="team-a", Key="boto/a b+c.txt")["ETag"]
for i in range(7):
    s3.put_object(Bucket="team-a", Key=f"boto/many/{i}", Body=str(i).encode())
keys = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="team-a", Prefix="boto/", PaginationConfig={"PageSize": 3}):
    keys += [o["Key"] for o in page.get("Contents", [])]
out["keys"] = keys
cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
s3.upload_file(sys.argv[2] + "/big.bin", "team-a", "boto/big.bin", Config=cfg)
s3.download_file("team-a", "boto/big.bin", sys.argv[2] + "/back.bin", Config=cfg)
out["big_etag"] = s3.head_object(Bucket="team-a", Key="boto/big.bin")["ETag"]
# In us-east-1 boto3 presigns with Signature V2 by default; with s3v4 when asked.
url = s3.generate_presigned_url("get_object", Params={"Bucket": "team-a", "Key": "boto/a b+c.txt"}, ExpiresIn=60)
out["presigned"] = urllib.request.urlopen(url).read().decode()
v4 = boto3.client("s3", endpoint_url=sys.argv[1], config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
out["presigned_v4"] = urllib.request.urlopen(v4.generate_presigned_url("get_object", Params={"Bucket": "team-a", "Key": "boto/a b+c.txt"}, ExpiresIn=60)).read().decode()
v2 = boto3.client("s3", endpoint_url=sys.argv[1], config=Config(signature_version="s3", s3={"addressing_style": "path"}))
v2.put_object(Bucket="team-a", Key="boto/v2 header", Body=b"signed v2")
out["v2"] = v2.get_object(Bucket="team-a", Key="boto/v2 header")["Body"].read().decode()
wrong = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="minio", aws_secret_access_key="wrong", config=Config(signature_version="s3", s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
try:
    wrong.get_object(Bucket="team-a", Key="boto/v2 header")
except Exception as error:
    out["v2_wrong"] = error.response["Error"]["Code"]
deleted = s3.delete_objects(Bucket="team-a", Delete={"Objects": [{"Key": f"boto/many/{i}"} for i in range(7)]})
out["deleted"] = len(deleted.get("Deleted", []))
out["left"] = s3.list_objects_v2(Bucket="team-a", Prefix="boto/many/")["KeyCount"]
try:
    s3.get_object(Bucket="team-a", Key="boto/missing")
except s3.exceptions.NoSuchKey:
    out["missing"] = "NoSuchKey"
print(json.dumps(out))
`;
    const { stdout } = await run(PYTHON, ["-c", script, s.s3Url, work], { env: cleanEnv(), timeout: 90_000 });
    const out = JSON.parse(stdout) as Record<string, unknown>;
    expect(out).toMatchObject({
      get: "hello boto",
      etag: `"${createHash("md5").update("hello boto").digest("hex")}"`,
      presigned: "hello boto",
      presigned_v4: "hello boto",
      v2: "signed v2",
      v2_wrong: "SignatureDoesNotMatch",
      deleted: 7,
      left: 0,
      missing: "NoSuchKey",
    });
    expect(out.keys).toEqual(["boto/a b+c.txt", ...Array.from({ length: 7 }, (_, i) => `boto/many/${i}`)]);
    expect(String(out.big_etag)).toMatch(/^"[0-9a-f]{32}-3"$/);
    expect(sha256(await fs.readFile(path.join(work, "back.bin")))).toBe(sha256(big));
    expect(await nativeSha256("team-a", "boto/big.bin")).toBe(sha256(big));
  }, 120_000);
});

describe("aws CLI", () => {
  it("s3 cp (single and multipart), ls, sync, rm --recursive, s3api head-object", async () => {
    const work = await tempDir("awscli");
    await fs.mkdir(path.join(work, "dir/sub"), { recursive: true });
    const big = randomBytes(20 << 20);
    await fs.writeFile(path.join(work, "big.bin"), big);
    await fs.writeFile(path.join(work, "dir/one.txt"), "one");
    await fs.writeFile(path.join(work, "dir/sub/two words.txt"), "two");
    const aws = (...args: string[]) => run(AWS, ["--endpoint-url", s.s3Url, ...args], { env: cleanEnv(), timeout: 90_000 });
    await aws("s3", "cp", path.join(work, "big.bin"), "s3://mlpipeline/private-artifacts/team-b/cli/big.bin");
    expect(await nativeSha256("team-b", "cli/big.bin")).toBe(sha256(big));
    await aws("s3", "sync", path.join(work, "dir"), "s3://team-b/cli/dir");
    const listed = (await aws("s3", "ls", "--recursive", "s3://team-b/cli/")).stdout;
    expect(listed).toMatch(/cli\/big\.bin/);
    expect(listed).toMatch(/cli\/dir\/sub\/two words\.txt/);
    await aws("s3", "cp", "s3://team-b/cli/big.bin", path.join(work, "back.bin"));
    expect(sha256(await fs.readFile(path.join(work, "back.bin")))).toBe(sha256(big));
    const head = JSON.parse((await aws("s3api", "head-object", "--bucket", "team-b", "--key", "cli/dir/one.txt")).stdout) as { ETag: string; ContentLength: number };
    expect(head).toMatchObject({ ETag: `"${createHash("md5").update("one").digest("hex")}"`, ContentLength: 3 });
    await aws("s3", "rm", "--recursive", "s3://team-b/cli/");
    expect((await aws("s3", "ls", "--recursive", "s3://team-b/cli/").catch((error: { stdout: string }) => error)).stdout).toBe("");
  }, 120_000);
});

describe("rclone", () => {
  it("copy, check (MD5 ETags compared), lsf, delete", async () => {
    const work = await tempDir("rclone");
    await fs.mkdir(path.join(work, "src/nested"), { recursive: true });
    await fs.writeFile(path.join(work, "src/a.txt"), "alpha");
    await fs.writeFile(path.join(work, "src/nested/b c.bin"), randomBytes(6 << 20));
    const env = cleanEnv({
      RCLONE_CONFIG_KFP_TYPE: "s3",
      RCLONE_CONFIG_KFP_PROVIDER: "Other",
      RCLONE_CONFIG_KFP_ENDPOINT: s.s3Url,
      RCLONE_CONFIG_KFP_ACCESS_KEY_ID: KEY.accessKeyId,
      RCLONE_CONFIG_KFP_SECRET_ACCESS_KEY: KEY.secretAccessKey,
      RCLONE_CONFIG_KFP_FORCE_PATH_STYLE: "true",
      RCLONE_S3_UPLOAD_CUTOFF: "5M",
      RCLONE_S3_CHUNK_SIZE: "5M",
    });
    const rclone = (...args: string[]) => run(RCLONE, ["--config", "/dev/null", ...args], { env, timeout: 90_000 });
    await rclone("copy", path.join(work, "src"), "kfp:team-c/rclone");
    // check compares sizes and hashes: MD5 from the ETag for single-part objects.
    await rclone("check", path.join(work, "src"), "kfp:team-c/rclone");
    expect((await rclone("lsf", "-R", "kfp:team-c/rclone")).stdout.split("\n").filter(Boolean).sort()).toEqual(["a.txt", "nested/", "nested/b c.bin"]);
    await rclone("delete", "kfp:team-c/rclone");
    expect((await rclone("lsf", "-R", "kfp:team-c/rclone")).stdout).toBe("");
  }, 120_000);
});

describe("kubeflow/manifests' isolation test, with boto3", () => {
  it("one profile's keys read and write their own prefix and are denied on the other profile's", async () => {
    const api = await FakeKubeApi.start({
      rules: [
        { user: "system:serviceaccount:kubeflow-user-example-com:default-editor", namespace: "kubeflow-user-example-com", verbs: EDITOR_VERBS },
        { user: "system:serviceaccount:kubeflow-user-b:default-editor", namespace: "kubeflow-user-b", verbs: EDITOR_VERBS },
      ],
    });
    const master = "master-".repeat(6);
    const server = await startTestServer({ AUTH_MODE: "kubernetes", KUBECONFIG: await api.writeKubeconfig(await tempDir("kubeconfig")), S3_MASTER_KEY: master });
    try {
      const script = `
import boto3, sys
from botocore.config import Config
from botocore.exceptions import ClientError
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3], region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
s3.put_object(Bucket="mlpipeline", Key="private-artifacts/kubeflow-user-example-com/test.txt", Body=b"own")
assert s3.get_object(Bucket="mlpipeline", Key="private-artifacts/kubeflow-user-example-com/test.txt")["Body"].read() == b"own"
s3.list_objects_v2(Bucket="mlpipeline", Prefix="private-artifacts/kubeflow-user-example-com/")
for call in (
    lambda: s3.put_object(Bucket="mlpipeline", Key="private-artifacts/kubeflow-user-b/test.txt", Body=b"x"),
    lambda: s3.get_object(Bucket="mlpipeline", Key="private-artifacts/kubeflow-user-b/test.txt"),
    lambda: s3.list_objects_v2(Bucket="mlpipeline", Prefix="private-artifacts/kubeflow-user-b/"),
):
    try:
        call()
        print("ALLOWED"); sys.exit(1)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "AccessDenied", error.response
print("isolated")
`;
      const id = "kfp.kubeflow-user-example-com";
      const { stdout } = await run(PYTHON, ["-c", script, server.s3Url, id, deriveSecretKey(master, id)], { env: cleanEnv(), timeout: 60_000 });
      expect(stdout.trim()).toBe("isolated");
    } finally {
      await server.close();
      await api.stop();
    }
  }, 90_000);
});
