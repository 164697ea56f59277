// A dedicated server's objects, from the templates the chart renders for a placeholder namespace (the
// same templates as its `dedicated.namespaces`): the manager substitutes the namespace and applies the
// namespace's own sizing, and adds nothing else but its ownership marks.
import { readFileSync } from "node:fs";
import { dumpYaml } from "@kubernetes/client-node";
import { z } from "zod";
import type { ArtifactServerBlock } from "./block.js";

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    [field: string]: unknown;
  };
  [field: string]: unknown;
};

export type OwnerReference = { apiVersion: string; kind: string; name: string; uid: string };

const objectSchema = z
  .object({
    apiVersion: z.string(),
    kind: z.string(),
    metadata: z.object({ name: z.string() }).passthrough(),
  })
  .passthrough();

const templateFileSchema = z.object({
  placeholder: z.string().min(1),
  objects: z.object({ ReadWriteOnce: z.array(objectSchema).min(1), ReadWriteMany: z.array(objectSchema).min(1) }),
});

export type TemplateSet = z.output<typeof templateFileSchema>;

export function parseTemplates(text: string): TemplateSet {
  return templateFileSchema.parse(JSON.parse(text));
}

export function loadTemplates(file: string): TemplateSet {
  return parseTemplates(readFileSync(file, "utf8"));
}

/** Label every object the manager creates carries; it deletes nothing without it. */
export const MANAGED_BY = "app.kubernetes.io/managed-by";
/** The manager (`<namespace>/<name>`) that made an object: another release's manager never adopts it. */
export const OWNER_ANNOTATION = "pipelines.kubeflow.org/artifact-server-manager";
/**
 * The Lease in a dedicated namespace naming the one manager that serves it. Its name is the same for
 * every release (so two releases find each other's); created only if absent, deleted by its holder on
 * opt-out, and garbage-collected with the holder's ClusterRole on uninstall.
 */
export const CLAIM_NAME = "artifact-server-manager";
/** On the claim: the manager never deletes it (opt-out, uninstall); deleting it drops the artifacts. */
export const KEEP_ANNOTATION = "pipelines.kubeflow.org/artifact-volume";

export interface RenderOptions {
  readonly managerName: string;
  /** The release's manager, written into OWNER_ANNOTATION (none when undefined). */
  readonly identity?: string;
  /** Owner of everything but the claim, so that deleting the manager's ClusterRole garbage-collects the servers. */
  readonly owner: OwnerReference | undefined;
}

function substitute(value: unknown, placeholder: string, namespace: string): unknown {
  if (typeof value === "string") return value.split(placeholder).join(namespace);
  if (Array.isArray(value)) return value.map((item) => substitute(item, placeholder, namespace));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, substitute(item, placeholder, namespace)]));
  }
  return value;
}

type EnvVar = { name: string; value?: string; [field: string]: unknown };
type ServerContainer = { name: string; resources?: unknown; env?: EnvVar[] };

function setEnv(container: ServerContainer, name: string, value: string): void {
  const env = container.env ?? [];
  const existing = env.find((variable) => variable.name === name);
  // A plain value: whatever the template had (a valueFrom) would otherwise win over it.
  if (existing !== undefined) env.splice(env.indexOf(existing), 1, { name, value });
  else env.push({ name, value });
  container.env = env;
}

export function renderObjects(templates: TemplateSet, namespace: string, block: ArtifactServerBlock, options: RenderOptions): KubeObject[] {
  const variant = templates.objects[block.accessMode ?? "ReadWriteOnce"];
  return variant.map((template) => {
    const object = substitute(structuredClone(template), templates.placeholder, namespace) as KubeObject;
    object.metadata.labels = { ...object.metadata.labels, [MANAGED_BY]: options.managerName };
    if (options.identity !== undefined) object.metadata.annotations = { ...object.metadata.annotations, [OWNER_ANNOTATION]: options.identity };
    if (object.kind === "PersistentVolumeClaim") {
      // Helm's keep annotation means nothing on an object Helm does not own; ours says the same to people.
      const annotations: Record<string, string> = { ...object.metadata.annotations, [KEEP_ANNOTATION]: "keep" };
      delete annotations["helm.sh/resource-policy"];
      object.metadata.annotations = annotations;
      const spec = object.spec as { storageClassName?: string; resources: { requests: Record<string, string> } };
      if (block.size !== undefined) spec.resources.requests.storage = block.size;
      if (block.storageClassName !== undefined) spec.storageClassName = block.storageClassName;
    } else if (options.owner !== undefined) {
      object.metadata.ownerReferences = [options.owner];
    }
    if (object.kind === "Deployment") {
      const { containers } = (object.spec as { template: { spec: { containers: ServerContainer[] } } }).template.spec;
      if (block.resources !== undefined) for (const container of containers) container.resources = block.resources;
      // The block's retention replaces the chart's default for this namespace's server.
      if (block.retentionDays !== undefined) {
        const server = containers.find((container) => container.env?.some((variable) => variable.name === "RETENTION_DAYS")) ?? containers[0];
        if (server !== undefined) setEnv(server, "RETENTION_DAYS", String(block.retentionDays));
      }
    }
    return object;
  });
}

/**
 * Where a dedicated server's S3 key pair comes from: the manager holds the master key the shared server
 * derives namespace keys from, and writes each dedicated namespace its own pair alone — never the master
 * key, from which every other namespace's key would follow.
 */
export interface NamespaceKeySource {
  /** The Secret the dedicated server's template reads (`S3_NAMESPACE_ACCESS_KEY`/`_SECRET_KEY`). */
  readonly secretName: string;
  keyFor(namespace: string): { readonly accessKeyId: string; readonly secretAccessKey: string };
}

/** The Secret's keys: the layout of `mlpipeline-minio-artifact`, which KFP's launcher reads by secretRef. */
export const NAMESPACE_KEY_FIELDS = { accessKey: "accesskey", secretKey: "secretkey" } as const;

/** A namespace's key pair as a Secret, labelled like the server's objects (`labelsOf`, one of them). */
export function namespaceKeySecret(namespace: string, source: NamespaceKeySource, labelsOf: KubeObject | undefined, options: RenderOptions): KubeObject {
  const key = source.keyFor(namespace);
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: source.secretName,
      namespace,
      labels: { ...labelsOf?.metadata.labels, "app.kubernetes.io/component": "s3-credentials", [MANAGED_BY]: options.managerName },
      ...(options.identity === undefined ? {} : { annotations: { [OWNER_ANNOTATION]: options.identity } }),
      ...(options.owner === undefined ? {} : { ownerReferences: [options.owner] }),
    },
    type: "Opaque",
    // `data`, not `stringData`: server-side apply owns and compares the stored field.
    data: {
      [NAMESPACE_KEY_FIELDS.accessKey]: Buffer.from(key.accessKeyId).toString("base64"),
      [NAMESPACE_KEY_FIELDS.secretKey]: Buffer.from(key.secretAccessKey).toString("base64"),
    },
  };
}

/** The namespace's claim, held by `options.identity`. */
export function claimObject(namespace: string, options: RenderOptions & { readonly identity: string }): KubeObject {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      name: CLAIM_NAME,
      namespace,
      labels: { [MANAGED_BY]: options.managerName },
      annotations: { [OWNER_ANNOTATION]: options.identity },
      ...(options.owner === undefined ? {} : { ownerReferences: [options.owner] }),
    },
    // No duration: it is not an election, it holds until its holder lets go or is uninstalled.
    spec: { holderIdentity: options.identity },
  };
}

/** The port of a rendered Service named `name` (the first port when none is), and the Service. */
function servicePort(objects: readonly KubeObject[], name: string, fallBack: boolean): { host: string; port: number } | undefined {
  const service = objects.find((object) => object.kind === "Service");
  if (service === undefined) return undefined;
  const ports = (service.spec as { ports?: { name?: string; port: number }[] }).ports ?? [];
  const port = ports.find((candidate) => candidate.name === name) ?? (fallBack ? ports[0] : undefined);
  return port === undefined ? undefined : { host: `${service.metadata.name}.${service.metadata.namespace}.svc`, port: port.port };
}

/** The URL of a dedicated server's native API, from its rendered Service. */
export function endpointOf(objects: readonly KubeObject[]): string | undefined {
  const http = servicePort(objects, "http", true);
  return http === undefined ? undefined : `http://${http.host}:${http.port}`;
}

/** `host:port` of a dedicated server's S3 port (Service port `http-s3`), the form KFP's launcher takes; undefined when S3 is off. */
export function s3EndpointOf(objects: readonly KubeObject[]): string | undefined {
  const s3 = servicePort(objects, "http-s3", false);
  return s3 === undefined ? undefined : `${s3.host}:${s3.port}`;
}

/** The data key of kfp-launcher that KFP's launcher reads its object stores from. */
export const LAUNCHER_PROVIDERS_KEY = "providers";

/**
 * The `providers` value of kfp-launcher that sends KFP's launcher to a dedicated server: every `minio://`
 * pipeline root (Kubeflow's is `minio://mlpipeline/private-artifacts/<ns>/v2/artifacts`) goes to its S3
 * port, signed with the namespace's own key pair from `secretName`. The launcher requires a `default`
 * whenever a provider is given, and a dedicated server answers for its namespace only, so the default is
 * the server itself. Deterministic text, so that an unchanged value is recognised and not written again.
 */
export function launcherProviders(s3Endpoint: string, secretName: string): string {
  return dumpYaml({
    minio: {
      default: {
        endpoint: s3Endpoint,
        region: "us-east-1",
        disableSSL: true,
        forcePathStyle: true,
        credentials: {
          fromEnv: false,
          secretRef: { secretName, accessKeyKey: NAMESPACE_KEY_FIELDS.accessKey, secretKeyKey: NAMESPACE_KEY_FIELDS.secretKey },
        },
      },
    },
  });
}
