// The Kustomize distribution: every overlay builds with `kubectl kustomize`, meets the restricted Pod
// Security standard, and renders exactly the objects the chart renders with the matching ci/ values
// (Helm-only labels aside), so the two distributions cannot silently diverge.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  at,
  buildKustomization,
  chartDir,
  findObject,
  type KubeObject,
  kustomizeDir,
  objectKey,
  podSpecs,
  renderChart,
  type RenderOptions,
  restrictedViolations,
  normalized,
} from "../../charts/tests/lib/render.js";

// `kustomizeOnly`: objects a kustomization adds that the chart cannot render the same way (Kubeflow's
// well-known system key Secret: the chart references it or generates a random pair).
type Equivalent = { kustomization: string; chart: RenderOptions; kustomizeOnly?: string[] };

const KUBEFLOW_SYSTEM_KEY_SECRET = "Secret/kubeflow/mlpipeline-minio-artifact";
// The label KFP's own kustomize puts on every object of Kubeflow Pipelines.
const KFP_APPLICATION_LABEL = "application-crd-id";

// Each overlay (and each component the overlays do not use) against the chart values it stands for.
const equivalents: Equivalent[] = [
  { kustomization: "overlays/central", chart: { valuesFiles: ["shared-rwo-values.yaml"] } },
  { kustomization: "overlays/daemonset", chart: { valuesFiles: ["daemonset-values.yaml"] } },
  { kustomization: "overlays/dedicated", chart: { valuesFiles: ["dedicated-values.yaml"] } },
  {
    kustomization: "overlays/kubeflow",
    // The overlay carries KFP's application label, which the chart gives with commonLabels.
    chart: { valuesFiles: ["kubeflow-values.yaml"], set: [`commonLabels.${KFP_APPLICATION_LABEL}=kubeflow-pipelines`] },
    kustomizeOnly: [KUBEFLOW_SYSTEM_KEY_SECRET],
  },
  { kustomization: "tests/fixtures/rwx", chart: { valuesFiles: ["shared-rwx-values.yaml"] } },
  { kustomization: "tests/fixtures/networkpolicy", chart: { set: ["networkPolicy.enabled=true"] } },
  // components/namespace: the chart never creates namespaces (Helm's --create-namespace does).
  { kustomization: "tests/fixtures/namespace-central", chart: { valuesFiles: ["shared-rwo-values.yaml"] }, kustomizeOnly: ["Namespace//kubeflow"] },
  {
    kustomization: "tests/fixtures/namespace-dedicated",
    chart: { valuesFiles: ["dedicated-values.yaml"] },
    kustomizeOnly: ["Namespace//team-a", "Namespace//team-b"],
  },
  {
    kustomization: "tests/fixtures/kubeflow-s3-daemonset",
    chart: { valuesFiles: ["daemonset-values.yaml"], set: ["s3.aliases.seaweedfs=true"] },
    kustomizeOnly: [KUBEFLOW_SYSTEM_KEY_SECRET],
  },
];

const overlays = readdirSync(path.join(kustomizeDir, "overlays")).sort();
const components = readdirSync(path.join(kustomizeDir, "components")).sort();

function byKey(objects: KubeObject[]): Map<string, KubeObject> {
  return new Map(objects.map((object) => [objectKey(object), object]));
}

describe("kustomize overlays", () => {
  it("has the four overlays and an equivalence case for each", () => {
    expect(overlays).toEqual(["central", "daemonset", "dedicated", "kubeflow"]);
    for (const overlay of overlays) {
      expect(equivalents.map((e) => e.kustomization)).toContain(`overlays/${overlay}`);
    }
  });

  it.each(equivalents)("$kustomization builds the same objects as the chart", async ({ kustomization, chart, kustomizeOnly = [] }) => {
    const [built, rendered] = await Promise.all([
      buildKustomization(kustomization),
      renderChart({ ...chart, skipTests: true }),
    ]);
    const fromKustomize = byKey(built.map(normalized));
    const fromChart = byKey(rendered.map(normalized));
    for (const key of kustomizeOnly) {
      expect(fromKustomize.has(key), key).toBe(true);
      fromKustomize.delete(key);
    }
    expect([...fromKustomize.keys()].sort()).toEqual([...fromChart.keys()].sort());
    for (const [key, object] of fromChart) expect(fromKustomize.get(key), key).toEqual(object);
  });

  it.each(equivalents)("every pod of $kustomization meets the restricted standard", async ({ kustomization }) => {
    const specs = podSpecs(await buildKustomization(kustomization));
    expect(specs.length).toBeGreaterThanOrEqual(1);
    const problems = specs.flatMap(({ owner, spec }) => restrictedViolations(spec).map((p) => `${owner}: ${p}`));
    expect(problems).toEqual([]);
  });

  it.each(overlays)("every object of overlay %s carries the app.kubernetes.io labels", async (overlay) => {
    const objects = await buildKustomization(`overlays/${overlay}`);
    for (const object of objects) {
      for (const label of ["name", "instance", "component", "version", "part-of"]) {
        expect(object.metadata.labels?.[`app.kubernetes.io/${label}`], `${objectKey(object)} ${label}`).toBeTruthy();
      }
      expect(object.metadata.labels?.["app.kubernetes.io/managed-by"]).toBeUndefined();
    }
  });

  it("stamps one scoped server per namespace in the dedicated overlay", async () => {
    const objects = await buildKustomization("overlays/dedicated");
    for (const namespace of ["team-a", "team-b"]) {
      const name = `kfp-artifacts-${namespace}`;
      const deployment = findObject(objects, "Deployment", name, namespace);
      expect(at(deployment, "spec", "template", "spec", "volumes", 0, "persistentVolumeClaim", "claimName")).toBe(name);
      findObject(objects, "PersistentVolumeClaim", name, namespace);
      findObject(objects, "Service", name, namespace);
      const binding = findObject(objects, "ClusterRoleBinding", name);
      expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name, namespace }]);
    }
    expect(objects.filter((o) => o.kind === "Deployment")).toHaveLength(2);
  });

  it("detects a difference, so the equivalence check can fail", async () => {
    const [built, rendered] = await Promise.all([
      buildKustomization("overlays/central"),
      renderChart({ valuesFiles: ["kubeflow-values.yaml"], skipTests: true }),
    ]);
    expect(byKey(built.map(normalized))).not.toEqual(byKey(rendered.map(normalized)));
  });
});

describe("kustomize layout", () => {
  it.each(components)("component %s is a kind: Component with a README", (component) => {
    const dir = path.join(kustomizeDir, "components", component);
    const kustomization = parse(readFileSync(path.join(dir, "kustomization.yaml"), "utf8")) as { kind: string };
    expect(kustomization.kind).toBe("Component");
    expect(readFileSync(path.join(dir, "README.md"), "utf8")).toMatch(/^# /);
  });

  it("has the components the topologies need", () => {
    expect(components).toEqual(["daemonset", "istio", "kubeflow-rbac", "kubeflow-s3", "manager", "namespace", "networkpolicy", "rwx"]);
  });

  it.each(overlays)("overlay %s shows the image override, at the tag of the chart's appVersion", (overlay) => {
    const chart = parse(readFileSync(path.join(chartDir, "Chart.yaml"), "utf8")) as { appVersion: string };
    const kustomization = parse(readFileSync(path.join(kustomizeDir, "overlays", overlay, "kustomization.yaml"), "utf8")) as {
      images?: { name: string; newTag?: string }[];
    };
    expect(kustomization.images).toEqual([{ name: "ghcr.io/kubeflow/kfp-artifacts", newTag: chart.appVersion }]);
  });

  it("labels the kubeflow overlay's objects and pods, not its selectors, as KFP's manifests label theirs", async () => {
    const objects = await buildKustomization("overlays/kubeflow");
    for (const object of objects) expect(object.metadata.labels?.[KFP_APPLICATION_LABEL], objectKey(object)).toBe("kubeflow-pipelines");
    const deployment = findObject(objects, "Deployment", "kfp-artifacts", "kubeflow");
    expect(at(deployment, "spec", "template", "metadata", "labels", KFP_APPLICATION_LABEL)).toBe("kubeflow-pipelines");
    expect(at(deployment, "spec", "selector", "matchLabels", KFP_APPLICATION_LABEL)).toBeUndefined();
  });

  it("names the Namespace after the kustomization that uses components/namespace", async () => {
    const central = await buildKustomization("tests/fixtures/namespace-central");
    const dedicated = await buildKustomization("tests/fixtures/namespace-dedicated");
    expect(central.filter((object) => object.kind === "Namespace").map((object) => object.metadata.name)).toEqual(["kubeflow"]);
    expect(dedicated.filter((object) => object.kind === "Namespace").map((object) => object.metadata.name).sort()).toEqual(["team-a", "team-b"]);
    // Namespaces come first, so `kubectl apply -k` creates them before what lives in them.
    expect(central[0]?.kind).toBe("Namespace");
  });

  it.each(overlays)("overlay %s has a README with its one-line install", (overlay) => {
    const readme = path.join(kustomizeDir, "overlays", overlay, "README.md");
    expect(existsSync(readme)).toBe(true);
    expect(readFileSync(readme, "utf8")).toContain(`kubectl apply -k kustomize/overlays/${overlay}`);
  });
});
