// A vendor rebrands the chart by editing Chart.yaml and values only: no object name, label, image or
// note keeps the upstream product name or registry.
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { chartDir, helmTemplate, parseObjects, podSpecs, renderNotes, type RenderOptions } from "./lib/render.js";

const UPSTREAM_NAME = "kfp-artifacts";
const UPSTREAM_REGISTRY = "ghcr.io";
// The artifact URI scheme is a protocol, not a brand: KFP resolves `kfp-artifacts://` URIs.
const URI_SCHEME = /kfp-artifacts:\/\//g;

let vendorChart = "";
let scratch = "";

beforeAll(async () => {
  // What a vendor does: copy the chart, rename it in Chart.yaml, install with their values.
  scratch = await mkdtemp(path.join(os.tmpdir(), "rebrand-"));
  vendorChart = path.join(scratch, "acme-artifacts");
  await cp(chartDir, vendorChart, { recursive: true });
  const chartYaml = path.join(vendorChart, "Chart.yaml");
  const original = await readFile(chartYaml, "utf8");
  await writeFile(chartYaml, original.replace(/^name: .*$/m, "name: acme-artifacts").replace(/^home: .*$/m, "home: https://acme.example"));
});

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

function vendorRender(extra: RenderOptions = {}): RenderOptions {
  return { chart: vendorChart, release: "acme", valuesFiles: ["rebranded-values.yaml"], ...extra };
}

describe("rebranding", () => {
  it("renders no upstream name or registry anywhere but in artifact URIs", async () => {
    const result = await helmTemplate(vendorRender());
    expect(result.stderr).toBe("");
    const leftovers = result.stdout
      .replace(URI_SCHEME, "")
      .split("\n")
      .filter((line) => line.includes(UPSTREAM_NAME) || line.includes(UPSTREAM_REGISTRY));
    expect(leftovers).toEqual([]);

    const objects = parseObjects(result.stdout);
    expect(objects.length).toBeGreaterThan(15);
    for (const object of objects) {
      // kfp-launcher is KFP's own ConfigMap name, which the launcher looks up.
      if (object.metadata.name !== "kfp-launcher") expect(object.metadata.name).toMatch(/^acme-artifacts/);
      expect(object.metadata.labels?.["app.kubernetes.io/name"]).toBe("acme-artifacts");
      expect(object.metadata.labels?.["vendor.acme.example/product"]).toBe("artifact-store");
    }
    for (const { spec } of podSpecs(objects)) {
      for (const container of spec.containers) expect(container.image).toBe("registry.acme.example/acme/artifact-store:2.3.1");
      expect(spec.imagePullSecrets).toEqual([{ name: "acme-pull" }]);
    }
    const claims = objects.filter((o) => o.kind === "PersistentVolumeClaim").map((o) => o.metadata.name);
    expect(claims.sort()).toEqual(["acme-artifacts", "acme-artifacts-team-a"]);
  });

  it("keeps the upstream name out of NOTES.txt too", async () => {
    const notes = await renderNotes(vendorRender());
    expect(notes.replace(URI_SCHEME, "")).not.toContain(UPSTREAM_NAME);
    expect(notes).toContain("http://acme-artifacts.kubeflow.svc:8080");
  });

  it("detects the upstream name when a vendor value is missing", async () => {
    const result = await helmTemplate(vendorRender({ set: ["image.repository=kubeflow/kfp-artifacts"] }));
    expect(result.stdout.replace(URI_SCHEME, "")).toContain(`registry.acme.example/kubeflow/${UPSTREAM_NAME}:2.3.1`);
  });

  it("takes the image tag from Chart.yaml's appVersion by default", async () => {
    const chart = parse(await readFile(path.join(chartDir, "Chart.yaml"), "utf8")) as { appVersion: string };
    const result = await helmTemplate({ set: ["tests.enabled=false"] });
    const images = podSpecs(parseObjects(result.stdout)).flatMap(({ spec }) => spec.containers.map((c) => c.image));
    expect(images).toEqual([`ghcr.io/kubeflow/kfp-artifacts:${chart.appVersion}`]);
  });
});
