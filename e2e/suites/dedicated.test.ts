// Dedicated servers next to the shared one (the KEP's per-namespace opt-in), from one Helm release:
// two namespaces get their own server and PVC, each refuses the other namespace, the shared server keeps
// serving a namespace without one, and the namespace quota is counted per namespace on each server.
import { describe, expect, it } from "vitest";
import { artifactUrl, ClientPod, listUrl, serviceUrl } from "../support/clients.js";
import { core, waitForDeploymentAvailable, waitForPersistentVolumeClaimBound } from "../support/kube.js";
import { fullname, helmInstall, helmUninstall, type Release } from "../support/install.js";
import { e2eSuite } from "../support/suite.js";
import { startTenantClients, type Tenant } from "../support/tenants.js";

const suite = e2eSuite("dedicated");
// Small enough that a refused upload fits in socket buffers: the client finishes sending before the 507.
const QUOTA_BYTES = 64 * 1024;
const CHUNK_BYTES = 40_000;

let release: Release;
let name: string;
let dedicatedA: Tenant;
let dedicatedB: Tenant;
let plain: Tenant;

const dedicatedUrl = (tenant: Tenant) => serviceUrl(`${name}-${tenant.namespace}`, tenant.namespace);
const sharedUrl = () => serviceUrl(name, release.namespace);

suite.setup(async () => {
  release = { name: suite.name("e2e"), namespace: await suite.namespace("e2e-ded") };
  name = fullname(release.name);
  const namespaces = [await suite.namespace("e2e-ded-a"), await suite.namespace("e2e-ded-b"), await suite.namespace("e2e-plain")];
  suite.onCleanup("helm uninstall", () => helmUninstall(release));
  await helmInstall(release, {
    persistence: { size: "1Gi" },
    dedicated: { namespaces: namespaces.slice(0, 2) },
    limits: { namespaceQuotaBytes: String(QUOTA_BYTES) },
  });
  [dedicatedA, dedicatedB, plain] = (await startTenantClients(namespaces, { editClusterRole: `${name}-edit` })) as [Tenant, Tenant, Tenant];
});

describe("dedicated servers per namespace next to the shared server", () => {
  it("gives each dedicated namespace its own Ready server and its own PVC", async () => {
    const volumes = new Set<string>();
    for (const tenant of [dedicatedA, dedicatedB]) {
      const server = `${name}-${tenant.namespace}`;
      await waitForDeploymentAvailable(tenant.namespace, server);
      await waitForPersistentVolumeClaimBound(tenant.namespace, server);
      const claim = await core.readNamespacedPersistentVolumeClaim({ name: server, namespace: tenant.namespace });
      volumes.add(claim.spec?.volumeName ?? "");
      const ready = await tenant.client.request({ url: `${dedicatedUrl(tenant)}/readyz`, credential: "none" });
      expect(ready.status).toBe(200);
    }
    await waitForPersistentVolumeClaimBound(release.namespace, name);
    volumes.add((await core.readNamespacedPersistentVolumeClaim({ name, namespace: release.namespace })).spec?.volumeName ?? "");
    expect(volumes.size).toBe(3);
    expect(volumes.has("")).toBe(false);
  });

  it("serves its own namespace and refuses the other one", async () => {
    const key = "scoped/own.txt";
    const [own, foreignNamespace] = await dedicatedA.client.requestAll([
      { url: artifactUrl(dedicatedUrl(dedicatedA), dedicatedA.namespace, key), method: "PUT", body: { text: "team a" } },
      // team-a's own namespace, asked of team-b's server: not served there, whoever asks.
      { url: artifactUrl(dedicatedUrl(dedicatedB), dedicatedA.namespace, key), method: "PUT", body: { text: "wrong server" } },
    ] as const);
    expect(own.status).toBe(201);
    expect(foreignNamespace.status).toBe(404);
    expect(ClientPod.json<{ error: { message: string } }>(foreignNamespace).error.message).toContain(dedicatedB.namespace);
    const [bOnA, bListOnA, bOwnOnA, bOnB] = await dedicatedB.client.requestAll([
      { url: artifactUrl(dedicatedUrl(dedicatedA), dedicatedA.namespace, key) },
      { url: listUrl(dedicatedUrl(dedicatedA), dedicatedA.namespace) },
      { url: artifactUrl(dedicatedUrl(dedicatedA), dedicatedB.namespace, key), method: "PUT", body: { text: "team b on a's server" } },
      { url: artifactUrl(dedicatedUrl(dedicatedB), dedicatedB.namespace, key), method: "PUT", body: { text: "team b" } },
    ] as const);
    expect(bOnA.status).toBe(403);
    expect(bListOnA.status).toBe(403);
    expect(bOwnOnA.status).toBe(404);
    expect(bOnB.status).toBe(201);
  });

  it("leaves namespaces without a dedicated server to the shared server, on its own volume", async () => {
    const key = "shared/plain.txt";
    const [put, get] = await plain.client.requestAll([
      { url: artifactUrl(sharedUrl(), plain.namespace, key), method: "PUT", body: { text: "served centrally" } },
      { url: artifactUrl(sharedUrl(), plain.namespace, key) },
    ] as const);
    expect(put.status).toBe(201);
    expect(get.text).toBe("served centrally");
    // team-a's artifact lives on team-a's PVC only; the shared server's volume does not have it.
    const viaShared = await dedicatedA.client.request({ url: artifactUrl(sharedUrl(), dedicatedA.namespace, "scoped/own.txt") });
    expect(viaShared.status).toBe(404);
  });

  it("applies the namespace quota per namespace on every server", async () => {
    const fill = (char: string) => ({ fill: { size: CHUNK_BYTES, char } });
    for (const [tenant, url] of [
      [dedicatedA, dedicatedUrl(dedicatedA)],
      [dedicatedB, dedicatedUrl(dedicatedB)],
      [plain, sharedUrl()],
    ] as const) {
      const [first, second, firstAgain] = await tenant.client.requestAll([
        { url: artifactUrl(url, tenant.namespace, "quota/first.bin"), method: "PUT", body: fill("a") },
        { url: artifactUrl(url, tenant.namespace, "quota/second.bin"), method: "PUT", body: fill("b") },
        { url: artifactUrl(url, tenant.namespace, "quota/first.bin") },
      ] as const);
      expect(first.status, `first write in ${tenant.namespace}`).toBe(201);
      expect(second.status, `second write in ${tenant.namespace}`).toBe(507);
      expect(firstAgain.status).toBe(200);
      expect(firstAgain.size).toBe(CHUNK_BYTES);
      const missing = await tenant.client.request({ url: artifactUrl(url, tenant.namespace, "quota/second.bin") });
      expect(missing.status).toBe(404);
    }
  });
});
