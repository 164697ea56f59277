// Dedicated servers installed with `kubectl apply -k kustomize/overlays/dedicated`, unchanged: the
// overlay names its namespaces team-a and team-b, which must exist first (as Kubeflow profiles do).
import { describe, expect, it } from "vitest";
import { artifactUrl, serviceUrl } from "../support/clients.js";
import { createNamespace, deleteNamespaces, namespaceExists, waitForDeploymentAvailable } from "../support/kube.js";
import { kubectlApplyKustomization, kubectlDeleteKustomization, kustomization } from "../support/install.js";
import { e2eSuite } from "../support/suite.js";
import { startTenantClients, type Tenant } from "../support/tenants.js";

const suite = e2eSuite("dedicated-kustomize");
const NAMESPACES = ["team-a", "team-b"] as const;
let teamA: Tenant;
let teamB: Tenant;

const serverUrl = (namespace: string) => serviceUrl(`kfp-artifacts-${namespace}`, namespace);

suite.setup(async () => {
  for (const namespace of NAMESPACES) {
    // Fixed names: a leftover of an earlier run must be gone first, or the run would not be clean.
    if (await namespaceExists(namespace)) throw new Error(`namespace ${namespace} already exists: delete it (kubectl delete namespace ${namespace})`);
    await createNamespace(namespace);
    suite.watchNamespace(namespace);
  }
  suite.onCleanup("delete team-a and team-b", () => deleteNamespaces([...NAMESPACES]));
  const dir = await kustomization(suite.name("dedicated"), "dedicated");
  suite.onCleanup("kubectl delete -k", () => kubectlDeleteKustomization(dir));
  await kubectlApplyKustomization(dir);
  for (const namespace of NAMESPACES) await waitForDeploymentAvailable(namespace, `kfp-artifacts-${namespace}`);
  [teamA, teamB] = (await startTenantClients([...NAMESPACES], { editClusterRole: "kfp-artifacts-edit" })) as [Tenant, Tenant];
});

describe("dedicated servers, Kustomize overlay dedicated", () => {
  it("gives team-a and team-b each a server that serves its own namespace only", async () => {
    for (const [own, other] of [
      [teamA, teamB],
      [teamB, teamA],
    ] as const) {
      const key = `kustomize/${own.namespace}.txt`;
      const [put, get, otherServer, otherNamespace] = await own.client.requestAll([
        { url: artifactUrl(serverUrl(own.namespace), own.namespace, key), method: "PUT", body: { text: own.namespace } },
        { url: artifactUrl(serverUrl(own.namespace), own.namespace, key) },
        // The other team's server does not serve this namespace at all, and its own one is not ours.
        { url: artifactUrl(serverUrl(other.namespace), own.namespace, key) },
        { url: artifactUrl(serverUrl(other.namespace), other.namespace, key) },
      ] as const);
      expect(put.status).toBe(201);
      expect(get.text).toBe(own.namespace);
      expect(otherServer.status).toBe(404);
      expect(otherNamespace.status).toBe(403);
    }
  });
});
