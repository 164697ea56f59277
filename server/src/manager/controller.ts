// Informers on the labelled namespaces and their kfp-launcher ConfigMaps feed a queue of namespace names;
// one worker reconciles one namespace at a time (bounded work per event), failures come back with
// exponential backoff, and a periodic resync repairs drift. Only the leader runs the worker.
import { CoreV1Api, ListWatch, Watch, type KubeConfig, type V1ConfigMap, type V1Namespace } from "@kubernetes/client-node";
import { withDeadline } from "../auth/kube-client.js";
import type { Logger } from "../log.js";
import type { ManagerKube } from "./kube.js";
import type { ManagerMetrics } from "./metrics.js";
import { launcherConfigOf, reconcileNamespace, SHARED_MESSAGE, type ReconcileContext } from "./reconcile.js";
import { parseStatuses, type NamespaceStatus } from "./status.js";

export interface ControllerOptions {
  readonly kubeConfig: KubeConfig;
  /** The status ConfigMap and Events (the reconciles' own calls go through `context.api`). */
  readonly kube: Pick<ManagerKube, "readStatus" | "writeStatus" | "event">;
  readonly context: ReconcileContext;
  readonly logger: Logger;
  readonly metrics: ManagerMetrics;
  readonly namespaceSelector: string;
  readonly launcherConfigMap: string;
  readonly launcherKey: string;
  readonly status: { readonly namespace: string; readonly name: string };
  readonly managerName: string;
  readonly resyncMs: number;
}

const MAX_BACKOFF_MS = 60_000;
const RESTART_INFORMER_MS = 3_000;
/** How long a new leader waits for the previous status before it starts without it. */
const READ_STATUS_TIMEOUT_MS = 10_000;

/** Delay before the n-th retry (n ≥ 1): 0.5 s doubling, at most a minute. */
export function backoffMs(attempt: number): number {
  return Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.max(0, attempt - 1));
}

export class Controller {
  private readonly namespaces: ListWatch<V1Namespace>;
  private readonly configMaps: ListWatch<V1ConfigMap>;
  private readonly queue = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly failures = new Map<string, number>();
  private readonly statuses = new Map<string, NamespaceStatus>();
  private leading = false;
  /** While the previous leader's status is read, on becoming leader. */
  private adopting: Promise<void> | undefined;
  private working = false;
  private worker: Promise<void> = Promise.resolve();
  private statusTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  synced = false;

  constructor(private readonly options: ControllerOptions) {
    const { kubeConfig, namespaceSelector, launcherConfigMap } = options;
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const watch = new Watch(kubeConfig);
    this.namespaces = new ListWatch<V1Namespace>("/api/v1/namespaces", watch, () => core.listNamespace({ labelSelector: namespaceSelector }), false, namespaceSelector);
    const fieldSelector = `metadata.name=${launcherConfigMap}`;
    this.configMaps = new ListWatch<V1ConfigMap>(
      "/api/v1/configmaps",
      watch,
      () => core.listConfigMapForAllNamespaces({ fieldSelector }),
      false,
      undefined,
      fieldSelector,
    );
    for (const verb of ["add", "update", "delete"] as const) {
      this.namespaces.on(verb, (namespace) => this.enqueue(namespace.metadata?.name));
      this.configMaps.on(verb, (configMap) => this.enqueue(configMap.metadata?.namespace));
    }
    for (const [what, informer] of [["namespaces", this.namespaces], ["configmaps", this.configMaps]] as const) {
      // A watch that ends in an error is not restarted by the client: restart it, re-listing everything.
      informer.on("error", (error: unknown) => {
        options.logger.warn("watch failed, restarting", { what, error: String(error) });
        options.metrics.errors.inc({ stage: "watch" });
        setTimeout(() => void informer.start().catch(() => undefined), RESTART_INFORMER_MS).unref();
      });
    }
  }

  async start(): Promise<void> {
    await Promise.all([this.namespaces.start(), this.configMaps.start()]);
    this.synced = true;
    this.resyncTimer = setInterval(() => this.resync(), this.options.resyncMs);
    this.resyncTimer.unref();
  }

  setLeading(leading: boolean): void {
    this.leading = leading;
    this.options.metrics.leader.set(leading ? 1 : 0);
    if (!leading) return;
    // No reconcile runs until the previous leader's status is read (work() waits for it).
    const adopting = this.adoptPreviousStatus().finally(() => {
      if (this.adopting === adopting) this.adopting = undefined;
      if (this.leading) this.resync(true);
    });
    this.adopting = adopting;
  }

  /**
   * Starts from the status the previous leader wrote (the ConfigMap outlives it): each write lists every
   * namespace, and the first writes of a new leader would otherwise hold only those it had reconciled
   * so far, so that for seconds the servers' config endpoint would not know a dedicated namespace's
   * server. Each namespace is reconciled again right after, which corrects what changed meanwhile.
   * Unreadable, it is started from what this replica knows (nothing, after a restart).
   */
  private async adoptPreviousStatus(): Promise<void> {
    const { kube, status, logger, metrics } = this.options;
    try {
      const previous = parseStatuses(await withDeadline(kube.readStatus(status.namespace, status.name), READ_STATUS_TIMEOUT_MS));
      for (const entry of previous) this.statuses.set(entry.namespace, entry);
      this.updateGauges();
      logger.info("adopted the previous status", { namespaces: previous.length });
    } catch (error) {
      metrics.errors.inc({ stage: "status" });
      logger.warn("could not read the previous status, starting without it", { error: String(error) });
    }
  }

  /** Every watched namespace, and every one we have a status for (it may have lost its label). */
  private resync(all = false): void {
    const names = new Set<string>(this.namespaces.list().flatMap((namespace) => (namespace.metadata?.name ? [namespace.metadata.name] : [])));
    for (const [name, status] of this.statuses) {
      // An idle shared namespace has nothing to repair; events bring it back when it changes.
      if (!all && status.condition === "Shared" && names.has(name)) names.delete(name);
      else names.add(name);
    }
    for (const name of this.options.context.staticNamespaces) names.add(name);
    for (const name of names) this.enqueue(name);
  }

  private enqueue(namespace: string | undefined, delayMs = 0): void {
    if (!namespace) return;
    if (delayMs > 0) {
      clearTimeout(this.timers.get(namespace));
      this.timers.set(namespace, setTimeout(() => {
        this.timers.delete(namespace);
        this.enqueue(namespace);
      }, delayMs).unref());
      return;
    }
    this.queue.add(namespace);
    void this.work();
  }

  /** Resolves once no reconcile is running (after setLeading(false), none starts again). */
  async idle(): Promise<void> {
    await this.worker;
  }

  private work(): Promise<void> {
    if (this.working || !this.leading || !this.synced || this.adopting !== undefined) return this.worker;
    this.worker = this.drain();
    return this.worker;
  }

  private async drain(): Promise<void> {
    this.working = true;
    try {
      while (this.leading && this.queue.size > 0) {
        const [namespace] = this.queue;
        if (namespace === undefined) break;
        this.queue.delete(namespace);
        await this.reconcileOne(namespace);
      }
    } finally {
      this.working = false;
    }
  }

  private async reconcileOne(namespace: string): Promise<void> {
    const { metrics, logger, launcherConfigMap, launcherKey } = this.options;
    const exists = this.namespaces.get(namespace) !== undefined;
    const configMap = this.configMaps.get(launcherConfigMap, namespace);
    const started = performance.now();
    try {
      const status = await reconcileNamespace(this.options.context, namespace, exists, launcherConfigOf(configMap, launcherKey));
      metrics.duration.observe((performance.now() - started) / 1000);
      metrics.reconciles.inc({ result: status.condition });
      this.failures.delete(namespace);
      this.record(status, exists, configMap !== undefined);
    } catch (error) {
      const attempt = (this.failures.get(namespace) ?? 0) + 1;
      this.failures.set(namespace, attempt);
      metrics.reconciles.inc({ result: "Error" });
      metrics.errors.inc({ stage: "reconcile" });
      logger.warn("reconcile failed, retrying", { namespace, attempt, retryInMs: backoffMs(attempt), error: String(error) });
      this.enqueue(namespace, backoffMs(attempt));
    }
  }

  private record(status: NamespaceStatus, exists: boolean, hasConfigMap: boolean): void {
    const { logger, kube, metrics, managerName, launcherConfigMap } = this.options;
    const previous = this.statuses.get(status.namespace);
    if (!exists && status.condition === "Shared") this.statuses.delete(status.namespace);
    else this.statuses.set(status.namespace, status);
    const changed = previous?.condition !== status.condition || previous.message !== status.message;
    if (!changed) return;
    const warning = status.condition === "InvalidBlock" || status.condition === "Conflict";
    logger[warning ? "warn" : "info"]("namespace reconciled", { ...status });
    if (status.condition === "InvalidBlock") metrics.errors.inc({ stage: "block" });
    if (status.condition === "Conflict") metrics.errors.inc({ stage: "conflict" });
    this.updateGauges();
    // A manager's start reports no event for a namespace it finds shared (with or without a kept claim).
    if (exists && !(previous === undefined && status.condition === "Shared" && status.message.startsWith(SHARED_MESSAGE))) {
      const target = hasConfigMap
        ? { apiVersion: "v1", kind: "ConfigMap", namespace: status.namespace, name: launcherConfigMap }
        : { apiVersion: "v1", kind: "Namespace", namespace: status.namespace, name: status.namespace };
      kube.event(target, status.condition, status.message, warning ? "Warning" : "Normal", managerName).catch((error: unknown) => {
        metrics.errors.inc({ stage: "event" });
        logger.warn("could not record an event", { namespace: status.namespace, error: String(error) });
      });
    }
    this.scheduleStatusWrite();
  }

  private updateGauges(): void {
    const { metrics } = this.options;
    metrics.dedicated.set([...this.statuses.values()].filter((entry) => entry.condition === "Dedicated").length);
    metrics.invalid.set([...this.statuses.values()].filter((entry) => entry.condition === "InvalidBlock" || entry.condition === "Conflict").length);
  }

  /** Writes the status ConfigMap at most once a second, whatever the number of namespaces that changed. */
  private scheduleStatusWrite(delayMs = 1_000): void {
    if (this.statusTimer !== undefined) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      const { kube, status, logger, metrics } = this.options;
      kube.writeStatus(status.namespace, status.name, [...this.statuses.values()]).catch((error: unknown) => {
        metrics.errors.inc({ stage: "status" });
        logger.warn("could not write the status ConfigMap, retrying", { error: String(error) });
        this.scheduleStatusWrite(5_000);
      });
    }, delayMs);
    this.statusTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.resyncTimer);
    clearTimeout(this.statusTimer);
    for (const timer of this.timers.values()) clearTimeout(timer);
    await Promise.all([this.namespaces.stop(), this.configMaps.stop()]);
  }
}
