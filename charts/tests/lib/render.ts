// Shared helpers of the chart and kustomize tests: run the pinned helm and kubectl from bin/
// (fetched by `make tools`), parse their YAML output, and inspect Kubernetes objects.
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const chartDir = path.join(repoRoot, "charts/kfp-artifacts");
export const ciDir = path.join(chartDir, "ci");
export const kustomizeDir = path.join(repoRoot, "kustomize");
const helmBinary = path.join(repoRoot, "bin/helm");
const kubectlBinary = path.join(repoRoot, "bin/kubectl");

/** The release and namespace every test renders, matching the committed examples and kustomize base. */
export const RELEASE = "kfp-artifacts";
export const NAMESPACE = "kubeflow";

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
};

export type CommandResult = { code: number; stdout: string; stderr: string };

// Helm and kubectl are CPU-bound Go programs; on two shared cores more than a few at once only queue.
const MAX_PARALLEL = 3;
let running = 0;
const waiting: (() => void)[] = [];

async function withSlot<T>(task: () => Promise<T>): Promise<T> {
  if (running >= MAX_PARALLEL) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await task();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

function runCommand(binary: string, args: string[]): Promise<CommandResult> {
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: run \`make tools\` (scripts/tools/fetch-helm-kubectl.sh)`);
  }
  return withSlot(
    () =>
      new Promise<CommandResult>((resolve) => {
        execFile(binary, args, { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 }, (error, stdout, stderr) => {
          const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
          resolve({ code, stdout, stderr });
        });
      }),
  );
}

export function helm(args: string[]): Promise<CommandResult> {
  return runCommand(helmBinary, args);
}

export function kubectl(args: string[]): Promise<CommandResult> {
  return runCommand(kubectlBinary, args);
}

export type RenderOptions = {
  valuesFiles?: string[];
  set?: string[];
  setString?: string[];
  skipTests?: boolean;
  /** Defaults to RELEASE. */
  release?: string;
  /** Defaults to charts/kfp-artifacts. */
  chart?: string;
};

function templateArgs(options: RenderOptions): string[] {
  const { valuesFiles = [], set = [], setString = [], skipTests = false, release = RELEASE, chart = chartDir } = options;
  return [
    "template",
    release,
    chart,
    "--namespace",
    NAMESPACE,
    ...valuesFiles.flatMap((file) => ["--values", path.isAbsolute(file) ? file : path.join(ciDir, file)]),
    // The manager is on by default; its own tests turn it on, the others look at the servers alone.
    "--set",
    "manager.enabled=false",
    ...set.flatMap((assignment) => ["--set", assignment]),
    ...setString.flatMap((assignment) => ["--set-string", assignment]),
    ...(skipTests ? ["--skip-tests"] : []),
  ];
}

/** `helm template`; a failure is returned (for the guard tests), not thrown. */
export function helmTemplate(options: RenderOptions = {}): Promise<CommandResult> {
  return helm(templateArgs(options));
}

export function parseObjects(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((document) => document.toJS() as unknown)
    .filter((object): object is KubeObject => typeof object === "object" && object !== null);
}

/** `helm template` that must succeed; returns the rendered objects. */
export async function renderChart(options: RenderOptions = {}): Promise<KubeObject[]> {
  const result = await helmTemplate(options);
  if (result.code !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return parseObjects(result.stdout);
}

/** `kubectl kustomize` of a directory under kustomize/; returns the objects. */
export async function buildKustomization(relativeDir: string): Promise<KubeObject[]> {
  const result = await kubectl(["kustomize", path.join(kustomizeDir, relativeDir)]);
  if (result.code !== 0) throw new Error(`kubectl kustomize ${relativeDir} failed: ${result.stderr}`);
  return parseObjects(result.stdout);
}

export function ciValuesFiles(): string[] {
  return readdirSync(ciDir)
    .filter((name) => name.endsWith("-values.yaml"))
    .sort();
}

export function objectsOfKind(objects: KubeObject[], kind: string): KubeObject[] {
  return objects.filter((object) => object.kind === kind);
}

export function findObject(objects: KubeObject[], kind: string, name: string, namespace?: string): KubeObject {
  const found = objects.find(
    (o) => o.kind === kind && o.metadata.name === name && (namespace === undefined || o.metadata.namespace === namespace),
  );
  if (!found) throw new Error(`no ${kind} ${namespace ? `${namespace}/` : ""}${name} among the rendered objects`);
  return found;
}

export function isHelmHook(object: KubeObject): boolean {
  return object.metadata.annotations?.["helm.sh/hook"] !== undefined;
}

/** Reads a nested field by path, e.g. at(deployment, "spec", "template", "spec"). */
export function at(value: unknown, ...keys: (string | number)[]): unknown {
  let node: unknown = value;
  for (const key of keys) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

export type Container = {
  name: string;
  image: string;
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  securityContext?: Record<string, unknown>;
  ports?: { name?: string; containerPort: number; hostPort?: number }[];
  [field: string]: unknown;
};

export type PodSpec = {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: Record<string, unknown>;
  volumes?: Record<string, unknown>[];
  [field: string]: unknown;
};

const WORKLOAD_KINDS = new Set(["Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job"]);

/** Every pod spec among the objects, with a label naming its owner. */
export function podSpecs(objects: KubeObject[]): { owner: string; spec: PodSpec }[] {
  const specs: { owner: string; spec: PodSpec }[] = [];
  for (const object of objects) {
    const owner = `${object.kind} ${object.metadata.namespace ?? ""}/${object.metadata.name}`;
    if (object.kind === "Pod") specs.push({ owner, spec: object.spec as PodSpec });
    else if (WORKLOAD_KINDS.has(object.kind)) specs.push({ owner, spec: at(object, "spec", "template", "spec") as PodSpec });
    else if (object.kind === "CronJob") {
      specs.push({ owner, spec: at(object, "spec", "jobTemplate", "spec", "template", "spec") as PodSpec });
    }
  }
  return specs;
}

export function envOf(container: Container): Map<string, string | undefined> {
  return new Map((container.env ?? []).map((variable) => [variable.name, variable.value]));
}

// Volume types the restricted Pod Security Standard allows.
const RESTRICTED_VOLUME_TYPES = new Set([
  "configMap",
  "csi",
  "downwardAPI",
  "emptyDir",
  "ephemeral",
  "persistentVolumeClaim",
  "projected",
  "secret",
]);

/**
 * Violations of the restricted Pod Security Standard, plus this project's own rules (read-only root,
 * UID 65532, no service links). hostPath is reported unless allowed: only the shared-node-path
 * topology uses it, and its docs say it needs a privileged namespace.
 */
export function restrictedViolations(spec: PodSpec, options: { allowHostPath?: boolean } = {}): string[] {
  const problems: string[] = [];
  const pod = spec.securityContext ?? {};
  for (const field of ["hostNetwork", "hostPID", "hostIPC"]) {
    if (spec[field] === true) problems.push(`${field} is true`);
  }
  if (spec.enableServiceLinks !== false) problems.push("enableServiceLinks is not false");
  for (const volume of spec.volumes ?? []) {
    const types = Object.keys(volume).filter((key) => key !== "name");
    for (const type of types) {
      if (RESTRICTED_VOLUME_TYPES.has(type)) continue;
      if (type === "hostPath" && options.allowHostPath) continue;
      problems.push(`volume ${String(volume.name)} is of type ${type}`);
    }
  }
  const podSeccomp = at(pod, "seccompProfile", "type");
  for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) {
    const context = container.securityContext ?? {};
    const where = `container ${container.name}`;
    if (context.privileged === true) problems.push(`${where} is privileged`);
    if (context.allowPrivilegeEscalation !== false) problems.push(`${where} allows privilege escalation`);
    const dropped = (at(context, "capabilities", "drop") as string[] | undefined) ?? [];
    if (!dropped.includes("ALL")) problems.push(`${where} does not drop ALL capabilities`);
    const added = (at(context, "capabilities", "add") as string[] | undefined) ?? [];
    if (added.some((capability) => capability !== "NET_BIND_SERVICE")) problems.push(`${where} adds capabilities`);
    const runAsNonRoot = context.runAsNonRoot ?? pod.runAsNonRoot;
    if (runAsNonRoot !== true) problems.push(`${where} may run as root`);
    const runAsUser = context.runAsUser ?? pod.runAsUser;
    if (runAsUser !== 65532) problems.push(`${where} runs as UID ${String(runAsUser)}, not 65532`);
    const seccomp = at(context, "seccompProfile", "type") ?? podSeccomp;
    if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") problems.push(`${where} has no seccomp profile`);
    if (context.readOnlyRootFilesystem !== true) problems.push(`${where} has a writable root filesystem`);
    if ((container.ports ?? []).some((port) => port.hostPort !== undefined)) problems.push(`${where} uses a hostPort`);
  }
  return problems;
}

/**
 * Normalizes an object so chart and kustomize output compare object by object: removes the labels
 * only Helm adds and sorts container env by name (a kustomize strategic-merge patch moves the entries
 * it changes; order carries no meaning here because no value refers to another with $(NAME)).
 */
export function normalized(object: KubeObject): KubeObject {
  const copy = structuredClone(object);
  for (const { spec } of podSpecs([copy])) {
    for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) {
      container.env?.sort((a, b) => a.name.localeCompare(b.name));
    }
  }
  const strip = (labels: Record<string, string> | undefined) => {
    if (!labels) return;
    delete labels["helm.sh/chart"];
    delete labels["app.kubernetes.io/managed-by"];
  };
  strip(copy.metadata.labels);
  strip(at(copy, "spec", "template", "metadata", "labels") as Record<string, string> | undefined);
  return copy;
}

export function objectKey(object: KubeObject): string {
  return `${object.kind}/${object.metadata.namespace ?? ""}/${object.metadata.name}`;
}

/** NOTES.txt as `helm install` prints it (client-side dry run: no cluster is contacted). */
export async function renderNotes(options: RenderOptions = {}): Promise<string> {
  const args = templateArgs(options);
  args[0] = "install";
  const result = await helm([...args, "--dry-run=client", "--kubeconfig", path.join(repoRoot, ".cache/no-kubeconfig")]);
  if (result.code !== 0) throw new Error(`helm install --dry-run failed: ${result.stderr}`);
  const start = result.stdout.indexOf("NOTES:");
  if (start < 0) throw new Error("helm install --dry-run printed no NOTES");
  return result.stdout.slice(start);
}

/** The pod spec of a Deployment or DaemonSet. */
export function podSpecOf(workload: KubeObject): PodSpec {
  return at(workload, "spec", "template", "spec") as PodSpec;
}

/** The artifact server's container of a workload. */
export function serverContainer(workload: KubeObject): Container {
  const container = podSpecOf(workload).containers.find((c) => c.name === "server");
  if (!container) throw new Error(`${workload.kind} ${workload.metadata.name} has no server container`);
  return container;
}

/**
 * One of each server workload the chart renders, with `set`: the shared Deployment, the dedicated
 * Deployment of team-a, and the node-local DaemonSet (on ReadWriteMany).
 */
export async function everyServerWorkload(set: string[] = []): Promise<KubeObject[]> {
  const [deployments, daemonset] = await Promise.all([
    renderChart({ skipTests: true, set: ["dedicated.namespaces={team-a}", ...set] }),
    renderChart({ skipTests: true, set: ["shared.workloadKind=daemonset", "persistence.accessMode=ReadWriteMany", ...set] }),
  ]);
  return [
    findObject(deployments, "Deployment", `${RELEASE}`),
    findObject(deployments, "Deployment", `${RELEASE}-team-a`),
    findObject(daemonset, "DaemonSet", `${RELEASE}`),
  ];
}
