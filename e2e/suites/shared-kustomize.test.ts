// Shared (central) server installed with `kubectl apply -k kustomize/overlays/central`, unchanged: it
// lands in the `kubeflow` namespace with the fixed names a Kubeflow install uses.
import { describe, expect, it } from "vitest";
import { serviceUrl } from "../support/clients.js";
import { apps, createNamespace, deleteNamespaces, namespaceExists, waitForDeploymentAvailable } from "../support/kube.js";
import { kubectlApplyKustomization, kubectlDeleteKustomization, kustomization } from "../support/install.js";
import { describeSharedServer, type SharedServer } from "../support/shared-contract.js";
import { e2eSuite } from "../support/suite.js";
import { createTenants } from "../support/tenants.js";

const suite = e2eSuite("shared-kustomize");
const NAMESPACE = "kubeflow";
const NAME = "kfp-artifacts";
let server: SharedServer;

suite.setup(async () => {
  // The overlay expects the kubeflow namespace to exist, as it does in a Kubeflow cluster.
  if (!(await namespaceExists(NAMESPACE))) {
    await createNamespace(NAMESPACE);
    suite.onCleanup(`delete namespace ${NAMESPACE}`, () => deleteNamespaces([NAMESPACE]));
  }
  suite.watchNamespace(NAMESPACE);
  const dir = await kustomization(suite.name("central"), "central");
  suite.onCleanup("kubectl delete -k", () => kubectlDeleteKustomization(dir));
  await kubectlApplyKustomization(dir);
  await waitForDeploymentAvailable(NAMESPACE, NAME);
  const [teamA, teamB] = await createTenants(suite, ["e2e-k-team-a", "e2e-k-team-b"], { editClusterRole: `${NAME}-edit` });
  if (teamA === undefined || teamB === undefined) throw new Error("tenants missing");
  server = {
    url: serviceUrl(NAME, NAMESPACE),
    namespace: NAMESPACE,
    podSelector: "app.kubernetes.io/instance=kfp-artifacts,app.kubernetes.io/component=server",
    replicas: 1,
    teamA,
    teamB,
  };
});

describe("shared server, Kustomize overlay central", () => {
  it("runs the overlay's Deployment unchanged: one replica, Recreate, the published image", async () => {
    const deployment = await apps.readNamespacedDeployment({ name: NAME, namespace: NAMESPACE });
    expect(deployment.spec?.replicas).toBe(1);
    expect(deployment.spec?.strategy?.type).toBe("Recreate");
    expect(deployment.spec?.template.spec?.containers[0]?.image).toMatch(/kfp-artifacts:/);
  });

  describeSharedServer(() => server);
});
