// A dedicated server holding only its namespace's key pair (S3_NAMESPACE_ACCESS_KEY/_SECRET_KEY), as the
// manager writes it into the namespace: the pair works there, is refused in every other namespace even
// where RBAC would allow its ServiceAccount, and no other key verifies — not the other namespaces' keys
// derived from the master key the shared server holds, nor the system key. The configuration refuses
// the pair next to anything another key could be derived from.
import { CreateAccessKeyCommand, IAMClient } from "@aws-sdk/client-iam";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, type KeyPair, s3Client } from "./clients.js";
import { loadConfig } from "../../src/config.js";
import { deriveSecretKey } from "../../src/s3/credentials.js";
import { EDITOR_VERBS, FakeKubeApi } from "../support/fake-kube-api.js";
import { listFiles, startTestServer, tempDir, type TestServer } from "../support/harness.js";

const MASTER_KEY = "the-shared-servers-master-key-0123456789";
const SYSTEM_KEY = { accessKeyId: "kubeflow-system", secretAccessKey: "system-secret-0123456789" };
const derived = (accessKeyId: string) => ({ accessKeyId, secretAccessKey: deriveSecretKey(MASTER_KEY, accessKeyId) });
const TEAM_A = derived("kfp.team-a");

let api: FakeKubeApi;
let s: TestServer;

const s3 = (credentials: KeyPair) => s3Client(s.s3Url, credentials);

beforeAll(async () => {
  // RBAC as loose as it gets: team-a's default-editor may edit artifacts in every namespace. Only the
  // key's own restriction keeps it in team-a.
  api = await FakeKubeApi.start({ rules: [{ user: "system:serviceaccount:team-a:default-editor", namespace: "*", verbs: EDITOR_VERBS }] });
  s = await startTestServer({
    AUTH_MODE: "kubernetes",
    KUBECONFIG: await api.writeKubeconfig(await tempDir("kubeconfig")),
    AUTH_CACHE_TTL_SECONDS: "0",
    SCOPE_NAMESPACE: "team-a",
    S3_NAMESPACE_ACCESS_KEY: TEAM_A.accessKeyId,
    S3_NAMESPACE_SECRET_KEY: TEAM_A.secretAccessKey,
  });
});

afterAll(async () => {
  await s.close();
  await api.stop();
});

describe("a dedicated server with its namespace's key pair only", () => {
  it("serves the pair in its namespace, under both bucket layouts, as the namespace's default-editor", async () => {
    const teamA = s3(TEAM_A);
    await teamA.send(new PutObjectCommand({ Bucket: "mlpipeline", Key: "private-artifacts/team-a/v2/artifacts/model.bin", Body: "weights" }));
    expect(api.received.subjectAccessReviews.at(-1)).toMatchObject({
      user: "system:serviceaccount:team-a:default-editor",
      resourceAttributes: { namespace: "team-a", verb: "writeArtifact" },
    });
    const read = await teamA.send(new GetObjectCommand({ Bucket: "team-a", Key: "v2/artifacts/model.bin" }));
    expect(await read.Body?.transformToString()).toBe("weights");
    const listed = await teamA.send(new ListObjectsV2Command({ Bucket: "mlpipeline", Prefix: "private-artifacts/team-a/" }));
    expect(listed.Contents?.map((object) => object.Key)).toEqual(["private-artifacts/team-a/v2/artifacts/model.bin"]);
  });

  it("refuses the pair in any other namespace with AccessDenied, before asking RBAC, and stores nothing", async () => {
    const teamA = s3(TEAM_A);
    const reviewsBefore = api.received.subjectAccessReviews.length;
    expect(await codeOf(teamA.send(new PutObjectCommand({ Bucket: "team-b", Key: "pwned.txt", Body: "x" })))).toBe("AccessDenied");
    expect(await codeOf(teamA.send(new PutObjectCommand({ Bucket: "mlpipeline", Key: "private-artifacts/team-b/pwned.txt", Body: "x" })))).toBe("AccessDenied");
    // The Kubeflow bucket's other keys belong to the system namespace.
    expect(await codeOf(teamA.send(new PutObjectCommand({ Bucket: "mlpipeline", Key: "pipelines/spec.yaml", Body: "x" })))).toBe("AccessDenied");
    expect(await codeOf(teamA.send(new GetObjectCommand({ Bucket: "kubeflow", Key: "pipelines/spec.yaml" })))).toBe("AccessDenied");
    expect(await codeOf(teamA.send(new ListObjectsV2Command({ Bucket: "team-b" })))).toBe("AccessDenied");
    expect(api.received.subjectAccessReviews.length).toBe(reviewsBefore);
    expect((await listFiles(s.root)).filter((file) => !file.startsWith("team-a/") && !file.startsWith(".kfp-artifacts/meta/team-a/"))).toEqual([]);
  });

  it("verifies no other key: other namespaces' master-derived keys, a ServiceAccount key of its own namespace, the system key", async () => {
    for (const credentials of [derived("kfp.team-b"), derived("kfp.kubeflow"), derived("kfp.team-a.pipeline-runner"), SYSTEM_KEY]) {
      const client = s3(credentials);
      expect(await codeOf(client.send(new GetObjectCommand({ Bucket: "team-a", Key: "v2/artifacts/model.bin" }))), credentials.accessKeyId).toBe("InvalidAccessKeyId");
      expect(await codeOf(client.send(new PutObjectCommand({ Bucket: "team-b", Key: "x", Body: "x" }))), credentials.accessKeyId).toBe("InvalidAccessKeyId");
    }
    // Its own key id with another secret (the master key itself, say) does not sign.
    const forged = s3({ accessKeyId: TEAM_A.accessKeyId, secretAccessKey: MASTER_KEY });
    expect(await codeOf(forged.send(new GetObjectCommand({ Bucket: "team-a", Key: "v2/artifacts/model.bin" })))).toBe("SignatureDoesNotMatch");
  });

  it("mints no keys: IAM CreateAccessKey is refused to the pair", async () => {
    const iam = new IAMClient({ endpoint: s.s3Url, region: "foobar", credentials: TEAM_A, maxAttempts: 1 });
    expect(await codeOf(iam.send(new CreateAccessKeyCommand({ UserName: "team-b" })))).toBe("AccessDenied");
    expect(await codeOf(iam.send(new CreateAccessKeyCommand({ UserName: "team-a" })))).toBe("AccessDenied");
  });
});

describe("the namespace key pair's configuration", () => {
  const pair = { SCOPE_NAMESPACE: "team-a", S3_NAMESPACE_ACCESS_KEY: TEAM_A.accessKeyId, S3_NAMESPACE_SECRET_KEY: TEAM_A.secretAccessKey };

  it("holds the pair alone, valid in the scope's namespace as its default ServiceAccount", () => {
    expect(loadConfig(pair).s3).toMatchObject({
      staticKey: undefined,
      masterKey: undefined,
      namespaceKey: { accessKeyId: "kfp.team-a", secretAccessKey: TEAM_A.secretAccessKey, namespace: "team-a", serviceAccount: "default-editor" },
    });
    // A pair independent of the master key (any key id outside the kfp. form) acts the same way.
    expect(loadConfig({ ...pair, S3_NAMESPACE_ACCESS_KEY: "AKIATEAMA0001" }).s3.namespaceKey).toMatchObject({ namespace: "team-a", serviceAccount: "default-editor" });
  });

  it.each([
    [{ ...pair, S3_MASTER_KEY: MASTER_KEY }, /cannot be combined with S3_ACCESS_KEY or S3_MASTER_KEY/],
    [{ ...pair, S3_ACCESS_KEY: SYSTEM_KEY.accessKeyId, S3_SECRET_KEY: SYSTEM_KEY.secretAccessKey }, /cannot be combined with S3_ACCESS_KEY or S3_MASTER_KEY/],
    [{ ...pair, SCOPE_NAMESPACE: undefined }, /S3_NAMESPACE_ACCESS_KEY: requires SCOPE_NAMESPACE/],
    [{ ...pair, SCOPE_NAMESPACE: "team-b" }, /"kfp.team-a" is not the key of the namespace team-b \(expected kfp.team-b\)/],
    [{ ...pair, S3_NAMESPACE_ACCESS_KEY: "kfp.team-a.pipeline-runner" }, /"kfp.team-a.pipeline-runner" is not the key of the namespace team-a/],
    [{ ...pair, S3_NAMESPACE_SECRET_KEY: undefined }, /S3_NAMESPACE_ACCESS_KEY and S3_NAMESPACE_SECRET_KEY: set both or neither/],
  ])("refuses %o", (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });
});
