// One namespace, level-triggered: from what its kfp-launcher ConfigMap says now and what exists now, make
// the cluster agree. Every step is idempotent (server-side apply, delete-if-ours), so a reconcile cut off
// anywhere — a crash, a lost lease — is finished by the next one.
import { parseBlock } from "./block.js";
import { endpointOf, MANAGED_BY, renderObjects, type KubeObject, type OwnerReference, type TemplateSet } from "./templates.js";

export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
}

/** The few API calls a reconcile makes; the real one is kube.ts, tests use a recording fake. */
export interface ClusterApi {
  get(ref: ObjectRef): Promise<KubeObject | undefined>;
  /** Server-side apply with the manager's field manager. */
  apply(object: KubeObject): Promise<void>;
  /** Deletes; a missing object is not an error. */
  delete(ref: ObjectRef): Promise<void>;
}

export type Condition =
  | "Shared" // not dedicated: nothing of ours in the namespace
  | "Dedicated" // every object applied
  | "Static" // in the chart's dedicated.namespaces: the chart's, not ours
  | "InvalidBlock" // the artifactServer block does not parse: nothing changed
  | "Conflict"; // an object with our name exists and is not ours: nothing changed

export interface NamespaceStatus {
  readonly namespace: string;
  readonly condition: Condition;
  readonly dedicated: boolean;
  readonly endpoint?: string;
  readonly message: string;
}

export interface ReconcileContext {
  readonly api: ClusterApi;
  readonly templates: TemplateSet;
  readonly managerName: string;
  readonly owner: OwnerReference | undefined;
  readonly staticNamespaces: ReadonlySet<string>;
}

export interface LauncherConfig {
  /** The value of the artifactServer key, undefined when the ConfigMap or the key is absent. */
  readonly block: string | undefined;
}

const refOf = (object: KubeObject): ObjectRef => ({
  apiVersion: object.apiVersion,
  kind: object.kind,
  namespace: object.metadata.namespace,
  name: object.metadata.name,
});

const describe = (ref: ObjectRef) => `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ""}${ref.name}`;

/**
 * Reconciles one namespace. `exists` is false when the namespace is gone or no longer labelled: then it
 * is treated as shared (our objects go, the claim stays). Throws only for API failures (retried with backoff).
 */
export async function reconcileNamespace(
  context: ReconcileContext,
  namespace: string,
  exists: boolean,
  launcher: LauncherConfig,
): Promise<NamespaceStatus> {
  if (context.staticNamespaces.has(namespace)) {
    return { namespace, condition: "Static", dedicated: true, message: "listed in the chart's dedicated.namespaces: the chart manages its server" };
  }
  const parsed = exists ? parseBlock(launcher.block) : ({ ok: true, block: { dedicated: false } } as const);
  if (!parsed.ok) {
    return { namespace, condition: "InvalidBlock", dedicated: false, message: `artifactServer block ignored, nothing changed: ${parsed.message}` };
  }
  const objects = renderObjects(context.templates, namespace, parsed.block, { managerName: context.managerName, owner: context.owner });

  if (parsed.block.dedicated) {
    // Refuse to touch an object of someone else's (a Helm release's, a person's): report it and change nothing.
    for (const object of objects) {
      const current = await context.api.get(refOf(object));
      if (current !== undefined && current.metadata.labels?.[MANAGED_BY] !== context.managerName) {
        return {
          namespace,
          condition: "Conflict",
          dedicated: false,
          message: `${describe(refOf(object))} exists and is not managed by ${context.managerName} (${MANAGED_BY}=${current.metadata.labels?.[MANAGED_BY] ?? "unset"}): nothing changed`,
        };
      }
    }
    for (const object of objects) await context.api.apply(object);
    return { namespace, condition: "Dedicated", dedicated: true, endpoint: endpointOf(objects), message: `${objects.length} objects applied` };
  }
  // Shared: ours go (workload first), the claim and anything not ours stay.
  let removed = 0;
  for (const object of [...objects].reverse()) {
    if (object.kind === "PersistentVolumeClaim") continue;
    const current = await context.api.get(refOf(object));
    if (current === undefined || current.metadata.labels?.[MANAGED_BY] !== context.managerName) continue;
    await context.api.delete(refOf(object));
    removed += 1;
  }
  return { namespace, condition: "Shared", dedicated: false, message: removed > 0 ? `${removed} objects removed, the claim kept` : "served by the shared server" };
}
