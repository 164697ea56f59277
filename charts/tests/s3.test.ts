// The S3-compatible endpoint as the chart packages it: the port and environment of every server, the
// Services KFP's defaults look for, the static key's user and grants, the generated key pair, the
// NetworkPolicy and Istio rules for the S3 port, NOTES.txt, and the guards.
import { describe, expect, it } from "vitest";
import {
  at,
  ciValuesFiles,
  type Container,
  findObject,
  helmTemplate,
  type KubeObject,
  NAMESPACE,
  objectsOfKind,
  type PodSpec,
  renderChart,
  renderNotes,
  type RenderOptions,
} from "./lib/render.js";

type EnvVar = NonNullable<Container["env"]>[number];

function serverContainer(workload: KubeObject): Container {
  const container = (at(workload, "spec", "template", "spec") as PodSpec).containers.find((c) => c.name === "server");
  if (!container) throw new Error(`${workload.metadata.name} has no server container`);
  return container;
}

function s3Env(container: Container): EnvVar[] {
  return (container.env ?? []).filter((variable) => variable.name.startsWith("S3_"));
}

function workloads(objects: KubeObject[]): KubeObject[] {
  return objects.filter((o) => o.kind === "Deployment" || o.kind === "DaemonSet");
}

function secretRef(name: string, key: string, optional?: boolean) {
  return { secretKeyRef: { name, key, ...(optional === undefined ? {} : { optional }) } };
}

const ALIAS_NAMES = ["seaweedfs", "minio-service"];

describe("S3 on every server", () => {
  it.each(ciValuesFiles())("every server of %s listens on the S3 port and every Service exposes it as http-s3", async (valuesFile) => {
    const objects = await renderChart({ valuesFiles: [valuesFile], skipTests: true });
    const servers = workloads(objects);
    expect(servers.length).toBeGreaterThanOrEqual(1);
    for (const workload of servers) {
      const container = serverContainer(workload);
      expect(container.ports, workload.metadata.name).toContainEqual({ name: "s3", containerPort: 9000, protocol: "TCP" });
      const env = s3Env(container);
      expect(env.find((v) => v.name === "S3_ENABLED")?.value).toBe("true");
      expect(env.find((v) => v.name === "S3_PORT")?.value).toBe("9000");
      // The shared server's static pair, a dedicated server's own namespace pair.
      const dedicated = workload.metadata.labels?.["app.kubernetes.io/component"] === "dedicated-server";
      expect(env.find((v) => v.name === (dedicated ? "S3_NAMESPACE_ACCESS_KEY" : "S3_ACCESS_KEY"))?.valueFrom, workload.metadata.name).toBeDefined();
    }
    const services = objectsOfKind(objects, "Service").filter((o) => !ALIAS_NAMES.includes(o.metadata.name));
    expect(services.length).toBe(servers.length);
    for (const service of services) {
      expect(at(service, "spec", "ports"), service.metadata.name).toContainEqual({
        name: "http-s3",
        port: 9000,
        targetPort: "s3",
        protocol: "TCP",
        appProtocol: "http",
      });
    }
  });

  it("gives the shared server the whole S3 contract, the static key from Kubeflow's Secret", async () => {
    const objects = await renderChart({ skipTests: true });
    const env = s3Env(serverContainer(findObject(objects, "Deployment", "kfp-artifacts", NAMESPACE)));
    expect(env).toEqual([
      { name: "S3_ENABLED", value: "true" },
      { name: "S3_PORT", value: "9000" },
      { name: "S3_KUBEFLOW_BUCKET", value: "mlpipeline" },
      { name: "S3_SYSTEM_NAMESPACE", value: "kubeflow" },
      { name: "S3_REGION", value: "us-east-1" },
      { name: "S3_ACCESS_KEY", valueFrom: secretRef("mlpipeline-minio-artifact", "accesskey", true) },
      { name: "S3_SECRET_KEY", valueFrom: secretRef("mlpipeline-minio-artifact", "secretkey", true) },
      { name: "S3_ACCESS_KEY_USER", value: "kfp-artifacts:s3-system-key" },
      { name: "S3_NAMESPACE_SERVICE_ACCOUNT", value: "default-editor" },
      { name: "S3_MULTIPART_EXPIRY_HOURS", value: "168" },
    ]);
    // Kubeflow's manifests (or the operator) provide that Secret: the chart renders none by default.
    expect(objectsOfKind(objects, "Secret")).toEqual([]);
  });

  it("has the DaemonSet read the shared server's keys, a dedicated server its own namespace's pair from its namespace", async () => {
    const [daemonset, dedicated] = await Promise.all([
      renderChart({ valuesFiles: ["daemonset-values.yaml"], skipTests: true }),
      renderChart({ valuesFiles: ["dedicated-values.yaml"], skipTests: true }),
    ]);
    const perNode = s3Env(serverContainer(findObject(daemonset, "DaemonSet", "kfp-artifacts")));
    expect(perNode.find((v) => v.name === "S3_SECRET_KEY")?.valueFrom).toEqual(secretRef("mlpipeline-minio-artifact", "secretkey", true));
    for (const namespace of ["team-a", "team-b"]) {
      const env = s3Env(serverContainer(findObject(dedicated, "Deployment", `kfp-artifacts-${namespace}`, namespace)));
      expect(env.find((v) => v.name === "S3_NAMESPACE_ACCESS_KEY")?.valueFrom).toEqual(secretRef("kfp-artifacts-s3-namespace-key", "accesskey", true));
      expect(env.find((v) => v.name === "S3_NAMESPACE_SECRET_KEY")?.valueFrom).toEqual(secretRef("kfp-artifacts-s3-namespace-key", "secretkey", true));
      expect(env.find((v) => v.name === "S3_SYSTEM_NAMESPACE")?.value).toBe("kubeflow");
    }
  });

  it("passes every S3 value through", async () => {
    const objects = await renderChart({
      skipTests: true,
      set: [
        "s3.port=9100",
        "s3.kubeflowBucket=artifacts.example",
        "s3.systemNamespace=kfp",
        "s3.region=eu-west-1",
        "s3.credentials.existingSecret=kfp-system-key",
        "s3.credentials.accessKeyKey=AWS_ACCESS_KEY_ID",
        "s3.credentials.secretKeyKey=AWS_SECRET_ACCESS_KEY",
        "s3.masterKey.existingSecret=kfp-master-key",
        "s3.masterKey.key=master",
        "s3.systemKeyUser=s3:kfp-system",
        "s3.namespaceServiceAccount=pipeline-runner",
        "s3.multipartExpiryHours=24",
      ],
    });
    const deployment = findObject(objects, "Deployment", "kfp-artifacts");
    const container = serverContainer(deployment);
    expect(s3Env(container)).toEqual([
      { name: "S3_ENABLED", value: "true" },
      { name: "S3_PORT", value: "9100" },
      { name: "S3_KUBEFLOW_BUCKET", value: "artifacts.example" },
      { name: "S3_SYSTEM_NAMESPACE", value: "kfp" },
      { name: "S3_REGION", value: "eu-west-1" },
      { name: "S3_ACCESS_KEY", valueFrom: secretRef("kfp-system-key", "AWS_ACCESS_KEY_ID", true) },
      { name: "S3_SECRET_KEY", valueFrom: secretRef("kfp-system-key", "AWS_SECRET_ACCESS_KEY", true) },
      { name: "S3_ACCESS_KEY_USER", value: "s3:kfp-system" },
      // An explicit master key is not optional: without it the namespace keys would silently change.
      { name: "S3_MASTER_KEY", valueFrom: secretRef("kfp-master-key", "master") },
      { name: "S3_NAMESPACE_SERVICE_ACCOUNT", value: "pipeline-runner" },
      { name: "S3_MULTIPART_EXPIRY_HOURS", value: "24" },
    ]);
    expect(container.ports).toContainEqual({ name: "s3", containerPort: 9100, protocol: "TCP" });
    expect(at(findObject(objects, "Service", "kfp-artifacts"), "spec", "ports", 1)).toMatchObject({ name: "http-s3", port: 9100 });
    const binding = findObject(objects, "ClusterRoleBinding", "kfp-artifacts-s3-system-key");
    expect(binding.subjects).toEqual([{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "s3:kfp-system" }]);
  });

  it("turns off completely with s3.enabled=false", async () => {
    const objects = await renderChart({
      skipTests: true,
      set: ["s3.enabled=false", "networkPolicy.enabled=true", "istio.authorizationPolicy.enabled=true"],
    });
    const container = serverContainer(findObject(objects, "Deployment", "kfp-artifacts"));
    expect(s3Env(container)).toEqual([{ name: "S3_ENABLED", value: "false" }]);
    expect(container.ports).toEqual([{ name: "http", containerPort: 8080, protocol: "TCP" }]);
    expect((at(findObject(objects, "Service", "kfp-artifacts"), "spec", "ports") as unknown[]).length).toBe(1);
    expect(objects.filter((o) => o.metadata.name.includes("s3"))).toEqual([]);
    expect(at(findObject(objects, "NetworkPolicy", "kfp-artifacts"), "spec", "ingress")).toHaveLength(1);
    expect(JSON.stringify(findObject(objects, "AuthorizationPolicy", "kfp-artifacts").spec)).not.toContain("ports");
  });
});

describe("the static key's Kubernetes user", () => {
  it("is bound to the artifact verbs and createArtifactCredentials in every namespace", async () => {
    const objects = await renderChart({ skipTests: true });
    const role = findObject(objects, "ClusterRole", "kfp-artifacts-s3-system-key");
    expect(role.rules).toEqual([
      {
        apiGroups: ["pipelines.kubeflow.org"],
        resources: ["runs"],
        verbs: ["readArtifact", "writeArtifact", "deleteArtifact", "createArtifactCredentials"],
      },
    ]);
    const binding = findObject(objects, "ClusterRoleBinding", "kfp-artifacts-s3-system-key");
    expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "kfp-artifacts-s3-system-key" });
    // A User subject whose name no ServiceAccount token can carry (those are system:serviceaccount:...).
    expect(binding.subjects).toEqual([{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "kfp-artifacts:s3-system-key" }]);
  });

  it("follows the release's full name, and goes with rbac.create=false", async () => {
    const [renamed, without] = await Promise.all([
      renderChart({ skipTests: true, release: "team-store" }),
      renderChart({ skipTests: true, set: ["rbac.create=false"] }),
    ]);
    const binding = findObject(renamed, "ClusterRoleBinding", "team-store-kfp-artifacts-s3-system-key");
    expect(at(binding, "subjects", 0, "name")).toBe("team-store-kfp-artifacts:s3-system-key");
    const env = s3Env(serverContainer(findObject(renamed, "Deployment", "team-store-kfp-artifacts")));
    expect(env.find((v) => v.name === "S3_ACCESS_KEY_USER")?.value).toBe("team-store-kfp-artifacts:s3-system-key");
    expect(without.filter((o) => o.kind.startsWith("ClusterRole") && o.metadata.name.includes("s3"))).toEqual([]);
  });
});

describe("aliases under KFP's default names", () => {
  it("renders none by default", async () => {
    const objects = await renderChart({ skipTests: true });
    expect(objects.filter((o) => ALIAS_NAMES.includes(o.metadata.name))).toEqual([]);
  });

  it("renders seaweedfs (9000, 8333, 8111) and minio-service (9000) in front of the shared server's S3 port", async () => {
    const objects = await renderChart({ skipTests: true, set: ["s3.aliases.seaweedfs=true", "s3.aliases.minioService=true"] });
    const shared = findObject(objects, "Service", "kfp-artifacts", NAMESPACE);
    const seaweedfs = findObject(objects, "Service", "seaweedfs", NAMESPACE);
    expect(seaweedfs.spec).toEqual({
      type: "ClusterIP",
      internalTrafficPolicy: "Cluster",
      selector: at(shared, "spec", "selector"),
      ports: [
        { name: "http-s3-compat", port: 9000, targetPort: "s3", protocol: "TCP", appProtocol: "http" },
        { name: "http-s3", port: 8333, targetPort: "s3", protocol: "TCP", appProtocol: "http" },
        { name: "http-iam", port: 8111, targetPort: "s3", protocol: "TCP", appProtocol: "http" },
      ],
    });
    expect(seaweedfs.metadata.labels?.["app.kubernetes.io/component"]).toBe("s3-alias");
    const minio = findObject(objects, "Service", "minio-service", NAMESPACE);
    expect(at(minio, "spec", "ports")).toEqual([{ name: "http-s3", port: 9000, targetPort: "s3", protocol: "TCP", appProtocol: "http" }]);
    expect(at(minio, "spec", "selector")).toEqual(at(shared, "spec", "selector"));
  });

  it("keeps the alias traffic on the caller's node in front of the DaemonSet", async () => {
    const objects = await renderChart({ skipTests: true, valuesFiles: ["daemonset-values.yaml"], set: ["s3.aliases.seaweedfs=true"] });
    expect(at(findObject(objects, "Service", "seaweedfs"), "spec", "internalTrafficPolicy")).toBe("Local");
  });

  it("is part of the Kubeflow topology", async () => {
    const objects = await renderChart({ skipTests: true, valuesFiles: ["kubeflow-values.yaml"] });
    expect(objectsOfKind(objects, "Service").map((o) => o.metadata.name).sort()).toEqual(["kfp-artifacts", "seaweedfs"]);
  });
});

describe("a generated key pair", () => {
  const generate = ["s3.credentials.generate=true", "dedicated.namespaces={team-a}"];

  it("writes the Secret the shared server reads, random, kept on uninstall, in the release's namespace only", async () => {
    const objects = await renderChart({ skipTests: true, set: generate });
    const secrets = objectsOfKind(objects, "Secret");
    expect(secrets.map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual(["kubeflow/mlpipeline-minio-artifact"]);
    const [primary] = secrets as [KubeObject];
    expect(primary.metadata.annotations).toEqual({ "helm.sh/resource-policy": "keep" });
    const data = primary.data as Record<string, string>;
    const accessKey = Buffer.from(data.accesskey ?? "", "base64").toString();
    const secretKey = Buffer.from(data.secretkey ?? "", "base64").toString();
    expect(accessKey).toMatch(/^[A-Z0-9]{20}$/);
    expect(secretKey).toMatch(/^[A-Za-z0-9]{40}$/);
  });

  it("is named after the release when existingSecret is empty", async () => {
    const objects = await renderChart({ skipTests: true, set: ["s3.credentials.generate=true", "s3.credentials.existingSecret="] });
    findObject(objects, "Secret", "kfp-artifacts-s3", NAMESPACE);
    const env = s3Env(serverContainer(findObject(objects, "Deployment", "kfp-artifacts")));
    expect(env.find((v) => v.name === "S3_ACCESS_KEY")?.valueFrom).toEqual(secretRef("kfp-artifacts-s3", "accesskey", true));
  });

  it("is drawn anew by every render without a cluster (which is why no committed example generates one)", async () => {
    const [first, second] = await Promise.all([
      renderChart({ skipTests: true, set: generate }),
      renderChart({ skipTests: true, set: generate }),
    ]);
    expect(objectsOfKind(first, "Secret")[0]?.data).not.toEqual(objectsOfKind(second, "Secret")[0]?.data);
  });
});

describe("dedicated namespaces and the S3 key material", () => {
  // Whoever reads Secrets in a tenant namespace must find nothing there from which another namespace's key
  // follows: not the master key, not the system pair, not a reference to either.
  const topologies: [string, RenderOptions][] = [
    ["a generated pair", { set: ["s3.credentials.generate=true", "dedicated.namespaces={team-a,team-b}"] }],
    ["a generated pair named after the release", { set: ["s3.credentials.generate=true", "s3.credentials.existingSecret=", "dedicated.namespaces={team-a}"] }],
    ["a master key of its own", { set: ["s3.masterKey.existingSecret=kfp-master-key", "dedicated.namespaces={team-a,team-b}"] }],
    ["a generated pair and a master key", { set: ["s3.credentials.generate=true", "s3.masterKey.existingSecret=kfp-master-key", "dedicated.namespaces={team-a}"] }],
    ["dedicated servers only", { valuesFiles: ["dedicated-values.yaml"] }],
  ];

  it.each(topologies)("%s: no Secret in a tenant namespace, and its server reads only its own namespace's pair", async (_label, options) => {
    const objects = await renderChart({ ...options, skipTests: true });
    const generated = objectsOfKind(objects, "Secret").filter((secret) => secret.metadata.namespace === NAMESPACE);
    const tenantSecrets = objectsOfKind(objects, "Secret").filter((secret) => secret.metadata.namespace !== NAMESPACE);
    expect(tenantSecrets.map((secret) => `${secret.metadata.namespace}/${secret.metadata.name}`)).toEqual([]);
    const dedicated = workloads(objects).filter((workload) => workload.metadata.namespace !== NAMESPACE);
    expect(dedicated.length).toBeGreaterThan(0);
    for (const workload of dedicated) {
      const env = s3Env(serverContainer(workload));
      const referenced = env.flatMap((variable) => {
        const name = at(variable.valueFrom, "secretKeyRef", "name");
        return typeof name === "string" ? [name] : [];
      });
      expect(referenced, workload.metadata.name).toEqual(["kfp-artifacts-s3-namespace-key", "kfp-artifacts-s3-namespace-key"]);
      expect(env.filter((variable) => ["S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_MASTER_KEY", "S3_ACCESS_KEY_USER"].includes(variable.name)), workload.metadata.name).toEqual([]);
      expect(env.filter((variable) => variable.name.startsWith("S3_NAMESPACE_") && variable.valueFrom), workload.metadata.name).toEqual([
        { name: "S3_NAMESPACE_ACCESS_KEY", valueFrom: secretRef("kfp-artifacts-s3-namespace-key", "accesskey", true) },
        { name: "S3_NAMESPACE_SECRET_KEY", valueFrom: secretRef("kfp-artifacts-s3-namespace-key", "secretkey", true) },
      ]);
    }
    // The generated pair, whatever its name, stays in the release's namespace alone.
    for (const secret of generated) {
      const rendered = JSON.stringify(objects.filter((object) => object.metadata.namespace !== NAMESPACE));
      for (const value of Object.values(secret.data as Record<string, string>)) expect(rendered).not.toContain(value);
    }
  });

  it("gives the manager the master key by reference, and Secrets by one name only: never list, watch or read another", async () => {
    for (const [set, source] of [
      [[], secretRef("mlpipeline-minio-artifact", "secretkey", true)],
      [["s3.masterKey.existingSecret=kfp-master-key", "s3.masterKey.key=master"], secretRef("kfp-master-key", "master")],
    ] as const) {
      const objects = await renderChart({ skipTests: true, set: ["manager.enabled=true", ...set] });
      const manager = findObject(objects, "Deployment", "kfp-artifacts-manager", NAMESPACE);
      const env = (at(manager, "spec", "template", "spec", "containers", 0, "env") as EnvVar[]).filter((variable) => variable.name.startsWith("S3_") || variable.name.startsWith("NAMESPACE_KEY"));
      expect(env).toEqual([
        { name: "S3_MASTER_KEY", valueFrom: source },
        { name: "NAMESPACE_KEY_SECRET", value: "kfp-artifacts-s3-namespace-key" },
      ]);
      const rules = at(findObject(objects, "ClusterRole", "kfp-artifacts-manager"), "rules") as { resources: string[]; verbs: string[]; resourceNames?: string[] }[];
      expect(rules.filter((rule) => rule.resources.includes("secrets"))).toEqual([
        { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
        { apiGroups: [""], resources: ["secrets"], verbs: ["get", "patch", "delete"], resourceNames: ["kfp-artifacts-s3-namespace-key"] },
      ]);
    }
    const off = await renderChart({ skipTests: true, set: ["manager.enabled=true", "s3.enabled=false"] });
    const offEnv = at(findObject(off, "Deployment", "kfp-artifacts-manager", NAMESPACE), "spec", "template", "spec", "containers", 0, "env") as EnvVar[];
    expect(offEnv.filter((variable) => variable.name === "S3_MASTER_KEY" || variable.name === "NAMESPACE_KEY_SECRET")).toEqual([]);
    const offRules = at(findObject(off, "ClusterRole", "kfp-artifacts-manager"), "rules") as { resources: string[] }[];
    expect(offRules.flatMap((rule) => rule.resources)).not.toContain("secrets");
  });
});

describe("network rules for the S3 port", () => {
  it("admit Kubeflow profiles, the system namespace and the server's own namespace, as Kubeflow's SeaweedFS policy", async () => {
    const objects = await renderChart({ skipTests: true, set: ["networkPolicy.enabled=true", "dedicated.namespaces={team-a}"] });
    const profiles = {
      namespaceSelector: { matchExpressions: [{ key: "app.kubernetes.io/part-of", operator: "In", values: ["kubeflow-profile"] }] },
    };
    const named = (...names: string[]) => ({
      namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: names }] },
    });
    const shared = findObject(objects, "NetworkPolicy", "kfp-artifacts", NAMESPACE);
    expect(at(shared, "spec", "ingress", 1)).toEqual({ ports: [{ port: "s3", protocol: "TCP" }], from: [profiles, named("kubeflow")] });
    const dedicated = findObject(objects, "NetworkPolicy", "kfp-artifacts-team-a", "team-a");
    expect(at(dedicated, "spec", "ingress", 1, "from")).toEqual([profiles, named("kubeflow", "team-a")]);
    // The native API keeps its own peers.
    expect(at(shared, "spec", "ingress", 0)).toEqual({ ports: [{ port: "http", protocol: "TCP" }], from: [{ namespaceSelector: {} }] });
  });

  it("take networkPolicy.s3From instead when it is set", async () => {
    const objects = await renderChart({
      skipTests: true,
      set: ["networkPolicy.enabled=true", "networkPolicy.s3From[0].podSelector.matchLabels.app=ml-pipeline"],
    });
    const policy = findObject(objects, "NetworkPolicy", "kfp-artifacts");
    expect(at(policy, "spec", "ingress", 1, "from")).toEqual([{ podSelector: { matchLabels: { app: "ml-pipeline" } } }]);
  });

  it("let every request without the user header through Istio on the S3 port", async () => {
    const objects = await renderChart({ skipTests: true, set: ["istio.authorizationPolicy.enabled=true", "s3.port=9100"] });
    const rules = at(findObject(objects, "AuthorizationPolicy", "kfp-artifacts"), "spec", "rules") as unknown[];
    expect(rules[rules.length - 1]).toEqual({
      to: [{ operation: { ports: ["9100"] } }],
      when: [{ key: "request.headers[kubeflow-userid]", notValues: ["*"] }],
    });
  });
});

describe("NOTES.txt", () => {
  it("names the S3 endpoint, the bucket layout, the static key, its user and the namespace keys", async () => {
    const notes = await renderNotes({ set: ["s3.aliases.seaweedfs=true"] });
    expect(notes).toContain("http://kfp-artifacts.kubeflow.svc:9000");
    expect(notes).toContain("http://seaweedfs.kubeflow.svc:9000/8333/8111 (alias of the shared server)");
    expect(notes).toContain("Bucket mlpipeline: private-artifacts/<namespace>/... belongs to <namespace>");
    expect(notes).toContain("Secret mlpipeline-minio-artifact (keys accesskey, secretkey) in kubeflow");
    expect(notes).toContain("which must exist");
    expect(notes).toContain("acts as the user kfp-artifacts:s3-system-key");
    expect(notes).toContain("Namespace keys: kfp.<namespace>");
    expect(notes).toContain("aws --endpoint-url http://127.0.0.1:9000 s3 ls s3://mlpipeline/");
    expect(notes).not.toContain("WARNING");
  });

  it("says when the pair is generated, and which key a dedicated server verifies, from where", async () => {
    const notes = await renderNotes({ set: ["s3.credentials.generate=true", "dedicated.namespaces={team-a}"] });
    expect(notes).toContain("generated by this release and kept across upgrades");
    expect(notes).toContain("The dedicated server in team-a verifies only that namespace's key, kfp.team-a, from the Secret kfp-artifacts-s3-namespace-key there (create it: docs/s3.md).");
    const managed = await renderNotes({ set: ["manager.enabled=true", "dedicated.namespaces={team-a}"] });
    expect(managed).toContain("from the Secret kfp-artifacts-s3-namespace-key there (the manager writes it).");
  });

  it("says nothing of S3 when it is off", async () => {
    const notes = await renderNotes({ set: ["s3.enabled=false"] });
    expect(notes).not.toContain("S3");
  });
});

type GuardCase = { name: string; options: RenderOptions; message: RegExp };

const guards: GuardCase[] = [
  {
    name: "the S3 port on the native API's port",
    options: { set: ["s3.port=8080"] },
    message: /s3.port=8080 is the native API's port/,
  },
  {
    name: "no Secret named and none generated",
    options: { set: ["s3.credentials.existingSecret="] },
    message: /s3.credentials.existingSecret is empty: .* or set s3.credentials.generate=true/,
  },
  {
    name: "aliases with S3 off",
    options: { set: ["s3.enabled=false", "s3.aliases.seaweedfs=true"] },
    message: /s3.aliases point Services at the S3 API, but s3.enabled is false/,
  },
  {
    name: "aliases without the shared server",
    options: { set: ["shared.enabled=false", "dedicated.namespaces={team-a}", "s3.aliases.minioService=true"] },
    message: /s3.aliases front the shared server, but shared.enabled is false/,
  },
  {
    name: "aliases outside the system namespace",
    options: { set: ["namespaceOverride=storage", "s3.aliases.seaweedfs=true"] },
    message: /s3.aliases must live in s3.systemNamespace \(kubeflow\).* runs in storage: install the release in kubeflow/,
  },
];

describe("S3 guards", () => {
  it.each(guards)("refuse $name", async ({ options, message }) => {
    const result = await helmTemplate(options);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });

  it("accept aliases in a system namespace of the operator's choice", async () => {
    const objects = await renderChart({ skipTests: true, set: ["namespaceOverride=kfp", "s3.systemNamespace=kfp", "s3.aliases.seaweedfs=true"] });
    findObject(objects, "Service", "seaweedfs", "kfp");
  });
});
