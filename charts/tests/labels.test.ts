// The recommended `app.kubernetes.io/*` labels on every object of every topology.
import { describe, expect, it } from "vitest";
import { at, ciValuesFiles, renderChart } from "./lib/render.js";

const REQUIRED = [
  "app.kubernetes.io/name",
  "app.kubernetes.io/instance",
  "app.kubernetes.io/component",
  "app.kubernetes.io/version",
  "app.kubernetes.io/part-of",
  "app.kubernetes.io/managed-by",
];

describe("labels", () => {
  it.each(ciValuesFiles())("every object of %s carries the app.kubernetes.io labels", async (valuesFile) => {
    const objects = await renderChart({ valuesFiles: [valuesFile] });
    const missing = objects.flatMap((object) =>
      REQUIRED.filter((label) => !object.metadata.labels?.[label]).map(
        (label) => `${object.kind} ${object.metadata.name}: ${label}`,
      ),
    );
    expect(missing).toEqual([]);
    for (const object of objects) {
      const podLabels = at(object, "spec", "template", "metadata", "labels") as Record<string, string> | undefined;
      if (podLabels) expect(podLabels).toMatchObject(object.metadata.labels ?? {});
    }
  });

  it("adds commonLabels everywhere and drops the Helm-only labels on request", async () => {
    const objects = await renderChart({ set: ["commonLabels.team=platform", "helmLabels=false"] });
    for (const object of objects) {
      expect(object.metadata.labels?.team).toBe("platform");
      expect(object.metadata.labels?.["helm.sh/chart"]).toBeUndefined();
      expect(object.metadata.labels?.["app.kubernetes.io/managed-by"]).toBeUndefined();
    }
  });
});
