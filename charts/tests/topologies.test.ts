// Renders every ci/*-values.yaml topology and checks the objects each one must (and must not) have.
import { beforeAll, describe, expect, it } from "vitest";
import {
  at,
  type Container,
  envOf,
  findObject,
  type KubeObject,
  NAMESPACE,
  objectsOfKind,
  type PodSpec,
  podSpecOf,
  renderChart,
  renderNotes,
  serverContainer,
} from "./lib/render.js";

const topologies = [
  "shared-rwo",
  "shared-rwx",
  "daemonset",
  "daemonset-hostpath",
  "dedicated",
  "shared-dedicated",
  "kubeflow",
] as const;
type Topology = (typeof topologies)[number];
const rendered = new Map<Topology, KubeObject[]>();

beforeAll(async () => {
  const results = await Promise.all(topologies.map((name) => renderChart({ valuesFiles: [`${name}-values.yaml`] })));
  topologies.forEach((name, index) => rendered.set(name, results[index] ?? []));
});

function objects(topology: Topology): KubeObject[] {
  const found = rendered.get(topology);
  if (!found) throw new Error(`${topology} was not rendered`);
  return found;
}

describe("shared server on ReadWriteOnce (the default)", () => {
  it("runs one Deployment with Recreate on a kept ReadWriteOnce PVC", () => {
    const all = objects("shared-rwo");
    const deployment = findObject(all, "Deployment", "kfp-artifacts", NAMESPACE);
    expect(at(deployment, "spec", "replicas")).toBe(1);
    expect(at(deployment, "spec", "strategy")).toEqual({ type: "Recreate" });
    const claim = findObject(all, "PersistentVolumeClaim", "kfp-artifacts", NAMESPACE);
    expect(at(claim, "spec", "accessModes")).toEqual(["ReadWriteOnce"]);
    expect(at(claim, "spec", "resources", "requests", "storage")).toBe("10Gi");
    expect(claim.metadata.annotations?.["helm.sh/resource-policy"]).toBe("keep");
    expect(at(podSpecOf(deployment), "volumes", 0, "persistentVolumeClaim", "claimName")).toBe("kfp-artifacts");
    expect(objectsOfKind(all, "DaemonSet")).toHaveLength(0);
    expect(objectsOfKind(all, "PodDisruptionBudget")).toHaveLength(0);
  });

  it("runs the published image on port 8080 with the data volume at /artifacts", () => {
    const deployment = findObject(objects("shared-rwo"), "Deployment", "kfp-artifacts");
    const container = serverContainer(deployment);
    expect(container.image).toBe("ghcr.io/kubeflow/kfp-artifacts:0.1.0");
    expect(container.imagePullPolicy).toBe("IfNotPresent");
    expect(container.ports).toEqual([
      { name: "http", containerPort: 8080, protocol: "TCP" },
      { name: "s3", containerPort: 9000, protocol: "TCP" },
    ]);
    expect(container.volumeMounts).toEqual([{ name: "artifacts", mountPath: "/artifacts" }]);
    expect(at(container, "livenessProbe", "httpGet")).toEqual({ path: "/healthz", port: "http" });
    expect(at(container, "readinessProbe", "httpGet")).toEqual({ path: "/readyz", port: "http" });
  });

  it("sets the server's environment contract", () => {
    const container = serverContainer(findObject(objects("shared-rwo"), "Deployment", "kfp-artifacts"));
    const env = envOf(container);
    expect(Object.fromEntries(env)).toMatchObject({
      PORT: "8080",
      ARTIFACTS_ROOT: "/artifacts",
      AUTH_MODE: "kubernetes",
      AUTH_AUDIENCES: "pipelines.kubeflow.org",
      AUTH_TRUSTED_USER_HEADER: "",
      SCOPE_NAMESPACE: "",
      MAX_UPLOAD_BYTES: "10Gi",
      MIN_FREE_BYTES: "256Mi",
      NAMESPACE_QUOTA_BYTES: "0",
      SHUTDOWN_DELAY_SECONDS: "5",
      SHUTDOWN_GRACE_SECONDS: "25",
      SERVER_PROCESSES: "1",
      LOG_LEVEL: "info",
    });
    const nodeName = container.env?.find((variable) => variable.name === "NODE_NAME");
    expect(nodeName?.valueFrom).toEqual({ fieldRef: { fieldPath: "spec.nodeName" } });
  });

  it("gives the pod longer to stop than the server's shutdown delay and grace", () => {
    const deployment = findObject(objects("shared-rwo"), "Deployment", "kfp-artifacts");
    expect(podSpecOf(deployment).terminationGracePeriodSeconds).toBe(40);
  });

  it("exposes a ClusterIP Service with `http` and `http-s3` ports and Cluster traffic policy", () => {
    const service = findObject(objects("shared-rwo"), "Service", "kfp-artifacts", NAMESPACE);
    expect(at(service, "spec", "type")).toBe("ClusterIP");
    expect(at(service, "spec", "internalTrafficPolicy")).toBe("Cluster");
    expect(at(service, "spec", "ports")).toEqual([
      { name: "http", port: 8080, targetPort: "http", protocol: "TCP", appProtocol: "http" },
      { name: "http-s3", port: 9000, targetPort: "s3", protocol: "TCP", appProtocol: "http" },
    ]);
    expect(at(service, "spec", "selector")).toEqual({
      "app.kubernetes.io/name": "kfp-artifacts",
      "app.kubernetes.io/instance": "kfp-artifacts",
      "app.kubernetes.io/component": "server",
    });
  });

  it("binds the server's ServiceAccount to a ClusterRole that only creates token and access reviews", () => {
    const all = objects("shared-rwo");
    const role = findObject(all, "ClusterRole", "kfp-artifacts-auth");
    expect(role.rules).toEqual([
      { apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] },
      { apiGroups: ["authorization.k8s.io"], resources: ["subjectaccessreviews"], verbs: ["create"] },
    ]);
    const binding = findObject(all, "ClusterRoleBinding", "kfp-artifacts");
    expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "kfp-artifacts-auth" });
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "kfp-artifacts", namespace: NAMESPACE }]);
    const deployment = findObject(all, "Deployment", "kfp-artifacts");
    expect(podSpecOf(deployment).serviceAccountName).toBe("kfp-artifacts");
    findObject(all, "ServiceAccount", "kfp-artifacts", NAMESPACE);
  });

  it("ships user ClusterRoles aggregated into kubeflow-pipelines-edit and -view", () => {
    const all = objects("shared-rwo");
    const edit = findObject(all, "ClusterRole", "kfp-artifacts-edit");
    expect(edit.metadata.labels?.["rbac.authorization.kubeflow.org/aggregate-to-kubeflow-pipelines-edit"]).toBe("true");
    expect(edit.rules).toEqual([
      { apiGroups: ["pipelines.kubeflow.org"], resources: ["runs"], verbs: ["readArtifact", "writeArtifact", "deleteArtifact"] },
    ]);
    const view = findObject(all, "ClusterRole", "kfp-artifacts-view");
    expect(view.metadata.labels?.["rbac.authorization.kubeflow.org/aggregate-to-kubeflow-pipelines-view"]).toBe("true");
    expect(view.rules).toEqual([{ apiGroups: ["pipelines.kubeflow.org"], resources: ["runs"], verbs: ["readArtifact"] }]);
  });

  it("has a helm test pod that round-trips an artifact through the Service with its own audience-bound token", () => {
    const all = objects("shared-rwo");
    const pod = findObject(all, "Pod", "kfp-artifacts-test", NAMESPACE);
    expect(pod.metadata.annotations?.["helm.sh/hook"]).toBe("test");
    const spec = pod.spec as PodSpec;
    expect(spec.serviceAccountName).toBe("kfp-artifacts-test");
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(at(spec, "volumes", 0, "projected", "sources", 0, "serviceAccountToken")).toMatchObject({
      audience: "pipelines.kubeflow.org",
    });
    const [container] = spec.containers;
    expect(container?.image).toBe("ghcr.io/kubeflow/kfp-artifacts:0.1.0");
    expect(container?.command?.toString()).toMatch(/^\/nodejs\/bin\/node,-e,/);
    const script = (container?.command as string[])[2] ?? "";
    for (const step of ['call("PUT"', 'call("GET")', 'call("DELETE")', "process.exit(1)"]) expect(script).toContain(step);
    expect(envOf(container as Container).get("ARTIFACTS_URL")).toBe(
      "http://kfp-artifacts.kubeflow.svc:8080/v1/namespaces/kubeflow/artifacts",
    );
    const role = findObject(all, "Role", "kfp-artifacts-test", NAMESPACE);
    expect(at(role, "rules", 0, "verbs")).toEqual(["readArtifact", "writeArtifact", "deleteArtifact"]);
    const binding = findObject(all, "RoleBinding", "kfp-artifacts-test", NAMESPACE);
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "kfp-artifacts-test", namespace: NAMESPACE }]);
    // Grants are created first and removed once the test passed; the pod stays for `helm test --logs`.
    for (const grant of [role, binding, findObject(all, "ServiceAccount", "kfp-artifacts-test")]) {
      expect(grant.metadata.annotations).toMatchObject({
        "helm.sh/hook-weight": "-10",
        "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded",
      });
    }
    expect(pod.metadata.annotations?.["helm.sh/hook-delete-policy"]).toBe("before-hook-creation");
  });

  it("explains the URI scheme, the Service URL and next steps in NOTES.txt", async () => {
    const notes = await renderNotes({ valuesFiles: ["shared-rwo-values.yaml"] });
    expect(notes).toContain("kfp-artifacts://<namespace>/<key>");
    expect(notes).toContain("http://kfp-artifacts.kubeflow.svc:8080");
    expect(notes).toContain("helm test kfp-artifacts");
    expect(notes).not.toContain("WARNING");
  });
});

describe("shared server on ReadWriteMany", () => {
  it("runs 3 replicas that roll without losing capacity, with a PodDisruptionBudget", () => {
    const all = objects("shared-rwx");
    const deployment = findObject(all, "Deployment", "kfp-artifacts");
    expect(at(deployment, "spec", "replicas")).toBe(3);
    expect(at(deployment, "spec", "strategy")).toEqual({
      type: "RollingUpdate",
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
    expect(at(findObject(all, "PersistentVolumeClaim", "kfp-artifacts"), "spec", "accessModes")).toEqual(["ReadWriteMany"]);
    const budget = findObject(all, "PodDisruptionBudget", "kfp-artifacts", NAMESPACE);
    expect(at(budget, "spec", "maxUnavailable")).toBe(1);
    expect(at(budget, "spec", "selector", "matchLabels")).toEqual(at(deployment, "spec", "selector", "matchLabels"));
  });
});

describe("node-local DaemonSet", () => {
  it("runs a DaemonSet on a ReadWriteMany PVC behind a node-local Service", () => {
    const all = objects("daemonset");
    expect(objectsOfKind(all, "Deployment")).toHaveLength(0);
    const daemonSet = findObject(all, "DaemonSet", "kfp-artifacts", NAMESPACE);
    expect(at(daemonSet, "spec", "updateStrategy", "type")).toBe("RollingUpdate");
    expect(at(findObject(all, "PersistentVolumeClaim", "kfp-artifacts"), "spec", "accessModes")).toEqual(["ReadWriteMany"]);
    expect(at(findObject(all, "Service", "kfp-artifacts"), "spec", "internalTrafficPolicy")).toBe("Local");
    expect(objectsOfKind(all, "PodDisruptionBudget")).toHaveLength(0);
  });

  it("mounts a shared node path instead of a PVC when persistence.hostPath is set", async () => {
    const all = objects("daemonset-hostpath");
    expect(objectsOfKind(all, "PersistentVolumeClaim")).toHaveLength(0);
    const daemonSet = findObject(all, "DaemonSet", "kfp-artifacts");
    expect(at(podSpecOf(daemonSet), "volumes", 0)).toEqual({
      name: "artifacts",
      hostPath: { path: "/mnt/shared/kfp-artifacts", type: "DirectoryOrCreate" },
    });
    const notes = await renderNotes({ valuesFiles: ["daemonset-hostpath-values.yaml"] });
    expect(notes).toContain("invisible on the others");
  });

  it("warns in NOTES.txt when the DaemonSet's Service is set to Cluster", async () => {
    const notes = await renderNotes({ valuesFiles: ["daemonset-values.yaml"], set: ["service.internalTrafficPolicy=Cluster"] });
    expect(notes).toMatch(/WARNING: the DaemonSet's Service has internalTrafficPolicy=Cluster/);
    const quiet = await renderNotes({ valuesFiles: ["daemonset-values.yaml"] });
    expect(quiet).not.toContain("WARNING");
  });
});

describe("dedicated servers", () => {
  it("stamps a scoped Deployment, PVC, Service, ServiceAccount and binding per namespace, and no shared server", () => {
    const all = objects("dedicated");
    expect(all.filter((o) => o.metadata.labels?.["app.kubernetes.io/component"] === "server")).toHaveLength(0);
    for (const namespace of ["team-a", "team-b"]) {
      const name = `kfp-artifacts-${namespace}`;
      const deployment = findObject(all, "Deployment", name, namespace);
      const scope = serverContainer(deployment).env?.find((variable) => variable.name === "SCOPE_NAMESPACE");
      expect(scope?.valueFrom).toEqual({ fieldRef: { fieldPath: "metadata.namespace" } });
      expect(at(podSpecOf(deployment), "volumes", 0, "persistentVolumeClaim", "claimName")).toBe(name);
      expect(podSpecOf(deployment).serviceAccountName).toBe(name);
      findObject(all, "PersistentVolumeClaim", name, namespace);
      findObject(all, "ServiceAccount", name, namespace);
      const service = findObject(all, "Service", name, namespace);
      expect(at(service, "spec", "selector", "app.kubernetes.io/component")).toBe("dedicated-server");
      const binding = findObject(all, "ClusterRoleBinding", name);
      expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name, namespace }]);
    }
  });

  it("points the helm test at the first dedicated server and grants the test account there", () => {
    const all = objects("dedicated");
    const pod = findObject(all, "Pod", "kfp-artifacts-test", NAMESPACE);
    expect(envOf((pod.spec as PodSpec).containers[0] as Container).get("ARTIFACTS_URL")).toBe(
      "http://kfp-artifacts-team-a.team-a.svc:8080/v1/namespaces/team-a/artifacts",
    );
    findObject(all, "Role", "kfp-artifacts-test", "team-a");
    const binding = findObject(all, "RoleBinding", "kfp-artifacts-test", "team-a");
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "kfp-artifacts-test", namespace: NAMESPACE }]);
  });
});

describe("shared and dedicated together", () => {
  it("runs the shared server and per-namespace servers with their own overrides", () => {
    const all = objects("shared-dedicated");
    findObject(all, "Deployment", "kfp-artifacts", NAMESPACE);
    const finance = findObject(all, "Deployment", "kfp-artifacts-team-finance", "team-finance");
    expect(at(finance, "spec", "replicas")).toBe(1);
    const research = findObject(all, "Deployment", "kfp-artifacts-team-research", "team-research");
    expect(at(research, "spec", "replicas")).toBe(2);
    expect(at(research, "spec", "strategy", "type")).toBe("RollingUpdate");
    expect(serverContainer(research).resources).toEqual({
      requests: { cpu: "500m", memory: "256Mi" },
      limits: { memory: "1Gi" },
    });
    const researchClaim = findObject(all, "PersistentVolumeClaim", "kfp-artifacts-team-research", "team-research");
    expect(researchClaim.spec).toEqual({
      accessModes: ["ReadWriteMany"],
      storageClassName: "cephfs",
      resources: { requests: { storage: "500Gi" } },
    });
    const financeClaim = findObject(all, "PersistentVolumeClaim", "kfp-artifacts-team-finance", "team-finance");
    expect(at(financeClaim, "spec", "storageClassName")).toBe("standard-rwo");
    expect(objectsOfKind(all, "PodDisruptionBudget").map((o) => o.metadata.name)).toEqual(["kfp-artifacts-team-research"]);
    const spread = at(podSpecOf(finance), "topologySpreadConstraints", 0, "labelSelector", "matchLabels");
    expect(spread).toEqual(at(finance, "spec", "selector", "matchLabels"));
  });

  it("writes kfp-launcher ConfigMaps, NetworkPolicies and ServiceMonitors for every server that needs them", () => {
    const all = objects("shared-dedicated");
    const launchers = objectsOfKind(all, "ConfigMap").filter((o) => o.metadata.name === "kfp-launcher");
    expect(launchers.map((o) => o.metadata.namespace).sort()).toEqual(["team-finance", "team-research"]);
    const finance = launchers.find((o) => o.metadata.namespace === "team-finance");
    expect(at(finance, "data", "defaultPipelineRoot")).toBe("kfp-artifacts://team-finance");
    expect(at(finance, "data", "artifactServer")).toContain("http://kfp-artifacts-team-finance.team-finance.svc:8080");
    expect(objectsOfKind(all, "NetworkPolicy")).toHaveLength(3);
    const policy = findObject(all, "NetworkPolicy", "kfp-artifacts", NAMESPACE);
    expect(at(policy, "spec", "ingress", 0, "ports")).toEqual([{ port: "http", protocol: "TCP" }]);
    expect(objectsOfKind(all, "ServiceMonitor")).toHaveLength(3);
    expect(at(findObject(all, "ServiceMonitor", "kfp-artifacts"), "spec", "endpoints", 0, "path")).toBe("/metrics");
  });
});

describe("Kubeflow", () => {
  it("admits the trusted header only from the gateway and the KFP UI, others only with a token or on the S3 port, and trusts kubeflow-userid", () => {
    const all = objects("kubeflow");
    const policy = findObject(all, "AuthorizationPolicy", "kfp-artifacts", NAMESPACE);
    expect(policy.spec).toEqual({
      selector: { matchLabels: at(findObject(all, "Deployment", "kfp-artifacts"), "spec", "selector", "matchLabels") },
      action: "ALLOW",
      rules: [
        {
          from: [
            {
              source: {
                principals: [
                  "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
                  "cluster.local/ns/kubeflow/sa/ml-pipeline-ui",
                ],
              },
            },
          ],
        },
        {
          when: [
            { key: "request.headers[authorization]", values: ["*"] },
            { key: "request.headers[kubeflow-userid]", notValues: ["*"] },
          ],
        },
        {
          to: [{ operation: { methods: ["GET"], paths: ["/healthz", "/readyz", "/metrics"] } }],
          when: [{ key: "request.headers[kubeflow-userid]", notValues: ["*"] }],
        },
        {
          to: [{ operation: { ports: ["9000"] } }],
          when: [{ key: "request.headers[kubeflow-userid]", notValues: ["*"] }],
        },
      ],
    });
    const env = envOf(serverContainer(findObject(all, "Deployment", "kfp-artifacts")));
    expect(env.get("AUTH_TRUSTED_USER_HEADER")).toBe("kubeflow-userid");
    expect(env.get("AUTH_TRUSTED_USER_PREFIX")).toBe("");
  });
});

describe("value switches", () => {
  it("pins the image by digest and repoints every image with global.imageRegistry", async () => {
    const digest = `sha256:${"a".repeat(64)}`;
    const all = await renderChart({ set: [`image.digest=${digest}`, "global.imageRegistry=mirror.example:5000"] });
    const images = all.flatMap((o) => {
      const spec = o.kind === "Pod" ? (o.spec as PodSpec) : (at(o, "spec", "template", "spec") as PodSpec | undefined);
      return spec ? spec.containers.map((c) => c.image) : [];
    });
    expect(images.length).toBeGreaterThanOrEqual(2);
    for (const image of images) expect(image).toBe(`mirror.example:5000/kubeflow/kfp-artifacts@${digest}`);
  });

  it("passes auth, limits and extraEnv through to the environment", async () => {
    const all = await renderChart({
      set: [
        "auth.mode=none",
        "auth.audiences={a,b}",
        "limits.maxUploadBytes=1Gi",
        "limits.namespaceQuotaBytes=5Gi",
        "logLevel=debug",
        "shutdownGraceSeconds=50",
        "extraEnv[0].name=FSYNC",
      ],
      setString: ["extraEnv[0].value=false"],
    });
    const deployment = findObject(all, "Deployment", "kfp-artifacts");
    const env = envOf(serverContainer(deployment));
    expect(Object.fromEntries(env)).toMatchObject({
      AUTH_MODE: "none",
      AUTH_AUDIENCES: "a,b",
      MAX_UPLOAD_BYTES: "1Gi",
      NAMESPACE_QUOTA_BYTES: "5Gi",
      LOG_LEVEL: "debug",
      SHUTDOWN_GRACE_SECONDS: "50",
      FSYNC: "false",
    });
    expect(podSpecOf(deployment).terminationGracePeriodSeconds).toBe(65);
    const notes = await renderNotes({ set: ["auth.mode=none"] });
    expect(notes).toContain("WARNING: auth.mode=none");
  });

  it("uses an existing claim without creating one, and drops the keep policy when asked", async () => {
    const existing = await renderChart({ set: ["persistence.existingClaim=my-data"] });
    expect(objectsOfKind(existing, "PersistentVolumeClaim")).toHaveLength(0);
    const deployment = findObject(existing, "Deployment", "kfp-artifacts");
    expect(at(podSpecOf(deployment), "volumes", 0, "persistentVolumeClaim", "claimName")).toBe("my-data");
    const unkept = await renderChart({ set: ["persistence.keep=false"] });
    expect(findObject(unkept, "PersistentVolumeClaim", "kfp-artifacts").metadata.annotations).toBeUndefined();
  });

  it("renders nothing optional when it is switched off", async () => {
    const all = await renderChart({
      set: ["rbac.create=false", "rbac.userRoles.create=false", "serviceAccount.create=false", "tests.enabled=false"],
    });
    expect(all.map((o) => o.kind).sort()).toEqual(["Deployment", "PersistentVolumeClaim", "Service"]);
    expect(podSpecOf(findObject(all, "Deployment", "kfp-artifacts")).serviceAccountName).toBe("default");
  });

  it("renders extraObjects, templated", async () => {
    const all = await renderChart({
      set: ["extraObjects[0]=apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: '{{ .Release.Name }}-extra'"],
    });
    findObject(all, "ConfigMap", "kfp-artifacts-extra");
  });
});
