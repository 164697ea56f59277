// Kubernetes API access for the suites (@kubernetes/client-node), plus the waits every suite needs.
import { AppsV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api, type V1Node, type V1Pod } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { kubectl } from "./commands.js";
import { env } from "./env.js";
import { poll } from "./poll.js";

const config = new KubeConfig();
config.loadFromFile(env.kubeconfig);

export const core = config.makeApiClient(CoreV1Api);
export const apps = config.makeApiClient(AppsV1Api);
export const rbac = config.makeApiClient(RbacAuthorizationV1Api);

/** A manifest as plain data; applied with `kubectl apply`, so any kind works. */
export type Manifest = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: Record<string, unknown> & { name: string; namespace?: string };
};

export async function apply(manifests: readonly Manifest[]): Promise<void> {
  const documents = manifests.map((manifest) => stringify(manifest)).join("---\n");
  await kubectl(["apply", "-f", "-"], { input: documents, timeoutMs: 60_000 });
}

export function isNotFound(error: unknown): boolean {
  return typeof error === "object" && error !== null && "code" in error && error.code === 404;
}

export async function createNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
  await core.createNamespace({ body: { metadata: { name, labels: { "kfp-artifacts.e2e/run": "true", ...labels } } } });
}

export async function namespaceExists(name: string): Promise<boolean> {
  try {
    await core.readNamespace({ name });
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

/** Deletes the namespaces and waits until they are gone, so the next suite starts on a quiet cluster. */
export async function deleteNamespaces(names: readonly string[], timeoutMs = 120_000): Promise<void> {
  for (const name of names) {
    try {
      await core.deleteNamespace({ name, gracePeriodSeconds: 0 });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
  await poll(
    async () => {
      for (const name of names) if (await namespaceExists(name)) return undefined;
      return true;
    },
    { timeoutMs, intervalMs: 2000, what: `namespaces ${names.join(", ")} to be deleted` },
  );
}

export function podReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True") ?? false;
}

export async function listPods(namespace: string, labelSelector: string): Promise<V1Pod[]> {
  return (await core.listNamespacedPod({ namespace, labelSelector })).items.filter((pod) => pod.metadata?.deletionTimestamp === undefined);
}

/** Waits until exactly `count` pods match and all are Ready; returns them. */
export async function waitForReadyPods(namespace: string, labelSelector: string, count: number, timeoutMs = 180_000): Promise<V1Pod[]> {
  return poll(
    async () => {
      const pods = await listPods(namespace, labelSelector);
      return pods.length === count && pods.every(podReady) ? pods : undefined;
    },
    { timeoutMs, intervalMs: 1000, what: `${count} Ready pod(s) matching ${labelSelector} in ${namespace}` },
  );
}

export async function waitForDeploymentAvailable(namespace: string, name: string, timeoutMs = 180_000): Promise<void> {
  await poll(
    async () => {
      const deployment = await apps.readNamespacedDeployment({ name, namespace });
      const wanted = deployment.spec?.replicas ?? 1;
      const status = deployment.status;
      const done =
        (status?.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 1) &&
        status?.updatedReplicas === wanted &&
        status.availableReplicas === wanted &&
        (status.replicas ?? 0) === wanted;
      return done ? true : undefined;
    },
    { timeoutMs, intervalMs: 1000, what: `Deployment ${namespace}/${name} to be available` },
  );
}

function schedulable(node: V1Node): boolean {
  const ready = node.status?.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True") ?? false;
  const blocked = (node.spec?.taints ?? []).some((taint) => taint.effect === "NoSchedule" || taint.effect === "NoExecute");
  return ready && node.spec?.unschedulable !== true && !blocked;
}

/** Nodes a DaemonSet without tolerations runs on (kind keeps the control plane tainted). */
export async function schedulableNodeNames(): Promise<string[]> {
  return (await core.listNode()).items
    .filter(schedulable)
    .map((node) => node.metadata?.name ?? "")
    .sort();
}

export async function waitForPersistentVolumeClaimBound(namespace: string, name: string, timeoutMs = 60_000): Promise<void> {
  await poll(
    async () => ((await core.readNamespacedPersistentVolumeClaim({ name, namespace })).status?.phase === "Bound" ? true : undefined),
    { timeoutMs, what: `PVC ${namespace}/${name} to be Bound` },
  );
}
