// The reconcile function against a recording fake of the API server: what it creates, updates, deletes,
// and what it refuses to touch.
import { describe, expect, it } from "vitest";
import { parseBlock } from "../../src/manager/block.js";
import { loadYaml } from "@kubernetes/client-node";
import { launcherConfigOf, reconcileNamespace, type ClusterApi, type ObjectRef, type ReconcileContext } from "../../src/manager/reconcile.js";
import { CLAIM_NAME, KEEP_ANNOTATION, MANAGED_BY, OWNER_ANNOTATION, type KubeObject, type NamespaceKeySource, type TemplateSet } from "../../src/manager/templates.js";
import { deriveSecretKey } from "../../src/s3/credentials.js";

const P = "namespace-placeholder";
const object = (apiVersion: string, kind: string, namespaced: boolean, spec: Record<string, unknown> = {}): KubeObject => ({
  apiVersion,
  kind,
  metadata: { name: `kfp-artifacts-${P}`, ...(namespaced ? { namespace: P } : {}), labels: { "app.kubernetes.io/component": "dedicated-server" } },
  ...spec,
});
const variant = (strategy: string): KubeObject[] => [
  object("v1", "ServiceAccount", true),
  object("v1", "PersistentVolumeClaim", true, { spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "10Gi" } } } }),
  object("apps/v1", "Deployment", true, {
    spec: { strategy: { type: strategy }, template: { spec: { containers: [{ name: "server", resources: { requests: { cpu: "100m" } } }] } } },
  }),
  object("v1", "Service", true, { spec: { ports: [{ name: "http", port: 8080 }, { name: "http-s3", port: 9000 }] } }),
  object("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", false, { subjects: [{ kind: "ServiceAccount", name: `kfp-artifacts-${P}`, namespace: P }] }),
];
const templates: TemplateSet = { placeholder: P, objects: { ReadWriteOnce: variant("Recreate"), ReadWriteMany: variant("RollingUpdate") } };

const key = (ref: ObjectRef) => `${ref.kind}/${ref.namespace ?? ""}/${ref.name}`;
const MANAGER = "kfp-artifacts-manager";

type ManagedField = { manager: string; operation: string; fieldsV1: { "f:data"?: Record<string, object> } };
const dataKeysOf = (entry: ManagedField | undefined) => Object.keys(entry?.fieldsV1["f:data"] ?? {}).map((field) => field.slice("f:".length));
const managedField = (manager: string, operation: string, keys: readonly string[]): ManagedField => ({
  manager,
  operation,
  fieldsV1: { "f:data": Object.fromEntries(keys.map((name) => [`f:${name}`, {}])) },
});

/**
 * Server-side apply of a ConfigMap's data as the API server does it, for the manager's field manager: the
 * keys applied are set and become the manager's alone (apply is forced); a key it owned and no longer
 * applies is removed unless another manager owns it too; every other key stays.
 */
function applyConfigMapData(current: KubeObject | undefined, applied: KubeObject): KubeObject {
  const result = structuredClone(current ?? { apiVersion: applied.apiVersion, kind: applied.kind, metadata: { ...applied.metadata } });
  const appliedData = (applied.data ?? {}) as Record<string, string>;
  const appliedKeys = Object.keys(appliedData);
  const fields = (result.metadata.managedFields ?? []) as ManagedField[];
  const ours = fields.find((entry) => entry.manager === MANAGER);
  const others = fields.filter((entry) => entry !== ours).map((entry) => managedField(entry.manager, entry.operation, dataKeysOf(entry).filter((name) => !appliedKeys.includes(name))));
  const data = { ...((result.data ?? {}) as Record<string, string>) };
  for (const name of dataKeysOf(ours)) if (!appliedKeys.includes(name) && !others.some((entry) => dataKeysOf(entry).includes(name))) delete data[name];
  result.data = { ...data, ...appliedData };
  result.metadata.managedFields = [...others, ...(appliedKeys.length > 0 ? [managedField(MANAGER, "Apply", appliedKeys)] : [])];
  return result;
}

/** An in-memory API server that records every call; `failAfter` makes the n-th mutating call throw (a crash). */
class FakeApi implements ClusterApi {
  readonly objects = new Map<string, KubeObject>();
  readonly calls: string[] = [];
  /** What each apply sent, as sent. */
  readonly applied: KubeObject[] = [];
  failAfter = Infinity;
  /** Someone else creates the claim between our read and our create (another release's manager). */
  claimRacedBy: string | undefined;
  private mutations = 0;

  get(ref: ObjectRef): Promise<KubeObject | undefined> {
    this.calls.push(`get ${key(ref)}`);
    return Promise.resolve(this.objects.get(key(ref)));
  }
  apply(object: KubeObject): Promise<void> {
    if (++this.mutations > this.failAfter) return Promise.reject(new Error("connection reset"));
    const ref = { ...object, namespace: object.metadata.namespace, name: object.metadata.name };
    this.calls.push(`apply ${key(ref)}`);
    this.applied.push(structuredClone(object));
    this.objects.set(key(ref), object.kind === "ConfigMap" ? applyConfigMapData(this.objects.get(key(ref)), object) : structuredClone(object));
    return Promise.resolve();
  }
  create(object: KubeObject): Promise<boolean> {
    if (++this.mutations > this.failAfter) return Promise.reject(new Error("connection reset"));
    const ref = { ...object, namespace: object.metadata.namespace, name: object.metadata.name };
    if (this.claimRacedBy !== undefined && object.kind === "Lease") {
      this.objects.set(key(ref), { ...structuredClone(object), spec: { holderIdentity: this.claimRacedBy } });
      this.claimRacedBy = undefined;
    }
    this.calls.push(`create ${key(ref)}`);
    if (this.objects.has(key(ref))) return Promise.resolve(false);
    this.objects.set(key(ref), structuredClone(object));
    return Promise.resolve(true);
  }
  delete(ref: ObjectRef): Promise<void> {
    if (++this.mutations > this.failAfter) return Promise.reject(new Error("connection reset"));
    this.calls.push(`delete ${key(ref)}`);
    this.objects.delete(key(ref));
    return Promise.resolve();
  }
  mutatingCalls(): string[] {
    return this.calls.filter((call) => !call.startsWith("get "));
  }
}

const owner = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", name: "kfp-artifacts-manager", uid: "u-1" };
const IDENTITY = "kubeflow/kfp-artifacts-manager";
const CLAIM = `Lease/team-a/${CLAIM_NAME}`;
const contextWith = (api: FakeApi, staticNamespaces: string[] = []): ReconcileContext => ({
  api,
  templates,
  managerName: MANAGER,
  identity: IDENTITY,
  owner,
  staticNamespaces: new Set(staticNamespaces),
  launcherConfigMap: "kfp-launcher",
});

const refusal = (result: ReturnType<typeof parseBlock>) => (result.ok ? "accepted" : result.message);

describe("the artifactServer block", () => {
  it("accepts the KEP's shape in YAML and JSON, and defaults to shared", () => {
    expect(parseBlock("dedicated: true")).toEqual({ ok: true, block: { dedicated: true } });
    expect(parseBlock('{"dedicated": false, "size": "20Gi"}')).toEqual({ ok: true, block: { dedicated: false, size: "20Gi" } });
    expect(parseBlock(undefined)).toEqual({ ok: true, block: { dedicated: false } });
    expect(parseBlock("")).toEqual({ ok: true, block: { dedicated: false } });
  });

  it("refuses typos, wrong types and unknown access modes, naming the field", () => {
    expect(refusal(parseBlock("dedicted: true"))).toContain("dedicted");
    expect(refusal(parseBlock('dedicated: "yes"'))).toContain("dedicated");
    expect(refusal(parseBlock("dedicated: true\naccessMode: ReadWriteSometimes"))).toContain("accessMode");
    expect(refusal(parseBlock("dedicated: true\nsize: lots"))).toContain("size");
    expect(refusal(parseBlock("dedicated: ["))).toContain("not YAML");
  });

  it("takes retentionDays as a whole number of days within the server's bounds", () => {
    expect(parseBlock("dedicated: true\nretentionDays: 30")).toEqual({ ok: true, block: { dedicated: true, retentionDays: 30 } });
    expect(parseBlock("dedicated: true\nretentionDays: 0")).toEqual({ ok: true, block: { dedicated: true, retentionDays: 0 } });
    for (const bad of ["-1", "1.5", '"30"', "36501", "30d"]) expect(refusal(parseBlock(`dedicated: true\nretentionDays: ${bad}`)), bad).toContain("retentionDays");
  });
});

describe("reconcileNamespace", () => {
  it("creates every object of a dedicated server, for its namespace, marked as the manager's", async () => {
    const api = new FakeApi();
    const status = await reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: true" });
    expect(status).toMatchObject({ condition: "Dedicated", dedicated: true, endpoint: "http://kfp-artifacts-team-a.team-a.svc:8080" });
    expect(api.mutatingCalls()).toEqual([
      `create ${CLAIM}`,
      "apply ServiceAccount/team-a/kfp-artifacts-team-a",
      "apply PersistentVolumeClaim/team-a/kfp-artifacts-team-a",
      "apply Deployment/team-a/kfp-artifacts-team-a",
      "apply Service/team-a/kfp-artifacts-team-a",
      "apply ClusterRoleBinding//kfp-artifacts-team-a",
    ]);
    const binding = api.objects.get("ClusterRoleBinding//kfp-artifacts-team-a");
    expect(binding?.subjects).toEqual([{ kind: "ServiceAccount", name: "kfp-artifacts-team-a", namespace: "team-a" }]);
    expect(binding?.metadata.ownerReferences).toEqual([owner]);
    const claim = api.objects.get("PersistentVolumeClaim/team-a/kfp-artifacts-team-a");
    expect(claim?.metadata.ownerReferences).toBeUndefined();
    expect(claim?.metadata.annotations?.[KEEP_ANNOTATION]).toBe("keep");
    for (const created of api.objects.values()) {
      expect(created.metadata.labels?.[MANAGED_BY]).toBe("kfp-artifacts-manager");
      expect(created.metadata.annotations?.[OWNER_ANNOTATION]).toBe(IDENTITY);
    }
    expect(api.objects.get(CLAIM)?.spec).toEqual({ holderIdentity: IDENTITY });
    expect(api.objects.get(CLAIM)?.metadata.ownerReferences).toEqual([owner]);
    expect(JSON.stringify([...api.objects.values()])).not.toContain(P);
  });

  it("applies a changed block as an update: size, class, access mode variant and resources", async () => {
    const api = new FakeApi();
    await reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: true" });
    const block = "dedicated: true\nsize: 50Gi\nstorageClassName: fast\naccessMode: ReadWriteMany\nresources: {limits: {memory: 1Gi}}";
    expect(await reconcileNamespace(contextWith(api), "team-a", true, { block })).toMatchObject({ condition: "Dedicated" });
    const claim = api.objects.get("PersistentVolumeClaim/team-a/kfp-artifacts-team-a");
    expect(claim?.spec).toMatchObject({ storageClassName: "fast", resources: { requests: { storage: "50Gi" } } });
    const deployment = api.objects.get("Deployment/team-a/kfp-artifacts-team-a") as unknown as { spec: { strategy: unknown; template: { spec: { containers: { resources: unknown }[] } } } };
    expect(deployment.spec.strategy).toEqual({ type: "RollingUpdate" });
    expect(deployment.spec.template.spec.containers[0]?.resources).toEqual({ limits: { memory: "1Gi" } });
    expect(api.mutatingCalls().filter((call) => call.startsWith("delete"))).toEqual([]);
  });

  it("passes the block's retentionDays to the server as RETENTION_DAYS, replacing the chart's", async () => {
    const api = new FakeApi();
    const withChartDefault = structuredClone(templates);
    for (const objects of Object.values(withChartDefault.objects)) {
      const deployment = objects.find((item) => item.kind === "Deployment") as unknown as { spec: { template: { spec: { containers: { env?: unknown[] }[] } } } };
      const [server] = deployment.spec.template.spec.containers;
      if (server !== undefined) server.env = [{ name: "LOG_LEVEL", value: "info" }, { name: "RETENTION_DAYS", value: "0" }];
    }
    const envOf = () =>
      (api.objects.get("Deployment/team-a/kfp-artifacts-team-a") as unknown as { spec: { template: { spec: { containers: { env?: unknown[] }[] } } } }).spec.template.spec.containers[0]?.env;
    const context = { ...contextWith(api), templates: withChartDefault };
    await reconcileNamespace(context, "team-a", true, { block: "dedicated: true\nretentionDays: 14" });
    expect(envOf()).toEqual([{ name: "LOG_LEVEL", value: "info" }, { name: "RETENTION_DAYS", value: "14" }]);
    // Without the field, the chart's default again.
    await reconcileNamespace(context, "team-a", true, { block: "dedicated: true" });
    expect(envOf()).toEqual([{ name: "LOG_LEVEL", value: "info" }, { name: "RETENTION_DAYS", value: "0" }]);
    // A template without the variable gets it added.
    await reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: true\nretentionDays: 7" });
    expect(envOf()).toEqual([{ name: "RETENTION_DAYS", value: "7" }]);
    // An invalid value changes nothing.
    expect((await reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: true\nretentionDays: -3" })).condition).toBe("InvalidBlock");
    expect(envOf()).toEqual([{ name: "RETENTION_DAYS", value: "7" }]);
  });

  it("opting out deletes the workload and keeps the claim; idle namespaces cost only reads", async () => {
    const api = new FakeApi();
    await reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: true" });
    api.calls.length = 0;
    expect(await reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: false" })).toMatchObject({ condition: "Shared", dedicated: false });
    expect(api.mutatingCalls()).toEqual([
      "delete ClusterRoleBinding//kfp-artifacts-team-a",
      "delete Service/team-a/kfp-artifacts-team-a",
      "delete Deployment/team-a/kfp-artifacts-team-a",
      "delete ServiceAccount/team-a/kfp-artifacts-team-a",
      `delete ${CLAIM}`,
    ]);
    expect([...api.objects.keys()]).toEqual(["PersistentVolumeClaim/team-a/kfp-artifacts-team-a"]);
    // Unlabelled or deleted namespaces are shared too; a namespace with no ConfigMap changes nothing.
    api.calls.length = 0;
    expect(await reconcileNamespace(contextWith(api), "team-b", true, { block: undefined })).toMatchObject({ condition: "Shared", message: "served by the shared server" });
    expect(api.mutatingCalls()).toEqual([]);
  });

  it("an invalid block changes nothing, whatever exists", async () => {
    const api = new FakeApi();
    await reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: true" });
    api.calls.length = 0;
    const status = await reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: maybe" });
    expect(status.condition).toBe("InvalidBlock");
    expect(status.message).toContain("dedicated");
    expect(api.calls).toEqual([]);
    expect(api.objects.size).toBe(6);
  });

  it("does not take over an object somebody else owns (a Helm release, a person), nor delete it", async () => {
    const api = new FakeApi();
    const foreign = structuredClone(variant("Recreate")[1]) as KubeObject;
    foreign.metadata = { name: "kfp-artifacts-team-a", namespace: "team-a", labels: { [MANAGED_BY]: "Helm" } };
    api.objects.set("PersistentVolumeClaim/team-a/kfp-artifacts-team-a", foreign);
    const status = await reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: true" });
    expect(status.condition).toBe("Conflict");
    expect(status.message).toContain("PersistentVolumeClaim team-a/kfp-artifacts-team-a");
    // The namespace's claim is taken, nothing else.
    expect(api.mutatingCalls()).toEqual([`create ${CLAIM}`]);
    await reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: false" });
    expect(api.mutatingCalls()).toEqual([`create ${CLAIM}`, `delete ${CLAIM}`]);
    expect(api.objects.get("PersistentVolumeClaim/team-a/kfp-artifacts-team-a")).toEqual(foreign);
  });

  it("leaves the chart's dedicated.namespaces alone", async () => {
    const api = new FakeApi();
    expect(await reconcileNamespace(contextWith(api, ["team-a"]), "team-a", true, { block: "dedicated: false" })).toMatchObject({ condition: "Static" });
    expect(api.calls).toEqual([]);
  });

  it("converges after being cut off mid-way, in both directions", async () => {
    const api = new FakeApi();
    api.failAfter = 3; // the claim, then two objects
    await expect(reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: true" })).rejects.toThrow("connection reset");
    expect(api.objects.size).toBe(3);
    api.failAfter = Infinity;
    expect(await reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: true" })).toMatchObject({ condition: "Dedicated" });
    expect(api.objects.size).toBe(6);
    const applied = structuredClone([...api.objects.entries()]);
    await reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: true" });
    expect([...api.objects.entries()]).toEqual(applied);

    api.failAfter = 3 + 5 + 5 + 1; // opt-out cut off after its first delete
    await expect(reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: false" })).rejects.toThrow();
    api.failAfter = Infinity;
    await reconcileNamespace(contextWith(api), "team-a", false, { block: undefined });
    expect([...api.objects.keys()]).toEqual(["PersistentVolumeClaim/team-a/kfp-artifacts-team-a"]);
  });

  it("two releases' managers on one namespace: the first to claim it serves it, the other reports the conflict and changes nothing", async () => {
    const api = new FakeApi();
    // Another release: its own fullname, so its own object names; the same claim name.
    const canaryTemplates = JSON.parse(JSON.stringify(templates).replaceAll("kfp-artifacts-", "canary-")) as TemplateSet;
    const canary: ReconcileContext = { ...contextWith(api), templates: canaryTemplates, managerName: "canary-manager", identity: "canary/canary-manager" };
    expect(await reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: true" })).toMatchObject({ condition: "Dedicated" });
    const before = structuredClone([...api.objects.entries()]);
    api.calls.length = 0;
    const refused = await reconcileNamespace(canary, "team-a", true, { block: "dedicated: true" });
    expect(refused).toMatchObject({ condition: "Conflict", dedicated: false });
    expect(refused.message).toContain(`belongs to the manager ${IDENTITY}`);
    expect(api.mutatingCalls()).toEqual([]);
    // Opting out seen by the other release deletes none of the first one's objects, nor its claim.
    expect(await reconcileNamespace(canary, "team-a", true, { block: "dedicated: false" })).toMatchObject({ condition: "Shared" });
    expect(api.mutatingCalls()).toEqual([]);
    expect([...api.objects.entries()]).toEqual(before);
    // Once the first lets go (opt-out, or its uninstall collects the claim), the other may take the namespace.
    await reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: false" });
    expect(api.objects.has(CLAIM)).toBe(false);
    expect(await reconcileNamespace(canary, "team-a", true, { block: "dedicated: true" })).toMatchObject({ condition: "Dedicated" });
    expect(api.objects.get(CLAIM)?.spec).toEqual({ holderIdentity: "canary/canary-manager" });
    // The first release's kept PVC stays as it was, next to the other's new one.
    expect(api.objects.get("PersistentVolumeClaim/team-a/kfp-artifacts-team-a")?.metadata.annotations?.[OWNER_ANNOTATION]).toBe(IDENTITY);
    expect(api.objects.has("PersistentVolumeClaim/team-a/canary-team-a")).toBe(true);
  });

  it("loses a race for the claim without touching anything, and never adopts an object another manager marked", async () => {
    const api = new FakeApi();
    api.claimRacedBy = "other/other-manager";
    const raced = await reconcileNamespace(contextWith(api), "team-a", true, { block: "dedicated: true" });
    expect(raced).toMatchObject({ condition: "Conflict" });
    expect(raced.message).toContain("other/other-manager");
    expect(api.mutatingCalls()).toEqual([`create ${CLAIM}`]);

    // Our label but another release's owner annotation (the same fullname installed twice by hand): not ours.
    const second = new FakeApi();
    const marked = structuredClone(variant("Recreate")[2]) as KubeObject;
    marked.metadata = { name: "kfp-artifacts-team-a", namespace: "team-a", labels: { [MANAGED_BY]: "kfp-artifacts-manager" }, annotations: { [OWNER_ANNOTATION]: "elsewhere/kfp-artifacts-manager" } };
    second.objects.set("Deployment/team-a/kfp-artifacts-team-a", marked);
    const status = await reconcileNamespace(contextWith(second), "team-a", true, { block: "dedicated: true" });
    expect(status).toMatchObject({ condition: "Conflict" });
    expect(status.message).toContain("the manager elsewhere/kfp-artifacts-manager");
    await reconcileNamespace(contextWith(second), "team-a", true, { block: "dedicated: false" });
    expect(second.objects.get("Deployment/team-a/kfp-artifacts-team-a")).toEqual(marked);

    // Objects made before the owner annotation existed (our label only) are still ours.
    const legacy = new FakeApi();
    const unannotated = structuredClone(variant("Recreate")[0]) as KubeObject;
    unannotated.metadata = { name: "kfp-artifacts-team-a", namespace: "team-a", labels: { [MANAGED_BY]: "kfp-artifacts-manager" } };
    legacy.objects.set("ServiceAccount/team-a/kfp-artifacts-team-a", unannotated);
    expect(await reconcileNamespace(contextWith(legacy), "team-a", true, { block: "dedicated: true" })).toMatchObject({ condition: "Dedicated" });
    expect(legacy.objects.get("ServiceAccount/team-a/kfp-artifacts-team-a")?.metadata.annotations?.[OWNER_ANNOTATION]).toBe(IDENTITY);
  });
});

describe("each dedicated namespace's S3 key pair", () => {
  const MASTER_KEY = "the-shared-servers-master-key-0123456789";
  const SECRET = "kfp-artifacts-s3-namespace-key";
  const keys: NamespaceKeySource = {
    secretName: SECRET,
    keyFor: (namespace) => ({ accessKeyId: `kfp.${namespace}`, secretAccessKey: deriveSecretKey(MASTER_KEY, `kfp.${namespace}`) }),
  };
  const withKeys = (api: FakeApi, staticNamespaces: string[] = []): ReconcileContext => ({ ...contextWith(api, staticNamespaces), namespaceKeys: keys });
  const decoded = (secret: KubeObject | undefined) =>
    Object.fromEntries(Object.entries((secret?.data ?? {}) as Record<string, string>).map(([name, value]) => [name, Buffer.from(value, "base64").toString()]));

  it("is written before the server, holds the namespace's derived pair alone, and is marked as the manager's", async () => {
    const api = new FakeApi();
    expect(await reconcileNamespace(withKeys(api), "team-a", true, { block: "dedicated: true" })).toMatchObject({ condition: "Dedicated" });
    expect(api.mutatingCalls().slice(0, 3)).toEqual([`create ${CLAIM}`, `apply Secret/team-a/${SECRET}`, "apply ServiceAccount/team-a/kfp-artifacts-team-a"]);
    const secret = api.objects.get(`Secret/team-a/${SECRET}`);
    // The pair the shared server verifies and hands the profile controller through IAM CreateAccessKey.
    expect(decoded(secret)).toEqual({ accesskey: "kfp.team-a", secretkey: deriveSecretKey(MASTER_KEY, "kfp.team-a") });
    expect(secret?.metadata).toMatchObject({
      labels: { [MANAGED_BY]: "kfp-artifacts-manager", "app.kubernetes.io/component": "s3-credentials" },
      annotations: { [OWNER_ANNOTATION]: IDENTITY },
      ownerReferences: [owner],
    });
    await reconcileNamespace(withKeys(api), "team-b", true, { block: "dedicated: true" });
    expect(decoded(api.objects.get(`Secret/team-b/${SECRET}`)).accesskey).toBe("kfp.team-b");
    // Nothing the manager wrote carries the master key, nor another namespace's secret in team-a.
    const written = JSON.stringify([...api.objects.values()]);
    expect(written).not.toContain(MASTER_KEY);
    expect(written).not.toContain(Buffer.from(MASTER_KEY).toString("base64"));
    expect(JSON.stringify(api.objects.get(`Secret/team-a/${SECRET}`))).not.toContain(Buffer.from(deriveSecretKey(MASTER_KEY, "kfp.team-b")).toString("base64"));
  });

  it("goes on opt-out, after the server", async () => {
    const api = new FakeApi();
    await reconcileNamespace(withKeys(api), "team-a", true, { block: "dedicated: true" });
    api.calls.length = 0;
    await reconcileNamespace(withKeys(api), "team-a", true, { block: "dedicated: false" });
    expect(api.mutatingCalls()).toEqual([
      "delete ClusterRoleBinding//kfp-artifacts-team-a",
      "delete Service/team-a/kfp-artifacts-team-a",
      "delete Deployment/team-a/kfp-artifacts-team-a",
      "delete ServiceAccount/team-a/kfp-artifacts-team-a",
      `delete Secret/team-a/${SECRET}`,
      `delete ${CLAIM}`,
    ]);
  });

  it("is written for the chart's dedicated.namespaces too, and nothing else there", async () => {
    const api = new FakeApi();
    const status = await reconcileNamespace(withKeys(api, ["team-a"]), "team-a", true, { block: undefined });
    expect(status).toMatchObject({ condition: "Static", dedicated: true });
    expect(status.message).toContain(`the manager writes its S3 key Secret ${SECRET}`);
    expect(api.mutatingCalls()).toEqual([`apply Secret/team-a/${SECRET}`]);
    expect(decoded(api.objects.get(`Secret/team-a/${SECRET}`)).accesskey).toBe("kfp.team-a");
  });

  it("is not taken over when a Secret of its name is someone else's (a person's, a Helm release's)", async () => {
    const api = new FakeApi();
    const kept: KubeObject = { apiVersion: "v1", kind: "Secret", metadata: { name: SECRET, namespace: "team-a", labels: { [MANAGED_BY]: "Helm" } }, data: { masterkey: "eA==" } };
    api.objects.set(`Secret/team-a/${SECRET}`, kept);
    for (const [staticNamespaces, block] of [[["team-a"], undefined], [[], "dedicated: true"]] as const) {
      const status = await reconcileNamespace(withKeys(api, [...staticNamespaces]), "team-a", true, { block });
      expect(status.condition).toBe("Conflict");
      expect(status.message).toContain(`Secret team-a/${SECRET} exists and is not managed by ${IDENTITY}`);
    }
    expect(api.mutatingCalls()).toEqual([`create ${CLAIM}`]);
    expect(api.objects.get(`Secret/team-a/${SECRET}`)).toEqual(kept);
  });

  describe("KFP's launcher sent to the server through kfp-launcher's providers", () => {
    const LAUNCHER = "ConfigMap/team-a/kfp-launcher";
    const launcherConfigMap = (data: Record<string, string>, owners: readonly ManagedField[]): KubeObject => ({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "kfp-launcher", namespace: "team-a", managedFields: [...owners] },
      data,
    });
    /** The namespace owner's ConfigMap, as Kubeflow's profile controller and `kubectl apply` leave it. */
    const ownersConfigMap = (block: string, extra: Record<string, string> = {}) => {
      const data = { defaultPipelineRoot: "minio://mlpipeline/private-artifacts/team-a/v2/artifacts", artifactServer: block, ...extra };
      return launcherConfigMap(data, [managedField("kubectl-client-side-apply", "Update", Object.keys(data))]);
    };
    const reconcileWith = async (api: FakeApi, context: ReconcileContext, block: string) => {
      if (api.objects.get(LAUNCHER)?.data === undefined) api.objects.set(LAUNCHER, ownersConfigMap(block));
      else (api.objects.get(LAUNCHER)?.data as Record<string, string>).artifactServer = block;
      const configMap = api.objects.get(LAUNCHER) as Parameters<typeof launcherConfigOf>[0];
      return reconcileNamespace(context, "team-a", true, launcherConfigOf(configMap, "artifactServer"));
    };
    const providersOf = (api: FakeApi) => loadYaml<Record<string, unknown>>((api.objects.get(LAUNCHER)?.data as Record<string, string>).providers ?? "null");

    it("merges providers into kfp-launcher after the server's objects, owning that key alone, and writes it again only when it differs", async () => {
      const api = new FakeApi();
      const status = await reconcileWith(api, withKeys(api), "dedicated: true");
      expect(status.message).toContain("kfp-launcher providers sends KFP's launcher to kfp-artifacts-team-a.team-a.svc:9000");
      expect(api.mutatingCalls().at(-1)).toBe(`apply ${LAUNCHER}`);
      // Only the one key: the owner's root and block are not the manager's to own.
      expect(api.applied.at(-1)).toEqual({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "kfp-launcher", namespace: "team-a" }, data: { providers: expect.any(String) as unknown } });
      expect(providersOf(api)).toEqual({
        minio: {
          default: {
            endpoint: "kfp-artifacts-team-a.team-a.svc:9000",
            region: "us-east-1",
            disableSSL: true,
            forcePathStyle: true,
            credentials: { fromEnv: false, secretRef: { secretName: SECRET, accessKeyKey: "accesskey", secretKeyKey: "secretkey" } },
          },
        },
      });
      const data = api.objects.get(LAUNCHER)?.data as Record<string, string>;
      expect(data.defaultPipelineRoot).toBe("minio://mlpipeline/private-artifacts/team-a/v2/artifacts");
      expect(data.artifactServer).toBe("dedicated: true");
      // A resync with nothing changed writes nothing to the ConfigMap.
      api.calls.length = 0;
      await reconcileWith(api, withKeys(api), "dedicated: true");
      expect(api.mutatingCalls()).not.toContain(`apply ${LAUNCHER}`);
      // The owner's whole-object update dropped the key: it is merged again.
      delete data.providers;
      api.objects.get(LAUNCHER)!.metadata.managedFields = [managedField("kubectl-client-side-apply", "Update", Object.keys(data))];
      await reconcileWith(api, withKeys(api), "dedicated: true");
      expect(api.mutatingCalls().at(-1)).toBe(`apply ${LAUNCHER}`);
      expect(providersOf(api)).toHaveProperty("minio.default.endpoint", "kfp-artifacts-team-a.team-a.svc:9000");
    });

    it("removes its providers first on opt-out and keeps the rest of the ConfigMap", async () => {
      const api = new FakeApi();
      await reconcileWith(api, withKeys(api), "dedicated: true");
      api.calls.length = 0;
      const status = await reconcileWith(api, withKeys(api), "dedicated: false");
      expect(status.message).toMatch(/objects removed, the claim kept; kfp-launcher providers removed$/);
      expect(api.mutatingCalls()[0]).toBe(`apply ${LAUNCHER}`);
      // An apply with no data: server-side apply drops the keys the manager owned alone.
      expect(api.applied.at(-1)).toEqual({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "kfp-launcher", namespace: "team-a" } });
      expect(api.objects.get(LAUNCHER)?.data).toEqual({ defaultPipelineRoot: "minio://mlpipeline/private-artifacts/team-a/v2/artifacts", artifactServer: "dedicated: false" });
      // Shared and nothing of ours left there but the claim: no more writes, and the status (which the
      // reconcile that the ConfigMap write triggers rewrites) still says the claim is kept.
      api.calls.length = 0;
      expect((await reconcileWith(api, withKeys(api), "dedicated: false")).message).toBe("served by the shared server, the claim kept");
      expect(api.mutatingCalls()).toEqual([]);
    });

    it("sends KFP's launcher to the chart's server of a dedicated.namespaces entry, and gives the key up once the entry goes", async () => {
      const api = new FakeApi();
      const status = await reconcileWith(api, withKeys(api, ["team-a"]), "");
      expect(status).toMatchObject({ condition: "Static", dedicated: true });
      expect(status.message).toContain("kfp-launcher providers sends KFP's launcher to kfp-artifacts-team-a.team-a.svc:9000");
      // The key Secret and the providers key, and nothing of the chart's server.
      expect(api.mutatingCalls()).toEqual([`apply Secret/team-a/${SECRET}`, `apply ${LAUNCHER}`]);
      expect(providersOf(api)).toHaveProperty("minio.default.endpoint", "kfp-artifacts-team-a.team-a.svc:9000");
      expect(providersOf(api)).toHaveProperty("minio.default.credentials.secretRef.secretName", SECRET);
      // A resync writes nothing.
      api.calls.length = 0;
      await reconcileWith(api, withKeys(api, ["team-a"]), "");
      expect(api.mutatingCalls()).toEqual([`apply Secret/team-a/${SECRET}`]);
      // Out of the chart's list, with no block of its own: shared again, and the launcher back to its default.
      api.calls.length = 0;
      const shared = await reconcileWith(api, withKeys(api), "");
      expect(shared.condition).toBe("Shared");
      expect(api.mutatingCalls()[0]).toBe(`apply ${LAUNCHER}`);
      expect((api.objects.get(LAUNCHER)?.data as Record<string, string>).providers).toBeUndefined();
    });

    it("leaves a providers key the namespace set itself, in and out", async () => {
      const api = new FakeApi();
      const own = "s3:\n  default:\n    endpoint: s3.amazonaws.com\n";
      api.objects.set(LAUNCHER, ownersConfigMap("dedicated: true", { providers: own }));
      const status = await reconcileWith(api, withKeys(api), "dedicated: true");
      expect(status.condition).toBe("Dedicated");
      expect(status.message).toContain("kfp-launcher providers left as kubectl-client-side-apply set it");
      expect(api.mutatingCalls()).not.toContain(`apply ${LAUNCHER}`);
      await reconcileWith(api, withKeys(api), "dedicated: false");
      expect(api.mutatingCalls()).not.toContain(`apply ${LAUNCHER}`);
      expect((api.objects.get(LAUNCHER)?.data as Record<string, string>).providers).toBe(own);
    });

    it("writes no providers without the namespace's key pair (S3 off, no master key) or without the Service's S3 port", async () => {
      const noS3Port = structuredClone(templates);
      for (const objects of Object.values(noS3Port.objects)) {
        const service = objects.find((item) => item.kind === "Service") as unknown as { spec: { ports: unknown[] } };
        service.spec.ports = [{ name: "http", port: 8080 }];
      }
      const api = new FakeApi();
      for (const context of [contextWith(api), { ...withKeys(api), templates: noS3Port }]) {
        const status = await reconcileWith(api, context, "dedicated: true");
        expect(status).toMatchObject({ condition: "Dedicated", message: expect.not.stringContaining("providers") as unknown });
      }
      expect(api.mutatingCalls()).not.toContain(`apply ${LAUNCHER}`);
      expect(launcherConfigOf(undefined, "artifactServer")).toEqual({ block: undefined });
    });
  });
});
