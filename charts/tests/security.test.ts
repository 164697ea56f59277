// Restricted Pod Security on every pod spec of every topology, the helm test pod included.
import { describe, expect, it } from "vitest";
import { ciValuesFiles, podSpecs, renderChart, restrictedViolations } from "./lib/render.js";

describe("pod security", () => {
  it.each(ciValuesFiles())("every pod of %s meets the restricted standard", async (valuesFile) => {
    const objects = await renderChart({ valuesFiles: [valuesFile] });
    const specs = podSpecs(objects);
    expect(specs.length).toBeGreaterThanOrEqual(2);
    // Only the shared-node-path topology mounts a hostPath; its docs say it needs a privileged namespace.
    const allowHostPath = valuesFile === "daemonset-hostpath-values.yaml";
    const problems = specs.flatMap(({ owner, spec }) =>
      restrictedViolations(spec, { allowHostPath }).map((problem) => `${owner}: ${problem}`),
    );
    expect(problems).toEqual([]);
  });

  it("makes the volume writable to the server through fsGroup, and nothing else writable", async () => {
    const objects = await renderChart();
    for (const { owner, spec } of podSpecs(objects)) {
      expect(spec.securityContext?.fsGroup, owner).toBe(65532);
      const writableMounts = spec.containers.flatMap((container) =>
        ((container.volumeMounts ?? []) as { mountPath: string; readOnly?: boolean }[]).filter((m) => !m.readOnly),
      );
      expect(writableMounts.map((mount) => mount.mountPath)).toEqual(owner.startsWith("Pod") ? [] : ["/artifacts"]);
    }
  });

  it("detects violations, so the checks above can fail", () => {
    const problems = restrictedViolations({
      hostNetwork: true,
      volumes: [{ name: "root", hostPath: { path: "/" } }],
      containers: [{ name: "bad", image: "x", securityContext: { privileged: true, runAsUser: 0 } }],
    });
    expect(problems).toEqual([
      "hostNetwork is true",
      "enableServiceLinks is not false",
      "volume root is of type hostPath",
      "container bad is privileged",
      "container bad allows privilege escalation",
      "container bad does not drop ALL capabilities",
      "container bad may run as root",
      "container bad runs as UID 0, not 65532",
      "container bad has no seccomp profile",
      "container bad has a writable root filesystem",
    ]);
  });
});
