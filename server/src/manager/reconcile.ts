// One namespace, level-triggered: from what its kfp-launcher ConfigMap says now and what exists now, make
// the cluster agree. Every step is idempotent (server-side apply, delete-if-ours), so a reconcile cut off
// anywhere — a crash, a lost lease — is finished by the next one.
import { parseBlock } from "./block.js";
import type { NamespaceStatus } from "./status.js";
import {
  CLAIM_NAME,
  claimObject,
  endpointOf,
  LAUNCHER_PROVIDERS_KEY,
  launcherProviders,
  MANAGED_BY,
  namespaceKeySecret,
  OWNER_ANNOTATION,
  renderObjects,
  s3EndpointOf,
  type KubeObject,
  type NamespaceKeySource,
  type OwnerReference,
  type TemplateSet,
} from "./templates.js";

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
  /** Creates only: false when an object of that name exists already (409), which is left as it is. */
  create(object: KubeObject): Promise<boolean>;
  /** Deletes; a missing object is not an error. */
  delete(ref: ObjectRef): Promise<void>;
}

export interface ReconcileContext {
  readonly api: ClusterApi;
  readonly templates: TemplateSet;
  readonly managerName: string;
  /** This release's manager, `<its namespace>/<its name>`: what its claims and objects are marked with. */
  readonly identity: string;
  readonly owner: OwnerReference | undefined;
  readonly staticNamespaces: ReadonlySet<string>;
  /** Each dedicated namespace's S3 key pair; undefined when the manager holds no master key (S3 off). */
  readonly namespaceKeys?: NamespaceKeySource;
  /** The name of the namespaces' launcher ConfigMap (kfp-launcher), into which the manager merges `providers`. */
  readonly launcherConfigMap: string;
}

export interface LauncherConfig {
  /** The value of the artifactServer key, undefined when the ConfigMap or the key is absent. */
  readonly block: string | undefined;
  /** The ConfigMap's `providers` value and the field managers that own it; absent with the ConfigMap. */
  readonly providers?: { readonly value: string | undefined; readonly managers: readonly string[] };
}

interface LauncherConfigMap {
  readonly data?: Record<string, string>;
  readonly metadata?: { readonly managedFields?: readonly { readonly manager?: string; readonly fieldsV1?: object }[] };
}

/** What a reconcile needs of the namespace's kfp-launcher ConfigMap (undefined when there is none). */
export function launcherConfigOf(configMap: LauncherConfigMap | undefined, blockKey: string): LauncherConfig {
  if (configMap === undefined) return { block: undefined };
  const managers = (configMap.metadata?.managedFields ?? [])
    .filter((entry) => {
      const data = (entry.fieldsV1 as { "f:data"?: Record<string, unknown> } | undefined)?.["f:data"];
      return data !== undefined && `f:${LAUNCHER_PROVIDERS_KEY}` in data;
    })
    .map((entry) => entry.manager ?? "");
  return { block: configMap.data?.[blockKey], providers: { value: configMap.data?.[LAUNCHER_PROVIDERS_KEY], managers } };
}

/** The status message of a namespace the shared server serves, with nothing of the manager's done there now. */
export const SHARED_MESSAGE = "served by the shared server";

const refOf = (object: KubeObject): ObjectRef => ({
  apiVersion: object.apiVersion,
  kind: object.kind,
  namespace: object.metadata.namespace,
  name: object.metadata.name,
});

const describe = (ref: ObjectRef) => `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ""}${ref.name}`;

const claimRef = (namespace: string): ObjectRef => ({ apiVersion: "coordination.k8s.io/v1", kind: "Lease", namespace, name: CLAIM_NAME });

const holderOf = (claim: KubeObject | undefined) => (claim?.spec as { holderIdentity?: string } | undefined)?.holderIdentity;

/**
 * Ours: carries our managed-by label and, if any, our release's owner annotation. (Objects from before
 * the annotation existed carry only the label; the label's value is already this release's.)
 */
function isOurs(context: ReconcileContext, object: KubeObject): boolean {
  const owner = object.metadata.annotations?.[OWNER_ANNOTATION];
  return object.metadata.labels?.[MANAGED_BY] === context.managerName && (owner === undefined || owner === context.identity);
}

function whoOwns(object: KubeObject): string {
  const owner = object.metadata.annotations?.[OWNER_ANNOTATION];
  return owner !== undefined ? `the manager ${owner}` : `${MANAGED_BY}=${object.metadata.labels?.[MANAGED_BY] ?? "unset"}`;
}

/**
 * Takes the namespace's claim (a Lease of a fixed name, created only if absent, so two managers racing
 * cannot both get it) or finds it ours. Returns the other holder when someone else has it.
 */
async function claimNamespace(context: ReconcileContext, namespace: string): Promise<string | undefined> {
  const existing = await context.api.get(claimRef(namespace));
  if (existing === undefined) {
    if (await context.api.create(claimObject(namespace, { managerName: context.managerName, identity: context.identity, owner: context.owner }))) return undefined;
    // Lost a race: whoever created it meanwhile holds it (perhaps we did, in a reconcile cut off after the create).
    const winner = holderOf(await context.api.get(claimRef(namespace)));
    return winner === context.identity ? undefined : (winner ?? "an unknown holder");
  }
  const holder = holderOf(existing);
  return holder === context.identity ? undefined : (holder ?? "an unknown holder");
}

/** Why the first of `objects` that exists and is someone else's may not be touched; undefined when none is. */
async function foreignObject(context: ReconcileContext, objects: readonly KubeObject[]): Promise<string | undefined> {
  for (const object of objects) {
    const current = await context.api.get(refOf(object));
    if (current !== undefined && !isOurs(context, current)) {
      return `${describe(refOf(object))} exists and is not managed by ${context.identity} (${whoOwns(current)}): nothing changed`;
    }
  }
  return undefined;
}

/** Only the `providers` key (or, with no data, none: server-side apply then removes what the manager owned). */
function launcherPatch(context: ReconcileContext, namespace: string, providers: string | undefined): KubeObject {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: context.launcherConfigMap, namespace },
    ...(providers === undefined ? {} : { data: { [LAUNCHER_PROVIDERS_KEY]: providers } }),
  };
}

/**
 * Points KFP's launcher at the dedicated server: merges `providers` into kfp-launcher by server-side apply,
 * owning that one key. Written only when it differs; left alone when someone else set it (the namespace's
 * own object stores win). Returns what the status message should add, if anything.
 */
async function mergeLauncherProviders(context: ReconcileContext, namespace: string, objects: readonly KubeObject[], launcher: LauncherConfig): Promise<string> {
  const s3Endpoint = s3EndpointOf(objects);
  const current = launcher.providers;
  if (current === undefined || s3Endpoint === undefined || context.namespaceKeys === undefined) return "";
  const wanted = launcherProviders(s3Endpoint, context.namespaceKeys.secretName);
  const others = current.managers.filter((manager) => manager !== context.managerName);
  if (current.value !== undefined && !current.managers.includes(context.managerName)) {
    return `; ${context.launcherConfigMap} ${LAUNCHER_PROVIDERS_KEY} left as ${others.join(", ") || "someone else"} set it: KFP's launcher follows it, not this server`;
  }
  if (current.value !== wanted) await context.api.apply(launcherPatch(context, namespace, wanted));
  return `; ${context.launcherConfigMap} ${LAUNCHER_PROVIDERS_KEY} sends KFP's launcher to ${s3Endpoint}`;
}

/** On opt-out: gives up the manager's `providers` key, which then goes unless someone else also set it. */
async function releaseLauncherProviders(context: ReconcileContext, namespace: string, launcher: LauncherConfig): Promise<boolean> {
  if (launcher.providers?.managers.includes(context.managerName) !== true) return false;
  await context.api.apply(launcherPatch(context, namespace, undefined));
  return true;
}

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
  const options = { managerName: context.managerName, identity: context.identity, owner: context.owner };
  if (context.staticNamespaces.has(namespace)) {
    // The chart runs the server, but Helm cannot derive the namespace's key: the manager writes that Secret alone.
    const message = "listed in the chart's dedicated.namespaces: the chart manages its server";
    if (context.namespaceKeys === undefined) return { namespace, condition: "Static", dedicated: true, message };
    // The chart's server has the names the manager's templates give (the same release renders both).
    const rendered = renderObjects(context.templates, namespace, { dedicated: true }, options);
    const secret = namespaceKeySecret(namespace, context.namespaceKeys, rendered[0], options);
    const foreign = await foreignObject(context, [secret]);
    if (foreign !== undefined) return { namespace, condition: "Conflict", dedicated: true, message: foreign };
    await context.api.apply(secret);
    // Released KFP's launcher reaches the chart's server over S3 only through `providers`, as it does the manager's.
    const launcherNote = await mergeLauncherProviders(context, namespace, rendered, launcher);
    return { namespace, condition: "Static", dedicated: true, message: `${message}; the manager writes its S3 key Secret ${secret.metadata.name}${launcherNote}` };
  }
  const parsed = exists ? parseBlock(launcher.block) : ({ ok: true, block: { dedicated: false } } as const);
  if (!parsed.ok) {
    return { namespace, condition: "InvalidBlock", dedicated: false, message: `artifactServer block ignored, nothing changed: ${parsed.message}` };
  }
  const rendered = renderObjects(context.templates, namespace, parsed.block, options);
  // The key Secret first, so the server's pods find it when they start (they read it once, into their environment).
  const objects = context.namespaceKeys === undefined ? rendered : [namespaceKeySecret(namespace, context.namespaceKeys, rendered[0], options), ...rendered];

  if (parsed.block.dedicated) {
    // One manager per namespace: another release's holds it, so this one serves nothing there.
    const holder = await claimNamespace(context, namespace);
    if (holder !== undefined) {
      return {
        namespace,
        condition: "Conflict",
        dedicated: false,
        message: `the namespace's dedicated server belongs to the manager ${holder} (Lease ${CLAIM_NAME}); ${context.identity} changes nothing`,
      };
    }
    // Refuse to touch an object of someone else's (a Helm release's, a person's, another manager's): report it and change nothing.
    const foreign = await foreignObject(context, objects);
    if (foreign !== undefined) return { namespace, condition: "Conflict", dedicated: false, message: foreign };
    for (const object of objects) await context.api.apply(object);
    // Last: KFP's launcher is sent to the server only once the server's objects exist.
    const launcherNote = await mergeLauncherProviders(context, namespace, objects, launcher);
    return { namespace, condition: "Dedicated", dedicated: true, endpoint: endpointOf(objects), message: `${objects.length} objects applied${launcherNote}` };
  }
  // Shared: KFP's launcher is sent back to its default first, then ours go (workload first), the PVC and
  // anything not ours stay; the namespace's claim last, so a removal cut off half-way is still ours to finish.
  const released = await releaseLauncherProviders(context, namespace, launcher);
  let removed = 0;
  let claimKept = false;
  for (const object of [...objects].reverse()) {
    const current = await context.api.get(refOf(object));
    if (object.kind === "PersistentVolumeClaim") {
      // Said in every later status too: the manager's own write to kfp-launcher triggers one more reconcile.
      claimKept = current !== undefined && isOurs(context, current);
      continue;
    }
    if (current === undefined || !isOurs(context, current)) continue;
    await context.api.delete(refOf(object));
    removed += 1;
  }
  const claim = await context.api.get(claimRef(namespace));
  if (claim !== undefined && holderOf(claim) === context.identity) await context.api.delete(claimRef(namespace));
  const message = removed > 0 ? `${removed} objects removed, the claim kept` : claimKept ? `${SHARED_MESSAGE}, the claim kept` : SHARED_MESSAGE;
  return { namespace, condition: "Shared", dedicated: false, message: released ? `${message}; ${context.launcherConfigMap} ${LAUNCHER_PROVIDERS_KEY} removed` : message };
}
