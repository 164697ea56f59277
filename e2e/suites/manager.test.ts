// The server manager in a real cluster, from one Helm release (shared server + manager, the chart's
// defaults): namespaces labelled for Kubeflow cost no pod until their kfp-launcher ConfigMap opts in; then
// the manager brings up a scoped server (the chart's quota honoured) the shared server's filesystem-storage config names; opting out
// removes the workload and keeps the claim, opting back in finds the data again; a manager killed in the
// middle of a reconcile converges after its restart. The dedicated server answers S3 where kfp-launcher's
// providers (merged by the manager) send KFP's launcher, with the namespace's own key pair and for that
// namespace only. Also measures opt-in-to-available and the manager's RSS.
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { loadYaml, type V1ConfigMap } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { artifactUrl, ClientPod, serviceUrl } from "../support/clients.js";
import { kubectl } from "../support/commands.js";
import { env } from "../support/env.js";
import { fullname, helmInstall, helmUninstall, type Release } from "../support/install.js";
import { apply, apps, core, listPods, podReady, waitForDeploymentAvailable, waitForPersistentVolumeClaimBound } from "../support/kube.js";
import { concurrently, poll } from "../support/poll.js";
import {
  goClientsImage,
  isolationChecks,
  namespaceKey,
  profileEditor,
  signedS3Request,
  startGoClients,
  waitForGoClients,
  xmlText,
  type S3SecretRef,
} from "../support/s3.js";
import { e2eSuite } from "../support/suite.js";
import { startTenantClients, type Tenant } from "../support/tenants.js";

const suite = e2eSuite("manager");
const KUBEFLOW_LABEL = "pipelines.kubeflow.org/enabled";
const SHARED_NAMESPACES = 20;
// The chart's namespace quota reaches the manager's servers too. Room for the KFP launcher client's 7 MiB
// multipart upload; the quota test fills it to 20,000 bytes below with one write and is then refused a
// 40,000-byte one, small enough to fit in socket buffers, so the client finishes sending before the 507.
const QUOTA_BYTES = 16 * 1024 * 1024;
const CHUNK_BYTES = 40_000;
const FILL_BYTES = QUOTA_BYTES - CHUNK_BYTES / 2;
const LAUNCHER = "kfp-launcher";
/** The master key namespace keys are derived from, given to the release by reference (s3.masterKey). */
const MASTER_KEY = randomBytes(32).toString("base64url");
const MASTER_KEY_SECRET = "e2e-s3-master-key";

interface NamespaceStatus {
  condition: string;
  dedicated: boolean;
  endpoint?: string;
  message: string;
}

let release: Release;
let name: string;
/** Labelled for Kubeflow, shared-mode kfp-launcher; the first one opts in later. */
const namespaces: string[] = [];
let optIn: string;
let tenant: Tenant;
let goImage: string;
const figures: Record<string, number | string> = {};

const server = () => `${name}-${optIn}`;
const dedicatedUrl = () => serviceUrl(server(), optIn);
const sharedUrl = () => serviceUrl(name, release.namespace);

function launcherConfigMap(namespace: string, block: string | undefined): V1ConfigMap {
  return {
    metadata: { name: LAUNCHER, namespace },
    // The root Kubeflow's profile controller writes.
    data: { defaultPipelineRoot: `minio://mlpipeline/private-artifacts/${namespace}/v2/artifacts`, ...(block === undefined ? {} : { artifactServer: block }) },
  };
}

/** The namespace owner changes the block alone (`kubectl patch`, `kubectl apply` of their keys): the manager's `providers` stays. */
async function setBlock(namespace: string, block: string): Promise<void> {
  await kubectl(["patch", "configmap", LAUNCHER, "-n", namespace, "--type", "merge", "-p", JSON.stringify({ data: { artifactServer: block } })], { timeoutMs: 30_000 });
}

async function managerStatus(): Promise<Record<string, NamespaceStatus>> {
  const configMap = await core.readNamespacedConfigMap({ name: `${name}-manager-status`, namespace: release.namespace });
  const text = configMap.data?.["namespaces.json"];
  return text ? (JSON.parse(text) as Record<string, NamespaceStatus>) : {};
}

async function waitForCondition(targets: readonly string[], condition: string, timeoutMs = 60_000): Promise<Record<string, NamespaceStatus>> {
  return poll(
    async () => {
      const status = await managerStatus();
      return targets.every((namespace) => status[namespace]?.condition === condition) ? status : undefined;
    },
    { timeoutMs, intervalMs: 250, what: `the manager's status to say ${condition} for ${targets.join(", ")}` },
  );
}

const isNotFound = (error: unknown) => typeof error === "object" && error !== null && "code" in error && error.code === 404;

async function gone(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read();
    return false;
  } catch (error) {
    if (isNotFound(error)) return true;
    throw error;
  }
}

/** Waits with a fine interval, for the timing figures. */
async function waitAvailable(namespace: string, deployment: string, timeoutMs = 120_000): Promise<void> {
  await poll(
    async () => {
      const current = await apps.readNamespacedDeployment({ name: deployment, namespace }).catch((error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
      const status = current?.status;
      return current !== undefined &&
        (status?.observedGeneration ?? 0) >= (current.metadata?.generation ?? 1) &&
        status?.availableReplicas === (current.spec?.replicas ?? 1) &&
        status.updatedReplicas === (current.spec?.replicas ?? 1)
        ? true
        : undefined;
    },
    { timeoutMs, intervalMs: 250, what: `Deployment ${namespace}/${deployment} to exist and be available` },
  );
}

const serverPodSelector = () => `app.kubernetes.io/component=dedicated-server,app.kubernetes.io/instance=${release.name}`;
const managerSelector = () => `app.kubernetes.io/component=manager,app.kubernetes.io/instance=${release.name}`;

/** The manager's metrics through the API server's pod proxy (no Service, no client pod needed). */
async function managerMetrics(): Promise<string> {
  const [pod] = await waitForReadyPodsNamed(release.namespace, managerSelector());
  const { stdout } = await kubectl(["get", "--raw", `/api/v1/namespaces/${release.namespace}/pods/${pod}:8080/proxy/metrics`], { timeoutMs: 30_000 });
  return stdout;
}

async function waitForReadyPodsNamed(namespace: string, selector: string): Promise<string[]> {
  return poll(
    async () => {
      const pods = await listPods(namespace, selector);
      return pods.length === 1 && pods.every(podReady) ? pods.map((pod) => pod.metadata?.name ?? "") : undefined;
    },
    { timeoutMs: 120_000, what: `one Ready pod matching ${selector} in ${namespace}` },
  );
}

const metric = (text: string, metricName: string) => {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${metricName} `) || candidate.startsWith(`${metricName}{`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
};

suite.setup(async () => {
  release = { name: suite.name("e2e"), namespace: await suite.namespace("e2e-mgr") };
  name = fullname(release.name);
  const labels = { [KUBEFLOW_LABEL]: "true" };
  suite.onCleanup("helm uninstall", () => helmUninstall(release));
  // Last registered, first run: the figures measured so far, even when a later test failed.
  suite.onCleanup("write the figures", async () => {
    await mkdir(env.workDir, { recursive: true });
    await writeFile(path.join(env.workDir, "manager-figures.json"), `${JSON.stringify(figures, null, 2)}\n`);
    console.log(`manager figures: ${JSON.stringify(figures)}`);
  });
  // Namespaces first: the manager's first list sees them all at once, as after a restart in a real cluster.
  for (let index = 0; index < SHARED_NAMESPACES; index++) namespaces.push(await suite.namespace(`e2e-mgr-${index}`, labels));
  // Half say `dedicated: false`, half have no artifactServer key at all: both mean shared.
  for (const [index, namespace] of namespaces.entries()) {
    await core.createNamespacedConfigMap({ namespace, body: launcherConfigMap(namespace, index % 2 === 0 ? "dedicated: false\n" : undefined) });
  }
  [optIn = ""] = namespaces;
  // The manager's default selector: pipelines.kubeflow.org/enabled=true. Another release's manager in the
  // same cluster would also serve an opted-in namespace here (under its own names), so every assertion on
  // an opted-in namespace names this release's objects.
  await core.createNamespacedSecret({ namespace: release.namespace, body: { metadata: { name: MASTER_KEY_SECRET }, stringData: { masterkey: MASTER_KEY } } });
  const installing = performance.now();
  // The Go clients' image is built (or found unchanged) and loaded while the release starts.
  [, goImage] = await concurrently(
    helmInstall(release, {
      persistence: { size: "1Gi" },
      limits: { namespaceQuotaBytes: String(QUOTA_BYTES) },
      s3: { masterKey: { existingSecret: MASTER_KEY_SECRET, key: "masterkey" } },
      tests: { enabled: false },
    }),
    goClientsImage(),
  );
  figures.installSeconds = (performance.now() - installing) / 1000;
});

describe("the server manager", () => {
  it("creates nothing in labelled namespaces that stay shared, once it has seen them", async () => {
    const status = await waitForCondition(namespaces, "Shared");
    for (const namespace of namespaces) {
      expect(status[namespace]?.dedicated).toBe(false);
      const [pods, deployments, claims, services] = await Promise.all([
        core.listNamespacedPod({ namespace }),
        apps.listNamespacedDeployment({ namespace }),
        core.listNamespacedPersistentVolumeClaim({ namespace }),
        core.listNamespacedService({ namespace }),
      ]);
      expect(pods.items.map((pod) => pod.metadata?.name), `pods in ${namespace}`).toEqual([]);
      expect(deployments.items, `Deployments in ${namespace}`).toEqual([]);
      expect(claims.items, `PVCs in ${namespace}`).toEqual([]);
      expect(services.items, `Services in ${namespace}`).toEqual([]);
    }
    const text = await managerMetrics();
    expect(metric(text, "kfp_artifacts_manager_leader")).toBe(1);
    expect(metric(text, "kfp_artifacts_manager_dedicated_servers") ?? 0).toBe(0);
  });

  it("brings up a scoped, Ready server that honours the quota when a namespace opts in", async () => {
    const started = performance.now();
    await setBlock(optIn, "dedicated: true\n");
    await waitAvailable(optIn, server());
    figures.optInToAvailableSeconds = (performance.now() - started) / 1000;
    const status = await waitForCondition([optIn], "Dedicated");
    expect(status[optIn]?.endpoint).toBe(dedicatedUrl());
    await waitForPersistentVolumeClaimBound(optIn, server());
    const claim = await core.readNamespacedPersistentVolumeClaim({ name: server(), namespace: optIn });
    expect(claim.metadata?.annotations?.["pipelines.kubeflow.org/artifact-volume"]).toBe("keep");
    // The other shared namespaces are still empty.
    for (const namespace of namespaces.slice(1)) expect((await core.listNamespacedPod({ namespace })).items).toEqual([]);

    [tenant] = (await startTenantClients([optIn], { editClusterRole: `${name}-edit` })) as [Tenant];
    const other = namespaces[1] ?? "";
    const [ready, put, get, foreign] = await tenant.client.requestAll([
      { url: `${dedicatedUrl()}/readyz`, credential: "none" },
      { url: artifactUrl(dedicatedUrl(), optIn, "managed/model.txt"), method: "PUT", body: { text: "kept across opt-out" } },
      { url: artifactUrl(dedicatedUrl(), optIn, "managed/model.txt") },
      // Scope before authorization: another namespace is not served here, whoever asks.
      { url: artifactUrl(dedicatedUrl(), other, "managed/model.txt") },
    ] as const);
    expect(ready.status).toBe(200);
    expect(put.status).toBe(201);
    expect(get.status).toBe(200);
    expect(get.text).toBe("kept across opt-out");
    expect(foreign.status).toBe(404);
    expect(ClientPod.json<{ error: { message: string } }>(foreign).error.message).toContain(optIn);

    // The quota holds on the manager's server: the second write would pass it and stores nothing. The
    // first is deleted afterwards, to leave room for the S3 test.
    const fill = (size: number, char: string) => ({ fill: { size, char } });
    const [first, second, missing, freed] = await tenant.client.requestAll([
      { url: artifactUrl(dedicatedUrl(), optIn, "quota/first.bin"), method: "PUT", body: fill(FILL_BYTES, "a") },
      { url: artifactUrl(dedicatedUrl(), optIn, "quota/second.bin"), method: "PUT", body: fill(CHUNK_BYTES, "b") },
      { url: artifactUrl(dedicatedUrl(), optIn, "quota/second.bin") },
      { url: artifactUrl(dedicatedUrl(), optIn, "quota/first.bin"), method: "DELETE" },
    ] as const);
    expect(first.status).toBe(201);
    expect(second.status).toBe(507);
    expect(missing.status).toBe(404);
    expect(freed.status).toBe(204);
  });

  it("serves S3 where kfp-launcher's providers send KFP's launcher, with the namespace's own key pair, for that namespace only", async () => {
    interface MinioProvider {
      endpoint?: string;
      disableSSL?: boolean;
      forcePathStyle?: boolean;
      credentials?: { fromEnv?: boolean; secretRef?: S3SecretRef };
    }
    const started = performance.now();
    // What KFP's launcher reads: the pipeline root and the providers the manager merged into kfp-launcher.
    const launcher = await poll(
      async () => {
        const data = (await core.readNamespacedConfigMap({ name: LAUNCHER, namespace: optIn })).data;
        return data?.providers === undefined ? undefined : data;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: `the manager to merge providers into ${optIn}'s ${LAUNCHER}` },
    );
    expect(launcher.defaultPipelineRoot).toBe(`minio://mlpipeline/private-artifacts/${optIn}/v2/artifacts`);
    expect(launcher.artifactServer).toBe("dedicated: true\n");
    const provider = loadYaml<{ minio?: { default?: MinioProvider } }>(launcher.providers ?? "").minio?.default;
    expect(provider).toMatchObject({ endpoint: `${server()}.${optIn}.svc:9000`, disableSSL: true, forcePathStyle: true, credentials: { fromEnv: false } });
    const secretRef = provider?.credentials?.secretRef;
    expect(secretRef).toEqual({ secretName: `${name}-s3-namespace-key`, accessKeyKey: "accesskey", secretKeyKey: "secretkey" });
    if (secretRef === undefined || provider?.endpoint === undefined) throw new Error(`no endpoint or secretRef in ${LAUNCHER} providers: ${launcher.providers ?? ""}`);
    const endpoint = provider.endpoint;
    // The launcher's reading of the root: bucket, then the key prefix, which it ends with a `/`.
    const [, bucket = "", root = ""] = /^minio:\/\/([^/]+)\/(.+?)\/?$/.exec(launcher.defaultPipelineRoot ?? "") ?? [];
    const prefix = `${root}/`;

    // The Secret it names holds the namespace's own pair; no Secret of the namespace holds the master key,
    // and the server is given neither the master key nor a static pair.
    const key = namespaceKey(MASTER_KEY, optIn);
    const decode = (value: string) => Buffer.from(value, "base64").toString();
    const secrets = (await core.listNamespacedSecret({ namespace: optIn })).items;
    const pair = secrets.find((secret) => secret.metadata?.name === secretRef.secretName)?.data ?? {};
    expect(decode(pair[secretRef.accessKeyKey] ?? "")).toBe(key.accessKeyId);
    expect(decode(pair[secretRef.secretKeyKey] ?? "")).toBe(key.secretAccessKey);
    for (const secret of secrets) {
      for (const value of Object.values(secret.data ?? {})) expect(decode(value), `Secret ${optIn}/${secret.metadata?.name ?? ""}`).not.toContain(MASTER_KEY);
    }
    const deployment = await apps.readNamespacedDeployment({ name: server(), namespace: optIn });
    const envNames = (deployment.spec?.template.spec?.containers ?? []).flatMap((container) => (container.env ?? []).map((variable) => variable.name));
    expect(envNames).toContain("S3_NAMESPACE_ACCESS_KEY");
    for (const forbidden of ["S3_MASTER_KEY", "S3_ACCESS_KEY", "S3_SECRET_KEY"]) expect(envNames).not.toContain(forbidden);

    // Pipeline steps as Kubeflow runs them (default-editor, the key by that secretRef) at that endpoint:
    // KFP's launcher client puts, lists, gets (bytes compared) and deletes under the root; the KFP and Argo
    // stacks are refused another namespace's prefix of the same bucket.
    const other = namespaces[1] ?? "";
    await apply(profileEditor(optIn, `${name}-edit`));
    await startGoClients(goImage, [
      { namespace: optIn, name: "s3-kfp-launcher", endpoint, scenario: "kfp-launcher", bucket, prefix, secret: secretRef },
      {
        namespace: optIn,
        name: "s3-isolation",
        endpoint,
        scenario: "denied",
        bucket,
        prefix: `private-artifacts/${other}/`,
        allowedBucket: bucket,
        allowedPrefix: `private-artifacts/${optIn}/`,
        secret: secretRef,
      },
    ]);
    // Meanwhile, the same pair on the bucket named like each namespace: its own lists what the native API
    // stored there; another namespace's is AccessDenied.
    const s3Url = `http://${endpoint}`;
    const [own, foreign] = await tenant.client.requestAll([
      await signedS3Request(`${s3Url}/${optIn}`, key, "GET", { "list-type": "2", prefix: "managed/" }),
      await signedS3Request(`${s3Url}/${other}`, key, "GET", { "list-type": "2" }),
    ] as const);
    expect(own.status, own.text).toBe(200);
    expect(xmlText(own.text, "Key")).toBe("managed/model.txt");
    expect(foreign.status, foreign.text).toBe(403);
    expect(xmlText(foreign.text, "Code")).toBe("AccessDenied");

    const [launcherRun, isolation] = await Promise.all([waitForGoClients(optIn, "s3-kfp-launcher"), waitForGoClients(optIn, "s3-isolation")]);
    expect(launcherRun.exitCode, launcherRun.logs).toBe(0);
    expect(launcherRun.logs).toContain(`against http://${endpoint} bucket "${bucket}" prefix "${prefix}"`);
    for (const check of ["list the directory two keys per page (ListObjectsV2 continuation tokens)", "the directory lists empty after the deletes"]) {
      expect(launcherRun.logs, launcherRun.logs).toContain(`ok   ${check}\n`);
    }
    expect(launcherRun.logs).toMatch(/^kfp-launcher: \d+ passed, 0 failed$/m);
    expect(isolation.exitCode, isolation.logs).toBe(0);
    for (const check of isolationChecks(`${bucket}/private-artifacts/${optIn}/`, `${bucket}/private-artifacts/${other}/`)) {
      expect(isolation.logs, isolation.logs).toContain(`ok   ${check}\n`);
    }
    expect(isolation.logs).toMatch(/^denied: \d+ passed, 0 failed$/m);
    figures.s3ChecksSeconds = (performance.now() - started) / 1000;
  });

  it("is listed with its endpoint by the shared server's filesystem-storage config", async () => {
    interface StorageConfig {
      enabled: boolean;
      dedicated_namespaces: string[];
      endpoints: Record<string, string>;
    }
    // The shared server caches the manager's status for 10 s.
    const config = await poll(
      async () => {
        const answer = await tenant.client.request({ url: `${sharedUrl()}/apis/v2beta1/filesystem-storage/config` });
        if (answer.status !== 200) throw new Error(`status ${answer.status}: ${answer.text ?? ""}`);
        const body = ClientPod.json<StorageConfig>(answer);
        return body.dedicated_namespaces.includes(optIn) ? body : undefined;
      },
      { timeoutMs: 40_000, intervalMs: 2000, what: `the filesystem-storage config to list ${optIn}` },
    );
    expect(config.enabled).toBe(true);
    expect(config.endpoints[optIn]).toBe(dedicatedUrl());
    for (const namespace of namespaces.slice(1)) expect(config.dedicated_namespaces).not.toContain(namespace);

    const text = await managerMetrics();
    expect(metric(text, "kfp_artifacts_manager_dedicated_servers")).toBe(1);
    figures.managerRssBytes = metric(text, "kfp_artifacts_manager_process_resident_memory_bytes") ?? Number.NaN;
    figures.managerHeapUsedBytes = metric(text, "kfp_artifacts_manager_nodejs_heap_size_used_bytes") ?? Number.NaN;
  });

  it("removes the workload when the namespace opts out, and keeps the claim", async () => {
    const volume = (await core.readNamespacedPersistentVolumeClaim({ name: server(), namespace: optIn })).spec?.volumeName;
    const started = performance.now();
    await setBlock(optIn, "dedicated: false\n");
    await poll(
      async () => {
        const removed = await Promise.all([
          gone(() => apps.readNamespacedDeployment({ name: server(), namespace: optIn })),
          gone(() => core.readNamespacedService({ name: server(), namespace: optIn })),
          gone(() => core.readNamespacedServiceAccount({ name: server(), namespace: optIn })),
        ]);
        const pods = await listPods(optIn, serverPodSelector());
        return removed.every(Boolean) && pods.length === 0 ? true : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500, what: `the dedicated server's Deployment, Service, ServiceAccount and pods in ${optIn} to be gone` },
    );
    figures.optOutToRemovedSeconds = (performance.now() - started) / 1000;
    const status = await waitForCondition([optIn], "Shared");
    // The last reconcile may be the one the manager's own write to kfp-launcher triggered: both keep the claim.
    expect(status[optIn]?.message).toMatch(/the claim kept/);
    // KFP's launcher goes back to its default; the owner's keys stay; the namespace's key pair goes with the server.
    const launcher = (await core.readNamespacedConfigMap({ name: LAUNCHER, namespace: optIn })).data ?? {};
    expect(launcher).toEqual({ defaultPipelineRoot: `minio://mlpipeline/private-artifacts/${optIn}/v2/artifacts`, artifactServer: "dedicated: false\n" });
    expect(await gone(() => core.readNamespacedSecret({ name: `${name}-s3-namespace-key`, namespace: optIn }))).toBe(true);
    const claim = await core.readNamespacedPersistentVolumeClaim({ name: server(), namespace: optIn });
    expect(claim.metadata?.deletionTimestamp).toBeUndefined();
    expect(claim.status?.phase).toBe("Bound");
    expect(claim.spec?.volumeName).toBe(volume);
  });

  it("finds the data again when the namespace opts back in", async () => {
    const started = performance.now();
    await setBlock(optIn, "dedicated: true\n");
    await waitAvailable(optIn, server());
    figures.optBackInToAvailableSeconds = (performance.now() - started) / 1000;
    // The Deployment can be available before the Service's endpoints say so: until kube-proxy routes to
    // the new pod, it may send a request to the old one, still terminating, whose ServiceAccount the
    // opt-out removed (its authorization then fails: 503). A bounded wait for the new pod's answer.
    const seen: number[] = [];
    const read = await poll(
      async () => {
        const answer = await tenant.client.request({ url: artifactUrl(dedicatedUrl(), optIn, "managed/model.txt") });
        seen.push(answer.status);
        return answer.status === 503 ? undefined : answer;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: `the dedicated server in ${optIn} to answer with something other than 503` },
    );
    figures.optBackInAnswersBefore200 = seen.length - 1;
    expect(read.status).toBe(200);
    expect(read.text).toBe("kept across opt-out");
  });

  it("converges after the manager is killed in the middle of a reconcile", async () => {
    const target = namespaces[2] ?? "";
    const targetServer = `${name}-${target}`;
    const [before] = await waitForReadyPodsNamed(release.namespace, managerSelector());
    await setBlock(target, "dedicated: true\n");
    // The ServiceAccount is the first object applied: kill the manager as soon as it exists.
    await poll(async () => ((await gone(() => core.readNamespacedServiceAccount({ name: targetServer, namespace: target }))) ? undefined : true), {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: `the manager to start applying ${target}'s server`,
    });
    await core.deleteNamespacedPod({ name: before ?? "", namespace: release.namespace, gracePeriodSeconds: 0 });
    // What the killed manager had applied by then (the ServiceAccount always; the rest depends on timing).
    const applied = await Promise.all([
      gone(() => core.readNamespacedPersistentVolumeClaim({ name: targetServer, namespace: target })).then((missing) => (missing ? "" : "PVC")),
      gone(() => apps.readNamespacedDeployment({ name: targetServer, namespace: target })).then((missing) => (missing ? "" : "Deployment")),
      gone(() => core.readNamespacedService({ name: targetServer, namespace: target })).then((missing) => (missing ? "" : "Service")),
    ]);
    figures.appliedAtKill = ["ServiceAccount", ...applied.filter(Boolean)].join(",");
    const started = performance.now();
    const [after] = await poll(
      async () => {
        const pods = await listPods(release.namespace, managerSelector());
        return pods.length === 1 && pods.every(podReady) && pods[0]?.metadata?.name !== before ? pods.map((pod) => pod.metadata?.name) : undefined;
      },
      { timeoutMs: 90_000, what: "a new Ready manager pod" },
    );
    expect(after).not.toBe(before);
    await waitForDeploymentAvailable(target, targetServer, 120_000);
    await waitForCondition([target], "Dedicated", 60_000);
    figures.killToConvergedSeconds = (performance.now() - started) / 1000;
    // The restarted manager re-reconciles the others too and changes nothing there. It started from the
    // status the killed one wrote, so the status that names the target's server names every other
    // namespace too, reconciled again yet or not.
    const others = namespaces.slice(3);
    const status = await managerStatus();
    expect(Object.keys(status)).toEqual(expect.arrayContaining([target, optIn, ...others]));
    expect(status[optIn]?.condition).toBe("Dedicated");
    for (const namespace of others) expect(status[namespace]?.condition).toBe("Shared");
    const restarted = await managerMetrics();
    expect(metric(restarted, "kfp_artifacts_manager_dedicated_servers")).toBe(2);
  });
});
