// The manager renders a dedicated server from the chart's own templates: what it applies for a namespace
// equals `helm template` with that namespace in dedicated.namespaces, but for its ownership marks.
import { describe, expect, it } from "vitest";
import { parseBlock } from "../../server/src/manager/block.js";
import { KEEP_ANNOTATION, MANAGED_BY, parseTemplates, renderObjects, type KubeObject as ManagedObject } from "../../server/src/manager/templates.js";
import { at, findObject, objectsOfKind, renderChart, type KubeObject } from "./lib/render.js";

const MANAGER = "kfp-artifacts-manager";

/** The manager's output without what only the manager adds. */
function withoutManagerMarks(object: ManagedObject): unknown {
  const copy = structuredClone(object);
  if (copy.metadata.labels) delete copy.metadata.labels[MANAGED_BY];
  delete copy.metadata.ownerReferences;
  if (copy.metadata.annotations) {
    delete copy.metadata.annotations[KEEP_ANNOTATION];
    if (Object.keys(copy.metadata.annotations).length === 0) delete copy.metadata.annotations;
  }
  return copy;
}

/** The chart's objects for a dedicated namespace, without Helm's keep annotation (Helm does not own the manager's claims). */
function withoutHelmKeep(object: KubeObject): unknown {
  const copy = structuredClone(object);
  if (copy.metadata.annotations) {
    delete copy.metadata.annotations["helm.sh/resource-policy"];
    if (Object.keys(copy.metadata.annotations).length === 0) delete copy.metadata.annotations;
  }
  return copy;
}

async function managerTemplates(set: string[] = []) {
  const objects = await renderChart({ set: ["manager.enabled=true", ...set], skipTests: true });
  const configMap = findObject(objects, "ConfigMap", `${MANAGER}-templates`, "kubeflow");
  return { objects, templates: parseTemplates(String(at(configMap, "data", "templates.json"))) };
}

describe("the manager's templates", () => {
  for (const [label, set] of [
    ["defaults", []],
    ["RWX, replicas' PDB on, resources, processes", ["persistence.accessMode=ReadWriteMany", "podDisruptionBudget.enabled=true", "resources.limits.memory=1Gi", "processes=3"]],
    [
      "pod extensions, strategy, pull secrets, scheduling, extraEnv",
      [
        "extraVolumes[0].name=ca",
        "extraVolumes[0].configMap.name=corp-ca",
        "extraVolumeMounts[0].name=ca",
        "extraVolumeMounts[0].mountPath=/etc/ssl/corp",
        "extraEnvFrom[0].configMapRef.name=proxy",
        "extraEnv[0].name=FSYNC",
        "extraEnv[0].value=yes",
        "initContainers[0].name=init",
        "initContainers[0].image=busybox",
        "extraContainers[0].name=sidecar",
        "extraContainers[0].image=busybox",
        "startupProbe.tcpSocket.port=http",
        "lifecycle.preStop.sleep.seconds=3",
        "strategy.type=Recreate",
        "revisionHistoryLimit=2",
        "global.imagePullSecrets[0].name=mirror",
        "nodeSelector.pool=general",
        "tolerations[0].operator=Exists",
      ],
    ],
  ] as const) {
    it(`equal helm template of dedicated.namespaces for the same namespace (${label})`, async () => {
      const { templates } = await managerTemplates([...set]);
      const parsed = parseBlock(set.some((s) => s.includes("ReadWriteMany")) ? "dedicated: true\naccessMode: ReadWriteMany" : "dedicated: true");
      if (!parsed.ok) throw new Error(parsed.message);
      const managed = renderObjects(templates, "team-x", parsed.block, { managerName: MANAGER, owner: undefined });
      const chart = await renderChart({ set: [...set, "helmLabels=false", "shared.enabled=false", "manager.enabled=false", "dedicated.namespaces={team-x}"], skipTests: true });
      const expected = chart.filter((object) => object.metadata.labels?.["app.kubernetes.io/component"] === "dedicated-server");
      const key = (object: { kind: string; metadata: { name: string } }) => `${object.kind}/${object.metadata.name}`;
      expect(managed.map(key).sort()).toEqual(expected.map(key).sort());
      for (const object of managed) {
        const twin = expected.find((candidate) => key(candidate) === key(object));
        expect(withoutManagerMarks(object), key(object)).toEqual(withoutHelmKeep(twin as KubeObject));
      }
    });
  }

  it("runs the manager with the restricted security context and least-privilege RBAC", async () => {
    const { objects } = await managerTemplates();
    const deployment = findObject(objects, "Deployment", MANAGER, "kubeflow");
    expect(at(deployment, "spec", "template", "spec", "securityContext")).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: "RuntimeDefault" } });
    expect(at(deployment, "spec", "template", "spec", "containers", 0, "securityContext")).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    const role = findObject(objects, "ClusterRole", MANAGER);
    const rules = at(role, "rules") as { resources: string[]; verbs: string[]; resourceNames?: string[] }[];
    const claims = rules.find((rule) => rule.resources.includes("persistentvolumeclaims"));
    expect(claims?.verbs).not.toContain("delete");
    expect(rules.find((rule) => rule.verbs.includes("bind"))?.resourceNames).toEqual(["kfp-artifacts-auth"]);
    expect(rules.flatMap((rule) => rule.verbs)).not.toContain("*");
    // Secrets: it writes each dedicated namespace's key pair by one name; it may read no other (charts/tests/s3.test.ts).
    for (const rule of rules.filter((candidate) => candidate.resources.includes("secrets"))) {
      if (rule.verbs.some((verb) => verb !== "create")) expect(rule.resourceNames).toEqual(["kfp-artifacts-s3-namespace-key"]);
      expect(rule.verbs).not.toContain("list");
      expect(rule.verbs).not.toContain("watch");
    }
    // ConfigMaps: it lists and watches them (the informer, by field selector) and patches only kfp-launcher,
    // whose providers key it merges; it never creates, updates or deletes one there.
    const configMapRules = rules.filter((rule) => rule.resources.includes("configmaps"));
    expect(configMapRules.flatMap((rule) => rule.verbs).sort()).toEqual(["list", "patch", "watch"]);
    expect(configMapRules.find((rule) => rule.verbs.includes("patch"))).toEqual({ apiGroups: [""], resources: ["configmaps"], verbs: ["patch"], resourceNames: ["kfp-launcher"] });
    // The shared server may read the status ConfigMap, by name, and nothing else.
    const reader = findObject(objects, "Role", `${MANAGER}-status-reader`, "kubeflow");
    expect(at(reader, "rules")).toEqual([{ apiGroups: [""], resources: ["configmaps"], verbs: ["get"], resourceNames: [`${MANAGER}-status`] }]);
  });

  it("tells the manager which namespaces the chart owns, and is off with manager.enabled=false", async () => {
    const { objects } = await managerTemplates(["dedicated.namespaces={team-a,team-b}"]);
    const env = at(findObject(objects, "Deployment", MANAGER, "kubeflow"), "spec", "template", "spec", "containers", 0, "env") as { name: string; value?: string }[];
    expect(env.find((item) => item.name === "STATIC_DEDICATED_NAMESPACES")?.value).toBe("team-a,team-b");
    const off = await renderChart({ set: ["manager.enabled=false"], skipTests: true });
    expect(objectsOfKind(off, "Deployment").map((object) => object.metadata.name)).toEqual(["kfp-artifacts"]);
  });
});
