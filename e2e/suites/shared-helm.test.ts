// Shared (central) server installed with Helm, with two server processes in its pod: the common
// contract, the S3 endpoint as Kubeflow uses it, then what only a Helm release has: an upgrade that changes configuration, `helm test`, and
// `helm uninstall` keeping the PVC.
//
// The S3 part lays the release out as Kubeflow would: the system key in `mlpipeline-minio-artifact` next
// to the server, the `seaweedfs` and `minio-service` aliases (the release namespace plays `kubeflow`),
// each tenant's `default-editor` bound to Kubeflow's aggregated `kubeflow-pipelines-edit`, and team-a's
// namespace key (derived here from the system secret key, as the server derives it) in team-a's own
// `mlpipeline-minio-artifact`, where pods running the Go S3 clients of KFP's launcher and Argo read it.
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { freeLoopbackPort } from "../../scripts/docs/readme.js";
import { parseRecipe, recipeScript, variants } from "../../scripts/docs/recipe.js";
import { artifactUrl, ClientPod, listUrl, serviceUrl } from "../support/clients.js";
import { apply, apps, core, waitForPersistentVolumeClaimBound } from "../support/kube.js";
import { fullname, helmInstall, helmTest, helmUninstall, helmUpgrade, type Release, type Values } from "../support/install.js";
import { run } from "../support/commands.js";
import { env, REPO_ROOT } from "../support/env.js";
import { concurrently } from "../support/poll.js";
import {
  createKubeflowPipelinesEditRole,
  deleteKubeflowPipelinesEditRole,
  goClientsImage,
  isolationChecks,
  KUBEFLOW_PIPELINES_EDIT,
  KUBEFLOW_S3_SECRET,
  namespaceKey,
  profileEditor,
  s3KeySecret,
  signedIamRequest,
  startGoClients,
  waitForGoClients,
  waitForKubeflowPipelinesEditAggregation,
  xmlText,
  type S3Key,
} from "../support/s3.js";
import { describeSharedServer, SURVIVOR, type SharedServer } from "../support/shared-contract.js";
import { e2eSuite } from "../support/suite.js";
import { createTenants, roleBinding } from "../support/tenants.js";

const suite = e2eSuite("shared-helm");
const TRUSTED_USER = "alice@example.com";
/** The static "system" key, in the Secret Kubeflow's API server, UI and profile controller read. */
const SYSTEM_KEY: S3Key = { accessKeyId: `e2e-system-${randomBytes(4).toString("hex")}`, secretAccessKey: randomBytes(30).toString("base64url") };
const S3_PORT = 9000;
const baseValues = (): Values => ({
  persistence: { size: "1Gi" },
  // Two server processes behind the pod's ports (SERVER_PROCESSES): the whole shared contract below,
  // the S3 clients, the upgrade and the pod deletion run against a primary and two servers in the image.
  processes: 2,
  s3: { systemNamespace: release.namespace, credentials: { existingSecret: KUBEFLOW_S3_SECRET }, aliases: { seaweedfs: true, minioService: true } },
});

let release: Release;
let name: string;
let server: SharedServer;
let goImage: string;
let uninstalled = false;

suite.setup(async () => {
  release = { name: suite.name("e2e"), namespace: await suite.namespace("e2e-central") };
  name = fullname(release.name);
  suite.onCleanup("helm uninstall", async () => {
    if (!uninstalled) await helmUninstall(release);
  });
  await apply([s3KeySecret(release.namespace, SYSTEM_KEY)]);
  // The Go clients' image is built (or found unchanged) and loaded while the server starts.
  [, goImage] = await concurrently(helmInstall(release, baseValues()), goClientsImage());
  const [teamA, teamB] = await createTenants(suite, ["e2e-team-a", "e2e-team-b"], { editClusterRole: `${name}-edit` });
  if (teamA === undefined || teamB === undefined) throw new Error("tenants missing");
  await createKubeflowPipelinesEditRole();
  suite.onCleanup(`delete ClusterRole ${KUBEFLOW_PIPELINES_EDIT}`, deleteKubeflowPipelinesEditRole);
  await apply([
    // A person (as the trusted header names them) who may read team-a's artifacts, for the upgrade test.
    roleBinding(teamA.namespace, "alice-artifacts-view", `${name}-view`, { apiGroup: "rbac.authorization.k8s.io", kind: "User", name: TRUSTED_USER }),
    ...profileEditor(teamA.namespace, KUBEFLOW_PIPELINES_EDIT),
    ...profileEditor(teamB.namespace, KUBEFLOW_PIPELINES_EDIT),
    s3KeySecret(teamA.namespace, namespaceKey(SYSTEM_KEY.secretAccessKey, teamA.namespace)),
  ]);
  await waitForKubeflowPipelinesEditAggregation();
  server = {
    url: serviceUrl(name, release.namespace),
    namespace: release.namespace,
    podSelector: `app.kubernetes.io/instance=${release.name},app.kubernetes.io/component=server`,
    replicas: 1,
    teamA,
    teamB,
  };
  // A first build of the Go clients takes minutes.
}, 420_000);

/** Both Go client pods start together, after the server pod deletion test, and each S3 test awaits its own. */
let goClientsStarted: Promise<void> | undefined;
const startGoClientPods = () =>
  (goClientsStarted ??= startGoClients(goImage, [
    {
      namespace: server.teamA.namespace,
      name: "s3-isolation",
      endpoint: `${name}.${release.namespace}.svc:${S3_PORT}`,
      scenario: "denied",
      bucket: "mlpipeline",
      prefix: `private-artifacts/${server.teamB.namespace}/`,
      allowedBucket: "mlpipeline",
      allowedPrefix: `private-artifacts/${server.teamA.namespace}/`,
    },
    {
      namespace: server.teamA.namespace,
      name: "s3-kfp-launcher",
      // The launcher's default endpoint is `seaweedfs.kubeflow:9000`.
      endpoint: `seaweedfs.${release.namespace}:${S3_PORT}`,
      scenario: "kfp-launcher",
      bucket: "mlpipeline",
      prefix: `private-artifacts/${server.teamA.namespace}/v2/artifacts/`,
    },
  ]));

/** A Service's ports as `{name: [port, targetPort]}`. */
async function servicePorts(service: string): Promise<Record<string, [number, string | number]>> {
  const ports = (await core.readNamespacedService({ name: service, namespace: release.namespace })).spec?.ports ?? [];
  return Object.fromEntries(ports.map((port): [string, [number, string | number]] => [port.name ?? "", [port.port, String(port.targetPort)]]));
}

describe("shared server, Helm", () => {
  describeSharedServer(() => server);

  it("serves from both of its processes: /metrics through the Service combines them", async () => {
    const answer = await server.teamA.client.request({ url: `${server.url}/metrics`, credential: "none" });
    expect(answer.status).toBe(200);
    expect(answer.text).toMatch(/^kfp_artifacts_server_processes 2$/m);
  });

  it("answers S3 on the Service's http-s3 port and through the seaweedfs and minio-service aliases", async () => {
    const ns = release.namespace;
    expect(await servicePorts(name)).toMatchObject({ "http-s3": [S3_PORT, "s3"] });
    expect(await servicePorts("seaweedfs")).toEqual({ "http-s3-compat": [9000, "s3"], "http-s3": [8333, "s3"], "http-iam": [8111, "s3"] });
    expect(await servicePorts("minio-service")).toEqual({ "http-s3": [9000, "s3"] });
    const bases = [serviceUrl(name, ns, S3_PORT), serviceUrl("seaweedfs", ns, 9000), serviceUrl("seaweedfs", ns, 8333), serviceUrl("seaweedfs", ns, 8111), serviceUrl("minio-service", ns, 9000)];
    const answers = await server.teamA.client.requestAll(bases.map((base) => ({ url: `${base}/mlpipeline?list-type=2`, credential: "none" as const })));
    answers.forEach((answer, index) => {
      // An unsigned request: the S3 listener's own refusal, in S3's XML.
      expect(answer.status, bases[index]).toBe(403);
      expect(answer.headers["content-type"], bases[index]).toMatch(/xml/);
      expect(xmlText(answer.text, "Code"), bases[index]).toBe("AccessDenied");
    });
  });

  it("issues team-a's key to the system key through IAM CreateAccessKey on seaweedfs:8111, as Kubeflow's profile controller asks", async () => {
    const { teamA, teamB } = server;
    const iam = `${serviceUrl("seaweedfs", release.namespace, 8111)}/`;
    const teamAKey = namespaceKey(SYSTEM_KEY.secretAccessKey, teamA.namespace);
    const policy = JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Action: ["s3:*"], Resource: [`arn:aws:s3:::mlpipeline/private-artifacts/${teamA.namespace}/*`] }],
    });
    const [created, policyPut, byNamespaceKey] = await teamA.client.requestAll([
      await signedIamRequest(iam, SYSTEM_KEY, { Action: "CreateAccessKey", UserName: teamA.namespace }),
      await signedIamRequest(iam, SYSTEM_KEY, { Action: "PutUserPolicy", UserName: teamA.namespace, PolicyName: "KubeflowProfile", PolicyDocument: policy }),
      // Only the system key issues keys: a namespace key asking for another namespace's is refused.
      await signedIamRequest(iam, teamAKey, { Action: "CreateAccessKey", UserName: teamB.namespace }),
    ] as const);
    expect(created.status, created.text).toBe(200);
    // The pair the pods below hold: what the profile controller would write into team-a's Secret.
    expect(xmlText(created.text, "AccessKeyId")).toBe(teamAKey.accessKeyId);
    expect(xmlText(created.text, "SecretAccessKey")).toBe(teamAKey.secretAccessKey);
    expect(policyPut.status, policyPut.text).toBe(200);
    expect(byNamespaceKey.status, byNamespaceKey.text).toBe(403);
    expect(xmlText(byNamespaceKey.text, "Code")).toBe("AccessDenied");
  });

  it("keeps a namespace key to its namespace (kubeflow/manifests' isolation test): team-a's pod writes under mlpipeline/private-artifacts/<team-a>/, AccessDenied under <team-b>/", async () => {
    const { url, teamA, teamB } = server;
    await startGoClientPods();
    const result = await waitForGoClients(teamA.namespace, "s3-isolation");
    expect(result.exitCode, result.logs).toBe(0);
    const allowed = `mlpipeline/private-artifacts/${teamA.namespace}/`;
    const denied = `mlpipeline/private-artifacts/${teamB.namespace}/`;
    for (const check of isolationChecks(allowed, denied)) expect(result.logs, result.logs).toContain(`ok   ${check}\n`);
    expect(result.logs).toMatch(/^denied: \d+ passed, 0 failed$/m);
    // Nothing reached team-b's namespace.
    const list = await teamB.client.request({ url: listUrl(url, teamB.namespace, "go-clients-denied/") });
    expect(list.status, list.text).toBe(200);
    expect(ClientPod.json<{ items: unknown[] }>(list).items).toEqual([]);
  });

  it("runs KFP's launcher S3 client (gocloud.dev s3blob over aws-sdk-go-v2) in a pod against seaweedfs.<ns>:9000 with team-a's key", async () => {
    const { teamA } = server;
    await startGoClientPods();
    const result = await waitForGoClients(teamA.namespace, "s3-kfp-launcher");
    expect(result.exitCode, result.logs).toBe(0);
    expect(result.logs).toContain(`against http://seaweedfs.${release.namespace}:${S3_PORT} bucket "mlpipeline" prefix "private-artifacts/${teamA.namespace}/v2/artifacts/"`);
    expect(result.logs).toMatch(/^kfp-launcher: \d+ passed, 0 failed$/m);
  });

  it("runs docs/get-artifacts.md as written: curl -OJ and the aws CLI download team-a's artifact through port-forwards", async () => {
    const { teamA } = server;
    const recipe = parseRecipe(await readFile(path.join(REPO_ROOT, "docs/get-artifacts.md"), "utf8"));
    const [localPort, localS3Port] = await Promise.all([freeLoopbackPort(), freeLoopbackPort()]);
    const settings = {
      NAMESPACE: teamA.namespace,
      KEY: SURVIVOR.key,
      SERVER_NAMESPACE: release.namespace,
      SERVER: name,
      LOCAL_PORT: String(localPort),
      LOCAL_S3_PORT: String(localS3Port),
    };
    const dir = await mkdtemp(path.join(tmpdir(), "e2e-get-artifacts-"));
    try {
      // The page's kubectl is the project's, against the e2e cluster (run() sets KUBECONFIG).
      await run("bash", ["-c", recipeScript(recipe, settings)], {
        cwd: dir,
        timeoutMs: 90_000,
        env: { PATH: `${path.dirname(env.kubectl)}:${process.env.PATH ?? ""}` },
      });
      const fileName = SURVIVOR.key.split("/").at(-1) ?? "";
      for (const variant of variants(recipe)) {
        expect(await readFile(path.join(dir, variant, fileName), "utf8"), variant).toBe(SURVIVOR.content);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("keeps artifacts through a helm upgrade that turns on the trusted kubeflow-userid header", async () => {
    await helmUpgrade(release, { ...baseValues(), auth: { trustedUserHeader: "kubeflow-userid" }, logLevel: "debug" });
    const { url, teamA, teamB } = server;
    const target = artifactUrl(url, teamA.namespace, SURVIVOR.key);
    const [owner, trustedReader, trustedWriter, unknownUser] = await teamB.client.requestAll([
      { url: target, credential: "none", headers: { "kubeflow-userid": teamA.user } },
      { url: target, credential: "none", headers: { "kubeflow-userid": TRUSTED_USER } },
      { url: target, method: "PUT", body: { text: "alice may only read" }, credential: "none", headers: { "kubeflow-userid": TRUSTED_USER } },
      { url: target, credential: "none", headers: { "kubeflow-userid": "mallory@example.com" } },
    ] as const);
    // The header now names the caller: team-a's ServiceAccount and alice may read, alice may not write.
    expect(owner.status).toBe(200);
    expect(owner.text).toBe(SURVIVOR.content);
    expect(trustedReader.status).toBe(200);
    expect(trustedReader.text).toBe(SURVIVOR.content);
    expect(trustedWriter.status).toBe(403);
    expect(unknownUser.status).toBe(403);
    const viaToken = await teamA.client.request({ url: target });
    expect(viaToken.status).toBe(200);
    expect(viaToken.text).toBe(SURVIVOR.content);
  });

  it("passes helm test", async () => {
    const output = await helmTest(release);
    expect(output).toMatch(/Phase:\s+Succeeded/);
    expect(output).toContain('"ok":true');
  });

  it("keeps the PVC on helm uninstall", async () => {
    const claim = fullname(release.name);
    await helmUninstall(release);
    uninstalled = true;
    const pvc = await core.readNamespacedPersistentVolumeClaim({ name: claim, namespace: release.namespace });
    expect(pvc.metadata?.deletionTimestamp).toBeUndefined();
    expect(pvc.metadata?.annotations?.["helm.sh/resource-policy"]).toBe("keep");
    await waitForPersistentVolumeClaimBound(release.namespace, claim);
    await expect(apps.readNamespacedDeployment({ name: claim, namespace: release.namespace })).rejects.toMatchObject({ code: 404 });
  });
});
