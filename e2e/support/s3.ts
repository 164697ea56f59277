// The S3 endpoint in the cluster, laid out as Kubeflow lays it out: namespace keys in each profile's
// `mlpipeline-minio-artifact` Secret, the profile's `default-editor` ServiceAccount bound to Kubeflow's
// aggregated `kubeflow-pipelines-edit` ClusterRole, and the Go program that drives S3 with the clients
// KFP's launcher and Argo ship (server/test/s3/go-clients), run as a pod from a one-binary image.
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type { V1ClusterRole } from "@kubernetes/client-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { deriveSecretKey, namespaceAccessKeyId } from "../../server/src/s3/credentials.js";
import { Sha256 } from "../../server/test/s3/sha256.js";
import type { ClientRequest } from "./clients.js";
import { CommandError, kubectl, run } from "./commands.js";
import { env, REPO_ROOT } from "./env.js";
import { apply, core, isNotFound, rbac, schedulableNodeNames, type Manifest } from "./kube.js";
import { poll } from "./poll.js";
import { roleBinding } from "./tenants.js";

export interface S3Key {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** The Secret (and its keys) KFP's API server, UI, launcher and Argo read their S3 key from, in every namespace. */
export const KUBEFLOW_S3_SECRET = "mlpipeline-minio-artifact";
/** The ServiceAccount Kubeflow runs a profile's pipelines as, and a namespace key acts as. */
export const NAMESPACE_SERVICE_ACCOUNT = "default-editor";
/** Kubeflow's ClusterRole that the chart's `<fullname>-edit` is aggregated into (rbac.userRoles.aggregateToKubeflowPipelines). */
export const KUBEFLOW_PIPELINES_EDIT = "kubeflow-pipelines-edit";

export function s3KeySecret(namespace: string, key: S3Key): Manifest {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: KUBEFLOW_S3_SECRET, namespace },
    type: "Opaque",
    stringData: { accesskey: key.accessKeyId, secretkey: key.secretAccessKey },
  };
}

/** What the server derives for `kfp.<namespace>` from the master key (the static secret key when there is none). */
export function namespaceKey(masterKey: string, namespace: string): S3Key {
  const accessKeyId = namespaceAccessKeyId(namespace);
  return { accessKeyId, secretAccessKey: deriveSecretKey(masterKey, accessKeyId) };
}

/** A profile's `default-editor` ServiceAccount and the RoleBinding Kubeflow gives it, to `clusterRole`. */
export function profileEditor(namespace: string, clusterRole: string): Manifest[] {
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: NAMESPACE_SERVICE_ACCOUNT, namespace }, automountServiceAccountToken: false },
    roleBinding(namespace, NAMESPACE_SERVICE_ACCOUNT, clusterRole, { kind: "ServiceAccount", name: NAMESPACE_SERVICE_ACCOUNT, namespace }),
  ];
}

const AGGREGATE_LABEL = "rbac.authorization.kubeflow.org/aggregate-to-kubeflow-pipelines-edit";

/**
 * Kubeflow's `kubeflow-pipelines-edit` as KFP's multi-user manifests define it: no rules of its own,
 * only the aggregation of every ClusterRole labelled for it. Created unless an earlier run left it
 * (labelled as an e2e run's); one that is not an e2e run's means a real Kubeflow: this throws, and
 * touches nothing.
 */
export async function createKubeflowPipelinesEditRole(): Promise<void> {
  let existing: V1ClusterRole | undefined;
  try {
    existing = await rbac.readClusterRole({ name: KUBEFLOW_PIPELINES_EDIT });
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  if (existing !== undefined) {
    if (existing.metadata?.labels?.["kfp-artifacts.e2e/run"] === "true") return;
    throw new Error(`ClusterRole ${KUBEFLOW_PIPELINES_EDIT} exists and is not an e2e run's: is this cluster running Kubeflow? (docs/e2e.md)`);
  }
  await rbac.createClusterRole({
    body: {
      metadata: {
        name: KUBEFLOW_PIPELINES_EDIT,
        labels: { "rbac.authorization.kubeflow.org/aggregate-to-kubeflow-edit": "true", "kfp-artifacts.e2e/run": "true" },
      },
      aggregationRule: { clusterRoleSelectors: [{ matchLabels: { [AGGREGATE_LABEL]: "true" } }] },
      rules: [],
    },
  });
}

/** Waits until the controller has aggregated the chart's artifact verbs into `kubeflow-pipelines-edit`. */
export async function waitForKubeflowPipelinesEditAggregation(): Promise<void> {
  await poll(
    async () => {
      const role = await rbac.readClusterRole({ name: KUBEFLOW_PIPELINES_EDIT });
      const aggregated = (role.rules ?? []).some(
        (rule) => rule.apiGroups?.includes("pipelines.kubeflow.org") && rule.resources?.includes("runs") && rule.verbs.includes("writeArtifact"),
      );
      return aggregated ? true : undefined;
    },
    { timeoutMs: 30_000, what: `the artifact verbs to be aggregated into ClusterRole ${KUBEFLOW_PIPELINES_EDIT}` },
  );
}

export async function deleteKubeflowPipelinesEditRole(): Promise<void> {
  try {
    await rbac.deleteClusterRole({ name: KUBEFLOW_PIPELINES_EDIT });
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

interface Unsigned {
  readonly service: "iam" | "s3";
  readonly region: string;
  readonly method: string;
  readonly query?: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/**
 * A request signed with SigV4, for a client pod to send (`credential: "none"`, so the pod adds no Bearer
 * token). The pod's fetch writes the same Host header that was signed.
 */
async function signedRequest(url: string, key: S3Key, request: Unsigned): Promise<ClientRequest> {
  const target = new URL(url);
  const signer = new SignatureV4({ credentials: key, region: request.region, service: request.service, sha256: Sha256 });
  const signed = await signer.sign({
    method: request.method,
    protocol: "http:",
    hostname: target.hostname,
    port: Number(target.port),
    path: target.pathname,
    query: { ...request.query },
    headers: { host: target.host, ...request.headers },
    ...(request.body === undefined ? {} : { body: request.body }),
  });
  const headers = Object.fromEntries(Object.entries(signed.headers).filter(([name]) => name.toLowerCase() !== "host"));
  const query = new URLSearchParams(request.query).toString();
  return {
    url: query === "" ? url : `${url}?${query}`,
    method: request.method,
    headers,
    ...(request.body === undefined ? {} : { body: { text: request.body } }),
    credential: "none",
  };
}

/** A request signed for IAM as Kubeflow's profile controller signs it (botocore, region `foobar`). */
export async function signedIamRequest(url: string, key: S3Key, params: Readonly<Record<string, string>>): Promise<ClientRequest> {
  const body = new URLSearchParams({ ...params, Version: "2010-05-08" }).toString();
  return signedRequest(url, key, { service: "iam", region: "foobar", method: "POST", headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" }, body });
}

/** An S3 request with no body (a GET, a listing), signed as the AWS SDKs sign it (region us-east-1, path-style URL). */
export async function signedS3Request(url: string, key: S3Key, method: string, query: Readonly<Record<string, string>> = {}): Promise<ClientRequest> {
  return signedRequest(url, key, { service: "s3", region: "us-east-1", method, query });
}

/** The text of the first `<tag>` element of an XML answer (S3 and IAM answers are flat enough). */
export function xmlText(xml: string | undefined, tag: string): string | undefined {
  return new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml ?? "")?.[1];
}

// --- The Go clients as a pod ---

const GO_CLIENTS_DIR = path.join(REPO_ROOT, "server/test/s3/go-clients");
const GO_CLIENTS_CACHE = path.join(env.workDir, "s3-go-clients");
const GO_CLIENTS_REPOSITORY = "kfp-artifacts.local/s3-go-clients";
const GO_CLIENTS_BINARY = "s3-go-clients";
/** Static (no libc in the image), stripped, reproducible; the toolchain on PATH, never a download. */
const GO_BUILD_ARGS = ["build", "-trimpath", "-ldflags=-s -w"];
const GO_BUILD_ENV = { CGO_ENABLED: "0", GOFLAGS: "-buildvcs=false", GOTOOLCHAIN: "local" };
/** A cold build compiles the AWS, gocloud and minio modules: over a minute on two cores. */
const GO_BUILD_TIMEOUT_MS = 300_000;

/** Hash of what the binary is made from: the Go toolchain, the build settings and the module's files. */
async function goClientsInputs(): Promise<string> {
  let version: string;
  try {
    version = (await run("go", ["version"], { timeoutMs: 30_000, env: GO_BUILD_ENV })).stdout;
  } catch (error) {
    if (error instanceof CommandError && error.result.code === "ENOENT") {
      throw new Error("`go` is not on PATH: the S3 checks build server/test/s3/go-clients with Go 1.25 or later; install Go and run again");
    }
    throw error;
  }
  const hash = createHash("sha256").update(version).update(JSON.stringify([GO_BUILD_ARGS, GO_BUILD_ENV]));
  for (const name of (await readdir(GO_CLIENTS_DIR)).sort()) {
    if (!/\.go$|^go\.(mod|sum)$/.test(name)) continue;
    hash.update(`\0${name}\0`).update(await readFile(path.join(GO_CLIENTS_DIR, name)));
  }
  return hash.digest("hex");
}

async function dockerImageExists(ref: string): Promise<boolean> {
  try {
    await run("docker", ["image", "inspect", "--format", "{{.Id}}", ref], { timeoutMs: 30_000 });
    return true;
  } catch (error) {
    if (error instanceof CommandError && /no such image/i.test(error.result.stderr)) return false;
    throw error;
  }
}

/** Builds the static binary unless the one in .cache/e2e was built from the same inputs; returns its directory. */
async function buildGoClients(stamp: string): Promise<string> {
  const binary = path.join(GO_CLIENTS_CACHE, GO_CLIENTS_BINARY);
  const stampFile = `${binary}.stamp`;
  const built = await readFile(stampFile, "utf8").catch(() => "");
  if (built === stamp && (await stat(binary).catch(() => undefined))?.isFile()) return GO_CLIENTS_CACHE;
  await mkdir(GO_CLIENTS_CACHE, { recursive: true });
  const partial = `${binary}.${process.pid}.tmp`;
  try {
    await run("go", [...GO_BUILD_ARGS, "-o", partial, "."], { cwd: GO_CLIENTS_DIR, env: GO_BUILD_ENV, timeoutMs: GO_BUILD_TIMEOUT_MS });
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
  await rename(partial, binary);
  await writeFile(stampFile, stamp);
  return GO_CLIENTS_CACHE;
}

/**
 * The image `kfp-artifacts.local/s3-go-clients:<inputs hash>`: nothing but the static binary (plain HTTP
 * needs no CA certificates), made with `docker import` and loaded with `kind load` onto the schedulable
 * nodes that lack it. Unchanged inputs cost a `go version`, a `docker image inspect` and one `ctr` listing
 * per node. Older tags of the image are removed from Docker.
 */
export async function goClientsImage(): Promise<string> {
  const stamp = await goClientsInputs();
  const ref = `${GO_CLIENTS_REPOSITORY}:${stamp.slice(0, 12)}`;
  if (!(await dockerImageExists(ref))) {
    const dir = await buildGoClients(stamp);
    const tar = path.join(GO_CLIENTS_CACHE, `${GO_CLIENTS_BINARY}.${process.pid}.tar`);
    try {
      await run("tar", ["--owner=0", "--group=0", "--numeric-owner", "--mode=0755", "-C", dir, "-cf", tar, GO_CLIENTS_BINARY], { timeoutMs: 60_000 });
      await run("docker", ["import", "--change", `ENTRYPOINT ["/${GO_CLIENTS_BINARY}"]`, "--change", "USER 65532:65532", tar, ref], { timeoutMs: 120_000 });
    } finally {
      await rm(tar, { force: true });
    }
    const { stdout } = await run("docker", ["images", "--format", "{{.Repository}}:{{.Tag}}", GO_CLIENTS_REPOSITORY], { timeoutMs: 30_000 });
    const stale = stdout.split("\n").filter((tag) => tag !== "" && tag !== ref);
    if (stale.length > 0) await run("docker", ["rmi", ...stale], { timeoutMs: 60_000 }).catch(() => undefined);
  }
  // kind's own "already present" check needs crictl, which the offline node image lacks: ask containerd.
  const missing: string[] = [];
  for (const node of await schedulableNodeNames()) {
    const { stdout } = await run("docker", ["exec", node, "ctr", "--namespace", "k8s.io", "images", "list", "--quiet", `name==${ref}`], { timeoutMs: 30_000 });
    if (!stdout.split("\n").includes(ref)) missing.push(node);
  }
  if (missing.length > 0) {
    await run("bash", [path.join(REPO_ROOT, "scripts/cluster/kind.sh"), "load", "docker-image", "--name", env.clusterName, "--nodes", missing.join(","), ref], {
      timeoutMs: 180_000,
    });
  }
  return ref;
}

export type GoClientsScenario = "kfp-launcher" | "argo" | "denied";

export interface GoClientsPodSpec {
  readonly namespace: string;
  readonly name: string;
  /** host:port of the S3 endpoint (plain HTTP). */
  readonly endpoint: string;
  readonly scenario: GoClientsScenario;
  readonly bucket: string;
  readonly prefix: string;
  /** denied only: where the same keys must work (the positive control). */
  readonly allowedBucket?: string;
  readonly allowedPrefix?: string;
  /** The Secret holding the key, as kfp-launcher's `secretRef` names one; Kubeflow's `mlpipeline-minio-artifact` by default. */
  readonly secret?: S3SecretRef;
}

/** kfp-launcher's `credentials.secretRef`: a Secret of the pod's namespace and its two keys. */
export interface S3SecretRef {
  readonly secretName: string;
  readonly accessKeyKey: string;
  readonly secretKeyKey: string;
}

const KUBEFLOW_SECRET_REF: S3SecretRef = { secretName: KUBEFLOW_S3_SECRET, accessKeyKey: "accesskey", secretKeyKey: "secretkey" };

export interface GoClientsRun {
  readonly exitCode: number;
  readonly logs: string;
}

/**
 * The `denied` scenario's checks (kubeflow/manifests' isolation test), each of which the pod's log must
 * list as `ok`: `allowed` and `denied` are `<bucket>/<prefix>` of its two places.
 */
export function isolationChecks(allowed: string, denied: string): string[] {
  return [
    `KFP stack: write, read and delete in the allowed place ${allowed}`,
    `Argo stack: put, get and remove in the allowed place ${allowed}`,
    `KFP stack: write under ${denied}: AccessDenied`,
    `KFP stack: read under ${denied}: AccessDenied`,
    `KFP stack: list under ${denied}: AccessDenied`,
    `Argo stack: FPutObject under ${denied}: AccessDenied`,
    `Argo stack: RemoveObject under ${denied}: AccessDenied`,
  ];
}

const GO_CLIENTS_CONTAINER = "s3-go-clients";
const SCENARIO_TIMEOUT = "120s";

/**
 * A pipeline step's pod as Kubeflow runs one in a profile: ServiceAccount `default-editor`, the S3 key from
 * the namespace's `mlpipeline-minio-artifact` Secret (or the one `spec.secret` names). Runs once (restartPolicy Never) under the restricted
 * Pod Security profile; /tmp (HOME, TMPDIR: the scenario's fixtures) is the only writable place.
 */
function goClientsPod(image: string, spec: GoClientsPodSpec): Manifest {
  const flags: Record<string, string | undefined> = {
    endpoint: spec.endpoint,
    scenario: spec.scenario,
    bucket: spec.bucket,
    prefix: spec.prefix,
    "allowed-bucket": spec.allowedBucket,
    "allowed-prefix": spec.allowedPrefix,
    timeout: SCENARIO_TIMEOUT,
  };
  const secret = spec.secret ?? KUBEFLOW_SECRET_REF;
  const secretEnv = (name: string, key: string) => ({ name, valueFrom: { secretKeyRef: { name: secret.secretName, key } } });
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: spec.name, namespace: spec.namespace, labels: { "kfp-artifacts.e2e/go-clients": spec.name } },
    spec: {
      serviceAccountName: NAMESPACE_SERVICE_ACCOUNT,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 0,
      restartPolicy: "Never",
      securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } },
      containers: [
        {
          name: GO_CLIENTS_CONTAINER,
          image,
          // Loaded by kind, never pulled: a missing image fails at once (ErrImageNeverPull).
          imagePullPolicy: "Never",
          command: [`/${GO_CLIENTS_BINARY}`],
          args: Object.entries(flags).flatMap(([name, value]) => (value === undefined ? [] : [`-${name}=${value}`])),
          env: [
            secretEnv("S3_ACCESS_KEY", secret.accessKeyKey),
            secretEnv("S3_SECRET_KEY", secret.secretKeyKey),
            { name: "HOME", value: "/tmp" },
            { name: "TMPDIR", value: "/tmp" },
          ],
          resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
          volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
        },
      ],
      volumes: [{ name: "tmp", emptyDir: { sizeLimit: "128Mi" } }],
    },
  };
}

/** Creates the pods (one apply); each runs its scenario once, to be awaited with waitForGoClients. */
export async function startGoClients(image: string, specs: readonly GoClientsPodSpec[]): Promise<void> {
  await apply(specs.map((spec) => goClientsPod(image, spec)));
}

/** States a container does not leave by waiting: the run has failed before it started. */
const STUCK = new Set(["ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError", "RunContainerError"]);

/** Waits for the pod's scenario to end; its exit code and its log (every check, and the requests of a failed one). */
export async function waitForGoClients(namespace: string, name: string, timeoutMs = 150_000): Promise<GoClientsRun> {
  const outcome = await poll<{ exitCode: number } | { stuck: string }>(
    async () => {
      const pod = await core.readNamespacedPod({ name, namespace });
      const state = pod.status?.containerStatuses?.find((status) => status.name === GO_CLIENTS_CONTAINER)?.state;
      if (state?.terminated !== undefined) return { exitCode: state.terminated.exitCode };
      const reason = state?.waiting?.reason;
      if (reason !== undefined && STUCK.has(reason)) return { stuck: `${reason}: ${state?.waiting?.message ?? ""}` };
      if (pod.status?.phase === "Failed") return { stuck: `pod failed: ${pod.status.reason ?? ""} ${pod.status.message ?? ""}` };
      return undefined;
    },
    { timeoutMs, intervalMs: 1000, what: `pod ${namespace}/${name} (s3-go-clients) to finish` },
  );
  if ("stuck" in outcome) throw new Error(`pod ${namespace}/${name} did not run: ${outcome.stuck}`);
  const { stdout, stderr } = await kubectl(["logs", "-n", namespace, name, "-c", GO_CLIENTS_CONTAINER], { timeoutMs: 30_000 });
  return { exitCode: outcome.exitCode, logs: stdout + stderr };
}
