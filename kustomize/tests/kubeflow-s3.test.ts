// overlays/kubeflow (with components/kubeflow-s3) against what Kubeflow Pipelines 2.17 and Kubeflow's
// profile controller expect of the object store that third-party/seaweedfs used to provide.
import { beforeAll, describe, expect, it } from "vitest";
import {
  at,
  buildKustomization,
  type Container,
  findObject,
  type KubeObject,
  type PodSpec,
} from "../../charts/tests/lib/render.js";

// Where KFP's pieces look, as their manifests and defaults say: the launcher's default endpoint and the
// API server's OBJECTSTORECONFIG_HOST/PORT, the UI's MINIO_HOST/PORT, Argo's artifact repository
// (all seaweedfs.kubeflow:9000), and the profile controller's S3_ENDPOINT_URL and AWS_ENDPOINT_URL.
const KFP_ENDPOINTS = [
  { client: "launcher, API server, UI, Argo", port: 9000 },
  { client: "profile controller S3", port: 8333 },
  { client: "profile controller IAM", port: 8111 },
];
const SYSTEM_KEY_SECRET = "mlpipeline-minio-artifact";

let objects: KubeObject[] = [];
beforeAll(async () => {
  objects = await buildKustomization("overlays/kubeflow");
});

function server(): { deployment: KubeObject; container: Container } {
  const deployment = findObject(objects, "Deployment", "kfp-artifacts", "kubeflow");
  const container = (at(deployment, "spec", "template", "spec") as PodSpec).containers.find((c) => c.name === "server");
  if (!container) throw new Error("no server container");
  return { deployment, container };
}

describe("overlays/kubeflow for Kubeflow Pipelines' S3 clients", () => {
  it.each(KFP_ENDPOINTS)("answers the $client at seaweedfs.kubeflow:$port with the server's S3 port", ({ port }) => {
    const alias = findObject(objects, "Service", "seaweedfs", "kubeflow");
    const entry = (at(alias, "spec", "ports") as { port: number; targetPort: string; name: string }[]).find((p) => p.port === port);
    expect(entry?.targetPort).toBe("s3");
    // Istio detects the protocol from the port name.
    expect(entry?.name).toMatch(/^http-/);
    const { deployment, container } = server();
    expect(container.ports).toContainEqual({ name: "s3", containerPort: 9000, protocol: "TCP" });
    expect(at(alias, "spec", "selector")).toEqual(at(deployment, "spec", "selector", "matchLabels"));
  });

  it("ships Kubeflow's system key Secret with the keys KFP reads, and the server reads it", () => {
    const secret = findObject(objects, "Secret", SYSTEM_KEY_SECRET, "kubeflow");
    expect(Object.keys(secret.stringData as Record<string, string>).sort()).toEqual(["accesskey", "secretkey"]);
    const env = server().container.env ?? [];
    const byName = (name: string) => env.find((variable) => variable.name === name);
    expect(byName("S3_ENABLED")?.value).toBe("true");
    expect(byName("S3_KUBEFLOW_BUCKET")?.value).toBe("mlpipeline");
    expect(byName("S3_SYSTEM_NAMESPACE")?.value).toBe("kubeflow");
    expect(byName("S3_ACCESS_KEY")?.valueFrom).toEqual({ secretKeyRef: { name: SYSTEM_KEY_SECRET, key: "accesskey", optional: true } });
    expect(byName("S3_SECRET_KEY")?.valueFrom).toEqual({ secretKeyRef: { name: SYSTEM_KEY_SECRET, key: "secretkey", optional: true } });
    expect(byName("S3_ACCESS_KEY_USER")?.value).toBe("kfp-artifacts:s3-system-key");
    expect(byName("S3_NAMESPACE_SERVICE_ACCOUNT")?.value).toBe("default-editor");
  });

  it("lets the system key's user issue namespace keys and use artifacts everywhere", () => {
    const binding = findObject(objects, "ClusterRoleBinding", "kfp-artifacts-s3-system-key");
    expect(binding.subjects).toEqual([{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "kfp-artifacts:s3-system-key" }]);
    const role = findObject(objects, "ClusterRole", "kfp-artifacts-s3-system-key");
    expect(at(role, "rules", 0, "verbs")).toEqual(["readArtifact", "writeArtifact", "deleteArtifact", "createArtifactCredentials"]);
  });

  it("admits S3 requests, which sidecar-less pipeline pods and the profile controller sign themselves, through Istio", () => {
    const rules = at(findObject(objects, "AuthorizationPolicy", "kfp-artifacts", "kubeflow"), "spec", "rules") as unknown[];
    expect(rules).toContainEqual({
      to: [{ operation: { ports: ["9000"] } }],
      when: [{ key: "request.headers[kubeflow-userid]", notValues: ["*"] }],
    });
  });

  it("adds nothing else of SeaweedFS's", () => {
    const names = objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(names.filter((name) => /seaweed|minio/.test(name))).toEqual(["Secret/mlpipeline-minio-artifact", "Service/seaweedfs"]);
  });
});
