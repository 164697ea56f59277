// Node-local topology: a DaemonSet behind a Service with internalTrafficPolicy: Local, on the host
// directory every kind node mounts (e2e/kind/cluster.yaml), offered as a ReadWriteMany PersistentVolume.
import { chmod, mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { artifactUrl, ClientPod, listUrl, serviceUrl } from "../support/clients.js";
import { env } from "../support/env.js";
import { apply, apps, core, schedulableNodeNames, waitForReadyPods } from "../support/kube.js";
import { fullname, helmInstall, helmTest, helmUninstall, type Release } from "../support/install.js";
import { e2eSuite } from "../support/suite.js";
import { pipelineAccount, PIPELINE_SERVICE_ACCOUNT } from "../support/tenants.js";

const suite = e2eSuite("daemonset");
const CLAIM = "shared-artifacts";

let release: Release;
let name: string;
let nodes: string[];
let tenant: string;
let hostDir: string;
/** One client per schedulable node, pinned to it. */
const clients = new Map<string, ClientPod>();

const client = (node: string) => {
  const pod = clients.get(node);
  if (pod === undefined) throw new Error(`no client on ${node}`);
  return pod;
};

suite.setup(async () => {
  nodes = await schedulableNodeNames();
  release = { name: suite.name("e2e"), namespace: await suite.namespace("e2e-ds") };
  name = fullname(release.name);
  tenant = await suite.namespace("e2e-ds-team");

  // The shared directory as a ReadWriteMany volume. kubelet would create a missing hostPath directory
  // as root 0755, which the server (65532) could not write, so it is made here, world-writable.
  const volumeDir = suite.name("e2e-ds");
  hostDir = path.join(env.sharedHostDir, volumeDir);
  await mkdir(hostDir, { recursive: true });
  await chmod(hostDir, 0o777);
  suite.onCleanup("remove the shared host directory", () => rm(hostDir, { recursive: true, force: true }));
  suite.onCleanup("delete the PersistentVolume", async () => {
    await core.deletePersistentVolume({ name: volumeDir });
  });
  await apply([
    {
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: volumeDir, labels: { "kfp-artifacts.e2e/run": "true" } },
      spec: {
        capacity: { storage: "1Gi" },
        accessModes: ["ReadWriteMany"],
        persistentVolumeReclaimPolicy: "Retain",
        storageClassName: "",
        hostPath: { path: `${env.sharedNodeDir}/${volumeDir}`, type: "Directory" },
        claimRef: { namespace: release.namespace, name: CLAIM },
      },
    },
    {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: CLAIM, namespace: release.namespace },
      spec: { accessModes: ["ReadWriteMany"], storageClassName: "", volumeName: volumeDir, resources: { requests: { storage: "1Gi" } } },
    },
  ]);

  suite.onCleanup("helm uninstall", () => helmUninstall(release));
  await helmInstall(release, { shared: { workloadKind: "daemonset" }, persistence: { existingClaim: CLAIM, accessMode: "ReadWriteMany" } });

  await apply(pipelineAccount(tenant, `${name}-edit`));
  const pods = await ClientPod.startAll(nodes.map((node, index) => ({ namespace: tenant, name: `client-${index}`, serviceAccount: PIPELINE_SERVICE_ACCOUNT, nodeName: node })));
  nodes.forEach((node, index) => {
    const pod = pods[index];
    if (pod !== undefined) clients.set(node, pod);
  });
});

describe("DaemonSet on a shared ReadWriteMany volume", () => {
  it("runs one Ready server pod on every schedulable node, behind a node-local Service", async () => {
    expect(nodes.length).toBeGreaterThanOrEqual(2);
    const pods = await waitForReadyPods(release.namespace, `app.kubernetes.io/instance=${release.name},app.kubernetes.io/component=server`, nodes.length);
    expect(pods.map((pod) => pod.spec?.nodeName).sort()).toEqual(nodes);
    const daemonSet = await apps.readNamespacedDaemonSet({ name, namespace: release.namespace });
    expect(daemonSet.status?.desiredNumberScheduled).toBe(nodes.length);
    expect(daemonSet.status?.numberReady).toBe(nodes.length);
    const service = await core.readNamespacedService({ name, namespace: release.namespace });
    expect(service.spec?.internalTrafficPolicy).toBe("Local");
  });

  it("answers each client from the server on the client's own node, every time", async () => {
    const url = serviceUrl(name, release.namespace);
    for (const node of nodes) {
      // Eight requests: with two servers, cluster-wide balancing would give a wrong node on 255/256 runs.
      const answers = await client(node).requestAll(Array.from({ length: 8 }, () => ({ url: `${url}/readyz`, credential: "none" as const })));
      const answeredBy = answers.map((answer) => ClientPod.json<{ node: string }>(answer).node);
      expect(answeredBy).toEqual(Array.from({ length: 8 }, () => node));
    }
  });

  it("reads through one node what was written through another, and the file is on the shared directory", async () => {
    const url = serviceUrl(name, release.namespace);
    const [first, second] = nodes;
    if (first === undefined || second === undefined) throw new Error("needs two schedulable nodes");
    const fromFirst = `written on ${first}\n`;
    const fromSecond = `written on ${second}\n`;
    const [putFirst] = await client(first).requestAll([{ url: artifactUrl(url, tenant, "nodes/first.txt"), method: "PUT", body: { text: fromFirst } }] as const);
    expect(putFirst.status).toBe(201);
    const [readOnSecond, putSecond] = await client(second).requestAll([
      { url: artifactUrl(url, tenant, "nodes/first.txt") },
      { url: artifactUrl(url, tenant, "nodes/second.txt"), method: "PUT", body: { text: fromSecond } },
    ] as const);
    expect(readOnSecond.status).toBe(200);
    expect(readOnSecond.text).toBe(fromFirst);
    expect(putSecond.status).toBe(201);
    const [readOnFirst, list] = await client(first).requestAll([{ url: artifactUrl(url, tenant, "nodes/second.txt") }, { url: listUrl(url, tenant, "nodes/") }] as const);
    expect(readOnFirst.text).toBe(fromSecond);
    expect(ClientPod.json<{ items: { key: string }[] }>(list).items.map((item) => item.key)).toEqual(["nodes/first.txt", "nodes/second.txt"]);
    // The volume layout <root>/<namespace>/<key>, on the directory the host shares with every node.
    expect(await readFile(path.join(hostDir, tenant, "nodes/first.txt"), "utf8")).toBe(fromFirst);
  });

  it("passes helm test through the node-local Service", async () => {
    const output = await helmTest(release);
    expect(output).toMatch(/Phase:\s+Succeeded/);
    expect(output).toContain('"ok":true');
  });
});
