// S3 keys as Kubernetes identities, through the real Kubernetes client against the local stand-in of
// the API server: a namespace key acts as that namespace's default-editor and is denied in another
// namespace (the assertions of kubeflow/manifests' isolation test, with boto3's sibling the AWS SDK);
// the system key acts as its configured user; Kubeflow's profile controller obtains each profile's key
// through IAM CreateAccessKey; the API server down fails closed.
import { CreateAccessKeyCommand, IAMClient, PutUserPolicyCommand } from "@aws-sdk/client-iam";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, type KeyPair, s3Client } from "./clients.js";
import { deriveSecretKey } from "../../src/s3/credentials.js";
import { EDITOR_VERBS, FakeKubeApi } from "../support/fake-kube-api.js";
import { listFiles, startTestServer, tempDir, type TestServer } from "../support/harness.js";

const SYSTEM_KEY = { accessKeyId: "kubeflow-system", secretAccessKey: "system-secret-0123456789" };
const SYSTEM_USER = "kfp-artifacts:s3-system-key";
const MASTER_KEY = "m".repeat(16) + "0123456789abcdef0123";
let api: FakeKubeApi;
let s: TestServer;

const namespaceKey = (namespace: string) => ({ accessKeyId: `kfp.${namespace}`, secretAccessKey: deriveSecretKey(MASTER_KEY, `kfp.${namespace}`) });

const s3 = (credentials: KeyPair) => s3Client(s.s3Url, credentials);

beforeAll(async () => {
  api = await FakeKubeApi.start({
    rules: [
      { user: "system:serviceaccount:team-a:default-editor", namespace: "team-a", verbs: EDITOR_VERBS },
      { user: "system:serviceaccount:team-b:default-editor", namespace: "team-b", verbs: EDITOR_VERBS },
      { user: SYSTEM_USER, namespace: "*", verbs: [...EDITOR_VERBS, "createArtifactCredentials"] },
    ],
  });
  const kubeconfig = await api.writeKubeconfig(await tempDir("kubeconfig"));
  s = await startTestServer({
    AUTH_MODE: "kubernetes",
    KUBECONFIG: kubeconfig,
    AUTH_CACHE_TTL_SECONDS: "0",
    S3_ACCESS_KEY: SYSTEM_KEY.accessKeyId,
    S3_SECRET_KEY: SYSTEM_KEY.secretAccessKey,
    S3_ACCESS_KEY_USER: SYSTEM_USER,
    S3_MASTER_KEY: MASTER_KEY,
    LOG_LEVEL: "info",
  });
});

afterAll(async () => {
  await s.close();
  await api.stop();
});

describe("S3 keys authorized as Kubernetes identities", () => {
  it("a namespace key writes under its own prefix and is denied under another namespace's; nothing stored there", async () => {
    const teamA = s3(namespaceKey("team-a"));
    await teamA.send(new PutObjectCommand({ Bucket: "mlpipeline", Key: "private-artifacts/team-a/v2/artifacts/ok.txt", Body: "mine" }));
    expect(await (await teamA.send(new GetObjectCommand({ Bucket: "mlpipeline", Key: "private-artifacts/team-a/v2/artifacts/ok.txt" }))).Body?.transformToString()).toBe("mine");
    const review = api.received.subjectAccessReviews.at(-1);
    expect(review?.user).toBe("system:serviceaccount:team-a:default-editor");
    expect(review?.groups).toEqual(expect.arrayContaining(["system:serviceaccounts", "system:serviceaccounts:team-a"]));

    await s3(namespaceKey("team-b")).send(new PutObjectCommand({ Bucket: "mlpipeline", Key: "private-artifacts/team-b/v2/artifacts/theirs.txt", Body: "theirs" }));
    expect(await codeOf(teamA.send(new PutObjectCommand({ Bucket: "mlpipeline", Key: "private-artifacts/team-b/v2/artifacts/pwned.txt", Body: "x" })))).toBe("AccessDenied");
    expect(await codeOf(teamA.send(new GetObjectCommand({ Bucket: "mlpipeline", Key: "private-artifacts/team-b/v2/artifacts/theirs.txt" })))).toBe("AccessDenied");
    expect(await codeOf(teamA.send(new ListObjectsV2Command({ Bucket: "mlpipeline", Prefix: "private-artifacts/team-b/" })))).toBe("AccessDenied");
    expect(await codeOf(teamA.send(new GetObjectCommand({ Bucket: "team-b", Key: "v2/artifacts/theirs.txt" })))).toBe("AccessDenied");
    expect((await listFiles(s.root)).filter((file) => file.startsWith("team-b/"))).toEqual(["team-b/v2/artifacts/theirs.txt"]);

    // The audit line and the metrics name the S3 operation, the key's identity and the decision.
    const denied = s.logs.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.msg === "request" && line.route === "s3:PutObject" && line.decision === "deny");
    expect(denied).toMatchObject({ namespace: "team-b", key: "v2/artifacts/pwned.txt", status: 403, user: "system:serviceaccount:team-a:default-editor", verb: "writeArtifact", s3Error: "AccessDenied" });
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/kfp_artifacts_http_requests_total\{route="s3:PutObject",method="PUT",status="403"\} 1/);
  });

  it("a key id naming a namespace with a forged secret, and a key of no namespace, are refused", async () => {
    const forged = s3({ accessKeyId: "kfp.team-b", secretAccessKey: namespaceKey("team-a").secretAccessKey });
    expect(await codeOf(forged.send(new GetObjectCommand({ Bucket: "team-b", Key: "v2/artifacts/theirs.txt" })))).toBe("SignatureDoesNotMatch");
    const nonsense = s3({ accessKeyId: "kfp.NOT_A_NAMESPACE", secretAccessKey: "whatever-secret" });
    expect(await codeOf(nonsense.send(new GetObjectCommand({ Bucket: "team-b", Key: "x" })))).toBe("InvalidAccessKeyId");
  });

  it("the system key acts as its configured user everywhere it is granted (KFP's API server and UI)", async () => {
    const system = s3(SYSTEM_KEY);
    await system.send(new PutObjectCommand({ Bucket: "mlpipeline", Key: "pipelines/spec.yaml", Body: "spec" }));
    expect(api.received.subjectAccessReviews.at(-1)).toMatchObject({ user: SYSTEM_USER, resourceAttributes: { namespace: "kubeflow", verb: "writeArtifact" } });
    expect(await (await system.send(new GetObjectCommand({ Bucket: "mlpipeline", Key: "private-artifacts/team-b/v2/artifacts/theirs.txt" }))).Body?.transformToString()).toBe("theirs");
  });

  it("Kubeflow's profile controller gets each profile's key through IAM CreateAccessKey, and that key works", async () => {
    const iam = new IAMClient({ endpoint: s.s3Url, region: "foobar", credentials: SYSTEM_KEY, maxAttempts: 1 });
    const created = await iam.send(new CreateAccessKeyCommand({ UserName: "team-c" }));
    expect(created.AccessKey?.AccessKeyId).toBe("kfp.team-c");
    expect(api.received.subjectAccessReviews.at(-1)).toMatchObject({ user: SYSTEM_USER, resourceAttributes: { namespace: "team-c", verb: "createArtifactCredentials" } });
    await iam.send(new PutUserPolicyCommand({ UserName: "team-c", PolicyName: "KubeflowProjectteam-c", PolicyDocument: "{}" }));
    api.rules.push({ user: "system:serviceaccount:team-c:default-editor", namespace: "team-c", verbs: EDITOR_VERBS });
    const key = { accessKeyId: created.AccessKey?.AccessKeyId ?? "", secretAccessKey: created.AccessKey?.SecretAccessKey ?? "" };
    await s3(key).send(new PutObjectCommand({ Bucket: "mlpipeline", Key: "private-artifacts/team-c/x", Body: "c" }));
    // A namespace key may not mint keys.
    const asTeam = new IAMClient({ endpoint: s.s3Url, region: "foobar", credentials: namespaceKey("team-a"), maxAttempts: 1 });
    expect(await codeOf(asTeam.send(new CreateAccessKeyCommand({ UserName: "team-b" })))).toBe("AccessDenied");
  });

  it("fails closed when the API server cannot answer: 503, nothing stored", async () => {
    api.failure = { kind: "status", status: 500 };
    try {
      const teamA = s3(namespaceKey("team-a"));
      expect(await codeOf(teamA.send(new PutObjectCommand({ Bucket: "team-a", Key: "while-down", Body: "x" })))).toBe("ServiceUnavailable");
    } finally {
      api.failure = { kind: "none" };
    }
    expect((await listFiles(s.root)).filter((file) => file.includes("while-down"))).toEqual([]);
  });
});
