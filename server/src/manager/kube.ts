// The manager's calls to the API server: generic objects (read, server-side apply, delete), Events, its
// status ConfigMap and its Lease.
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  type KubeConfig,
  type KubernetesObject,
  type V1Lease,
} from "@kubernetes/client-node";
import type { ClusterApi, ObjectRef } from "./reconcile.js";
import { formatStatuses, STATUS_DATA_KEY, type NamespaceStatus } from "./status.js";
import type { KubeObject, OwnerReference } from "./templates.js";

const isNotFound = (error: unknown) => error instanceof ApiException && error.code === 404;

const header = (ref: ObjectRef): { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } } => ({
  apiVersion: ref.apiVersion,
  kind: ref.kind,
  metadata: { name: ref.name, ...(ref.namespace === undefined ? {} : { namespace: ref.namespace }) },
});

export interface ManagerKube {
  readonly cluster: ClusterApi;
  readonly core: CoreV1Api;
  readonly coordination: CoordinationV1Api;
  /** The owner reference for what the manager creates: its own ClusterRole. */
  owner(clusterRoleName: string): Promise<OwnerReference | undefined>;
  /** The status document (status.ts) of the ConfigMap, undefined when there is none yet. */
  readStatus(namespace: string, name: string): Promise<string | undefined>;
  writeStatus(namespace: string, name: string, statuses: readonly NamespaceStatus[]): Promise<void>;
  event(target: ObjectRef, reason: string, message: string, type: "Normal" | "Warning", reporter: string): Promise<void>;
}

export function createManagerKube(kubeConfig: KubeConfig, fieldManager: string): ManagerKube {
  const objects = KubernetesObjectApi.makeApiClient(kubeConfig);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const rbac = kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  const apply = (object: KubernetesObject) =>
    objects.patch(object, undefined, undefined, fieldManager, true, PatchStrategy.ServerSideApply);
  const cluster: ClusterApi = {
    async get(ref) {
      try {
        return await objects.read<KubeObject>(header(ref));
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    async apply(object) {
      await apply(object);
    },
    async create(object) {
      try {
        await objects.create(object, undefined, undefined, fieldManager);
        return true;
      } catch (error) {
        if (error instanceof ApiException && error.code === 409) return false;
        throw error;
      }
    },
    async delete(ref) {
      try {
        await objects.delete(header(ref), undefined, undefined, undefined, undefined, "Background");
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    },
  };
  return {
    cluster,
    core,
    coordination: kubeConfig.makeApiClient(CoordinationV1Api),
    async owner(name) {
      try {
        const role = await rbac.readClusterRole({ name });
        const uid = role.metadata?.uid;
        return uid === undefined ? undefined : { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", name, uid };
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    async readStatus(namespace, name) {
      try {
        return (await core.readNamespacedConfigMap({ name, namespace })).data?.[STATUS_DATA_KEY];
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    async writeStatus(namespace, name, statuses) {
      await apply({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace }, data: { [STATUS_DATA_KEY]: formatStatuses(statuses) } } as KubernetesObject);
    },
    async event(target, reason, message, type, reporter) {
      const namespace = target.namespace ?? "default";
      const now = new Date();
      await core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${target.name}.`, namespace },
          involvedObject: { apiVersion: target.apiVersion, kind: target.kind, name: target.name, namespace: target.namespace },
          reason,
          message: message.slice(0, 1000),
          type,
          source: { component: reporter },
          reportingComponent: reporter,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    },
  };
}

export type { V1Lease };
