// What operators add to the server pods: volumes, env sources, init containers and sidecars, lifecycle
// hooks, a startup probe, rollout strategies, pull secrets, the token mount and per-namespace scheduling.
// Each feature reaches every server workload (shared Deployment, node-local DaemonSet, dedicated Deployment).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { at, everyServerWorkload, findObject, helmTemplate, type KubeObject, objectsOfKind, podSpecOf, renderChart, serverContainer } from "./lib/render.js";

/** The shared Deployment, a dedicated Deployment and the DaemonSet, rendered with `set`. */
async function serverWorkloads(set: string[]): Promise<KubeObject[]> {
  const workloads = await everyServerWorkload(set);
  expect(workloads).toHaveLength(3);
  return workloads;
}

const SIDECAR_SECURITY = [
  "securityContext.allowPrivilegeEscalation=false",
  "securityContext.readOnlyRootFilesystem=true",
  "securityContext.capabilities.drop={ALL}",
];

describe("server pod extensions", () => {
  it("adds extra volumes, mounts, env sources, init containers and sidecars to every server", async () => {
    const workloads = await serverWorkloads([
      "extraVolumes[0].name=ca",
      "extraVolumes[0].configMap.name=corp-ca",
      "extraVolumeMounts[0].name=ca",
      "extraVolumeMounts[0].mountPath=/etc/ssl/corp",
      "extraVolumeMounts[0].readOnly=true",
      "extraEnvFrom[0].secretRef.name=proxy-settings",
      "initContainers[0].name=wait-for-volume",
      "initContainers[0].image=busybox:1.37",
      ...SIDECAR_SECURITY.map((field) => `initContainers[0].${field}`),
      "extraContainers[0].name=log-shipper",
      "extraContainers[0].image=fluent-bit:4",
      ...SIDECAR_SECURITY.map((field) => `extraContainers[0].${field}`),
    ]);
    for (const workload of workloads) {
      const spec = podSpecOf(workload);
      const where = `${workload.kind} ${workload.metadata.name}`;
      expect(spec.volumes?.map((volume) => volume.name), where).toEqual(["artifacts", "ca"]);
      expect(spec.volumes?.[1]).toEqual({ name: "ca", configMap: { name: "corp-ca" } });
      const server = serverContainer(workload);
      expect(server.volumeMounts, where).toEqual([
        { name: "artifacts", mountPath: "/artifacts" },
        { name: "ca", mountPath: "/etc/ssl/corp", readOnly: true },
      ]);
      expect(server.envFrom, where).toEqual([{ secretRef: { name: "proxy-settings" } }]);
      expect(spec.initContainers?.map((container) => container.name), where).toEqual(["wait-for-volume"]);
      expect(spec.containers.map((container) => container.name), where).toEqual(["server", "log-shipper"]);
    }
  });

  it("renders none of them by default", async () => {
    for (const workload of await serverWorkloads([])) {
      const spec = podSpecOf(workload);
      expect(spec.initContainers).toBeUndefined();
      expect(spec.containers.map((container) => container.name)).toEqual(["server"]);
      expect(spec.volumes).toHaveLength(1);
      const server = serverContainer(workload);
      for (const field of ["envFrom", "lifecycle", "startupProbe"]) expect(server[field], field).toBeUndefined();
    }
  });

  it("sets a startup probe and lifecycle hooks; a preStop sleep lengthens the default grace period", async () => {
    const workloads = await serverWorkloads([
      "startupProbe.httpGet.path=/healthz",
      "startupProbe.httpGet.port=http",
      "startupProbe.periodSeconds=2",
      "startupProbe.failureThreshold=30",
      "lifecycle.preStop.sleep.seconds=7",
    ]);
    for (const workload of workloads) {
      const server = serverContainer(workload);
      expect(server.startupProbe).toEqual({ httpGet: { path: "/healthz", port: "http" }, periodSeconds: 2, failureThreshold: 30 });
      expect(server.lifecycle).toEqual({ preStop: { sleep: { seconds: 7 } } });
      // shutdownDelaySeconds 5 + shutdownGraceSeconds 25 + the sleep 7 + 10.
      expect(podSpecOf(workload).terminationGracePeriodSeconds).toBe(47);
    }
  });

  it("refuses a grace period that a preStop sleep leaves too short, naming the sleep", async () => {
    const result = await helmTemplate({ set: ["lifecycle.preStop.sleep.seconds=20", "terminationGracePeriodSeconds=45"] });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("terminationGracePeriodSeconds=45 must exceed lifecycle.preStop.sleep.seconds + shutdownDelaySeconds + shutdownGraceSeconds = 50");
  });

  it("takes strategy, updateStrategy and revisionHistoryLimit overrides, keeping the volume-safe defaults otherwise", async () => {
    const defaults = await serverWorkloads([]);
    expect(defaults.map((w) => at(w, "spec", "strategy") ?? at(w, "spec", "updateStrategy"))).toEqual([
      { type: "Recreate" },
      { type: "Recreate" },
      { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
    ]);
    const overridden = await serverWorkloads([
      "strategy.type=RollingUpdate",
      "strategy.rollingUpdate.maxSurge=0",
      "strategy.rollingUpdate.maxUnavailable=1",
      "updateStrategy.type=OnDelete",
      "revisionHistoryLimit=2",
    ]);
    const [shared, dedicated, daemonset] = overridden;
    for (const deployment of [shared, dedicated]) {
      expect(at(deployment, "spec", "strategy")).toEqual({ type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } });
    }
    expect(at(daemonset, "spec", "updateStrategy")).toEqual({ type: "OnDelete" });
    for (const workload of overridden) expect(at(workload, "spec", "revisionHistoryLimit")).toBe(2);
    for (const workload of defaults) expect(at(workload, "spec", "revisionHistoryLimit")).toBe(5);
  });

  it("puts global pull secrets first, each name once, on every server and the test pod", async () => {
    const workloads = await serverWorkloads(["global.imagePullSecrets[0].name=mirror", "imagePullSecrets[0].name=mirror", "imagePullSecrets[1].name=vendor"]);
    for (const workload of workloads) expect(podSpecOf(workload).imagePullSecrets).toEqual([{ name: "mirror" }, { name: "vendor" }]);
    const withTests = await renderChart({ set: ["global.imagePullSecrets[0].name=mirror"] });
    const testPod = objectsOfKind(withTests, "Pod")[0];
    expect(at(testPod, "spec", "imagePullSecrets")).toEqual([{ name: "mirror" }]);
  });
});

describe("automountServiceAccountToken", () => {
  it("mounts the token exactly when authentication needs it, on the pods and their ServiceAccounts", async () => {
    const cases = [
      { set: [], expected: true },
      { set: ["auth.mode=none"], expected: false },
      { set: ["auth.mode=none", "automountServiceAccountToken=true"], expected: true },
    ];
    for (const { set, expected } of cases) {
      for (const workload of await serverWorkloads(set)) {
        expect(podSpecOf(workload).automountServiceAccountToken, `${set.join(",")} ${workload.metadata.name}`).toBe(expected);
      }
      const objects = await renderChart({ skipTests: true, set: ["dedicated.namespaces={team-a}", ...set] });
      for (const account of objectsOfKind(objects, "ServiceAccount")) expect(account.automountServiceAccountToken, account.metadata.name).toBe(expected);
    }
  });

  it("refuses to unmount it while Kubernetes authentication needs it", async () => {
    const result = await helmTemplate({ set: ["automountServiceAccountToken=false"] });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("automountServiceAccountToken=false with auth.mode=kubernetes");
  });
});

describe("per-namespace scheduling of dedicated servers", () => {
  it("replaces the top-level nodeSelector, tolerations and affinity with the entry's own", async () => {
    const objects = await renderChart({
      skipTests: true,
      set: [
        "nodeSelector.pool=general",
        "tolerations[0].key=dedicated",
        "tolerations[0].operator=Exists",
        "affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight=1",
        "affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference.matchExpressions[0].key=zone",
        "affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference.matchExpressions[0].operator=Exists",
        "dedicated.namespaces[0].name=team-gpu",
        "dedicated.namespaces[0].nodeSelector.pool=gpu",
        "dedicated.namespaces[0].tolerations[0].key=nvidia.com/gpu",
        "dedicated.namespaces[0].tolerations[0].operator=Exists",
        "dedicated.namespaces[0].tolerations[0].effect=NoSchedule",
        "dedicated.namespaces[0].affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight=1",
        "dedicated.namespaces[0].affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey=kubernetes.io/hostname",
        "dedicated.namespaces[1]=team-b",
      ],
    });
    const gpu = podSpecOf(findObject(objects, "Deployment", "kfp-artifacts-team-gpu"));
    expect(gpu.nodeSelector).toEqual({ pool: "gpu" });
    expect(gpu.tolerations).toEqual([{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);
    expect(Object.keys(gpu.affinity as object)).toEqual(["podAntiAffinity"]);
    for (const name of ["kfp-artifacts", "kfp-artifacts-team-b"]) {
      const spec = podSpecOf(findObject(objects, "Deployment", name));
      expect(spec.nodeSelector, name).toEqual({ pool: "general" });
      expect(spec.tolerations, name).toEqual([{ key: "dedicated", operator: "Exists" }]);
      expect(Object.keys(spec.affinity as object), name).toEqual(["nodeAffinity"]);
    }
  });

  it("lets an entry clear a top-level setting with an empty one (in a values file)", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "scheduling-values-"));
    try {
      const file = path.join(dir, "values.yaml");
      await writeFile(file, "nodeSelector: {pool: general}\ndedicated:\n  namespaces:\n    - {name: team-a, nodeSelector: {}}\n");
      const objects = await renderChart({ skipTests: true, valuesFiles: [file] });
      expect(podSpecOf(findObject(objects, "Deployment", "kfp-artifacts-team-a")).nodeSelector).toBeUndefined();
      expect(podSpecOf(findObject(objects, "Deployment", "kfp-artifacts")).nodeSelector).toEqual({ pool: "general" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
