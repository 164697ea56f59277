// Tenant namespaces as Kubeflow profiles look to the artifact server: a `pipeline-runner` ServiceAccount
// bound to the artifact edit ClusterRole in its own namespace, and a client pod running as it.
import { ClientPod } from "./clients.js";
import { apply, type Manifest } from "./kube.js";
import type { Suite } from "./suite.js";

export const PIPELINE_SERVICE_ACCOUNT = "pipeline-runner";

export interface Tenant {
  readonly namespace: string;
  readonly client: ClientPod;
  /** The user name the API server gives the client's token. */
  readonly user: string;
}

export function roleBinding(namespace: string, name: string, clusterRole: string, subject: Record<string, string>): Manifest {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name, namespace },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole },
    subjects: [subject],
  };
}

export interface TenantOptions {
  /** ClusterRole granting the artifact verbs (the chart's `<fullname>-edit`); absent: no grant. */
  readonly editClusterRole?: string;
  /** Pins the client pod (DaemonSet suite). */
  readonly nodeName?: string;
}

export async function createTenants(suite: Suite, prefixes: readonly string[], options: TenantOptions = {}): Promise<Tenant[]> {
  const namespaces: string[] = [];
  for (const prefix of prefixes) namespaces.push(await suite.namespace(prefix));
  return startTenantClients(namespaces, options);
}

/** The `pipeline-runner` ServiceAccount and, given a ClusterRole, its grant in its own namespace. */
export function pipelineAccount(namespace: string, editClusterRole: string | undefined): Manifest[] {
  const account: Manifest = { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: PIPELINE_SERVICE_ACCOUNT, namespace }, automountServiceAccountToken: false };
  if (editClusterRole === undefined) return [account];
  const subject = { kind: "ServiceAccount", name: PIPELINE_SERVICE_ACCOUNT, namespace };
  return [account, roleBinding(namespace, "pipeline-runner-artifacts", editClusterRole, subject)];
}

/** Service account, grant and client pod in namespaces that already exist. */
export async function startTenantClients(namespaces: readonly string[], options: TenantOptions = {}): Promise<Tenant[]> {
  await apply(namespaces.flatMap((namespace) => pipelineAccount(namespace, options.editClusterRole)));
  const clients = await ClientPod.startAll(
    namespaces.map((namespace) => ({
      namespace,
      name: "pipeline-client",
      serviceAccount: PIPELINE_SERVICE_ACCOUNT,
      ...(options.nodeName === undefined ? {} : { nodeName: options.nodeName }),
    })),
  );
  return namespaces.map((namespace, index) => {
    const client = clients[index];
    if (client === undefined) throw new Error(`no client for ${namespace}`);
    return { namespace, client, user: `system:serviceaccount:${namespace}:${PIPELINE_SERVICE_ACCOUNT}` };
  });
}
