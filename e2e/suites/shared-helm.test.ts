// Shared (central) server installed with Helm: the common contract, then what only a Helm release has:
// an upgrade that changes configuration, `helm test`, and `helm uninstall` keeping the PVC.
import { describe, expect, it } from "vitest";
import { artifactUrl, serviceUrl } from "../support/clients.js";
import { apply, apps, core, waitForPersistentVolumeClaimBound } from "../support/kube.js";
import { fullname, helmInstall, helmTest, helmUninstall, helmUpgrade, type Release } from "../support/install.js";
import { describeSharedServer, SURVIVOR, type SharedServer } from "../support/shared-contract.js";
import { e2eSuite } from "../support/suite.js";
import { createTenants, roleBinding } from "../support/tenants.js";

const suite = e2eSuite("shared-helm");
const BASE_VALUES = { persistence: { size: "1Gi" } };
const TRUSTED_USER = "alice@example.com";

let release: Release;
let server: SharedServer;
let uninstalled = false;

suite.setup(async () => {
  release = { name: suite.name("e2e"), namespace: await suite.namespace("e2e-central") };
  const name = fullname(release.name);
  suite.onCleanup("helm uninstall", async () => {
    if (!uninstalled) await helmUninstall(release);
  });
  await helmInstall(release, BASE_VALUES);
  const [teamA, teamB] = await createTenants(suite, ["e2e-team-a", "e2e-team-b"], { editClusterRole: `${name}-edit` });
  if (teamA === undefined || teamB === undefined) throw new Error("tenants missing");
  // A person (as the trusted header names them) who may read team-a's artifacts, for the upgrade test.
  await apply([roleBinding(teamA.namespace, "alice-artifacts-view", `${name}-view`, { apiGroup: "rbac.authorization.k8s.io", kind: "User", name: TRUSTED_USER })]);
  server = {
    url: serviceUrl(name, release.namespace),
    namespace: release.namespace,
    podSelector: `app.kubernetes.io/instance=${release.name},app.kubernetes.io/component=server`,
    replicas: 1,
    teamA,
    teamB,
  };
});

describe("shared server, Helm", () => {
  describeSharedServer(() => server);

  it("keeps artifacts through a helm upgrade that turns on the trusted kubeflow-userid header", async () => {
    await helmUpgrade(release, { ...BASE_VALUES, auth: { trustedUserHeader: "kubeflow-userid" }, logLevel: "debug" });
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
