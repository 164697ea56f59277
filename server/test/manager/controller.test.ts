// The controller between leaders: a new leader starts from the status its predecessor wrote, so that
// its first writes (the servers' config endpoint reads them) do not drop the namespaces it has not
// reconciled yet. Informers list and watch a fake API server; reconciles go to an in-memory ClusterApi.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Controller } from "../../src/manager/controller.js";
import { createManagerMetrics, type ManagerMetrics } from "../../src/manager/metrics.js";
import type { ClusterApi, ObjectRef } from "../../src/manager/reconcile.js";
import { formatStatuses, parseStatuses, type NamespaceStatus } from "../../src/manager/status.js";
import type { KubeObject, TemplateSet } from "../../src/manager/templates.js";
import { createLogger } from "../../src/log.js";
import { eventually } from "../support/harness.js";

const STATUS = { namespace: "kubeflow", name: "kfp-artifacts-manager-status" };

/** The namespaces the fake API server lists (labelled for Kubeflow); no kfp-launcher ConfigMaps. */
let listed: string[] = [];
let server: Server;
/** The open watches by path, to send events on. */
const watches: Array<{ path: string; response: ServerResponse }> = [];

beforeAll(async () => {
  server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? "/", "http://fake");
    if (url.searchParams.get("watch") === "true") {
      // A watch that never reports anything: the informers' lists are the whole state.
      response.writeHead(200, { "content-type": "application/json" });
      response.flushHeaders();
      watches.push({ path: url.pathname, response });
      return;
    }
    const json = (value: unknown) => response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(value));
    const metadata = { resourceVersion: "1" };
    if (url.pathname === "/api/v1/namespaces") {
      json({ kind: "NamespaceList", apiVersion: "v1", metadata, items: listed.map((name) => ({ metadata: { name, resourceVersion: "1" } })) });
    } else if (url.pathname === "/api/v1/configmaps") {
      json({ kind: "ConfigMapList", apiVersion: "v1", metadata, items: [] });
    } else {
      response.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ kind: "Status", code: 404 }));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
});

afterAll(async () => {
  for (const watch of watches) watch.response.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Objects of a dedicated server, enough for a shared namespace's reconcile to look them up. */
const P = "namespace-placeholder";
const serviceAccount: KubeObject = { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: `kfp-artifacts-${P}`, namespace: P } };
const templates: TemplateSet = { placeholder: P, objects: { ReadWriteOnce: [serviceAccount], ReadWriteMany: [serviceAccount] } };

/** Holds every read in `held` namespaces until released: a reconcile still under way. */
class HoldingApi implements ClusterApi {
  readonly reads: string[] = [];
  readonly held = new Set<string>();
  #release: () => void = () => {};
  readonly #released = new Promise<void>((resolve) => (this.#release = resolve));

  async get(ref: ObjectRef): Promise<KubeObject | undefined> {
    this.reads.push(`${ref.namespace ?? ""}/${ref.kind}`);
    if (ref.namespace !== undefined && this.held.has(ref.namespace)) await this.#released;
    return undefined;
  }
  apply(): Promise<void> {
    return Promise.resolve();
  }
  create(): Promise<boolean> {
    return Promise.resolve(true);
  }
  delete(): Promise<void> {
    return Promise.resolve();
  }
  release(): void {
    this.#release();
  }
}

/** The status ConfigMap as the controller reads (`readStatus`) and writes it, every write kept. */
class StatusStore {
  readonly writes: Map<string, NamespaceStatus>[] = [];
  constructor(readonly readStatus: () => Promise<string | undefined>) {}

  writeStatus = (_namespace: string, _name: string, statuses: readonly NamespaceStatus[]): Promise<void> => {
    this.writes.push(new Map(parseStatuses(formatStatuses(statuses)).map((status) => [status.namespace, status])));
    return Promise.resolve();
  };
  event = (): Promise<void> => Promise.resolve();

  /** The first write that satisfies `done`, among those made so far and later. */
  async writeWhere(done: (write: Map<string, NamespaceStatus>) => boolean): Promise<Map<string, NamespaceStatus>> {
    let found: Map<string, NamespaceStatus> | undefined;
    await eventually(() => (found = this.writes.find(done)) !== undefined, 10_000, `a status write as wanted (writes so far: ${this.writes.length})`);
    return found!;
  }
}

/** The namespaces watch a controller started after the first `after` watches opens (waited for: it follows the list). */
async function namespacesWatchOf(after: number): Promise<{ path: string; response: ServerResponse }> {
  const find = () => watches.slice(after).find((watch) => watch.path === "/api/v1/namespaces");
  await eventually(() => find() !== undefined, 10_000, "the controller's namespaces watch");
  return find()!;
}

const controllers: Controller[] = [];
afterEach(async () => {
  for (const controller of controllers.splice(0)) {
    controller.setLeading(false);
    await controller.stop();
  }
});

async function startController(api: ClusterApi, store: StatusStore): Promise<{ controller: Controller; metrics: ManagerMetrics }> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    // The client refuses plain HTTP unless TLS verification is off (there is no TLS to verify).
    clusters: [{ name: "fake", server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: "fake", token: "t" }],
    contexts: [{ name: "fake", cluster: "fake", user: "fake" }],
    currentContext: "fake",
  });
  const metrics = createManagerMetrics();
  const controller = new Controller({
    kubeConfig,
    kube: store,
    context: { api, templates, managerName: "kfp-artifacts-manager", identity: "kubeflow/kfp-artifacts-manager", owner: undefined, staticNamespaces: new Set(), launcherConfigMap: "kfp-launcher" },
    logger: createLogger("error"),
    metrics,
    namespaceSelector: "app.kubernetes.io/part-of=kubeflow-profile",
    launcherConfigMap: "kfp-launcher",
    launcherKey: "artifactServer",
    status: STATUS,
    managerName: "kfp-artifacts-manager",
    resyncMs: 600_000,
  });
  controllers.push(controller);
  await controller.start();
  return { controller, metrics };
}

const shared = (namespace: string): NamespaceStatus => ({ namespace, condition: "Shared", dedicated: false, message: "no dedicated server" });
const dedicated = (namespace: string): NamespaceStatus => ({
  namespace,
  condition: "Dedicated",
  dedicated: true,
  endpoint: `http://kfp-artifacts-${namespace}.${namespace}.svc:8080`,
  message: "5 objects applied",
});

describe("a new leader", () => {
  it("keeps the previous leader's namespaces in its status until it has reconciled them", async () => {
    listed = ["team-a", "team-b"];
    const previous = formatStatuses([shared("team-a"), dedicated("team-b"), dedicated("team-gone")]);
    let answerRead: (text: string) => void = () => {};
    const store = new StatusStore(() => new Promise<string>((resolve) => (answerRead = resolve)));
    const api = new HoldingApi();
    api.held.add("team-b");
    const watchesBefore = watches.length;
    const { controller, metrics } = await startController(api, store);
    controller.setLeading(true);

    // Nothing is reconciled before the previous status is read, not even a namespace an event brings.
    const namespacesWatch = await namespacesWatchOf(watchesBefore);
    namespacesWatch.response.write(`${JSON.stringify({ type: "ADDED", object: { apiVersion: "v1", kind: "Namespace", metadata: { name: "team-new", resourceVersion: "2" } } })}\n`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(api.reads).toEqual([]);
    answerRead(previous);

    // team-a reconciled, team-b's reconcile still under way: the first write still has team-b's server.
    const first = await store.writeWhere(() => true);
    expect(first.get("team-a")?.condition).toBe("Shared");
    expect(first.get("team-b")).toEqual(dedicated("team-b"));
    expect(api.reads.some((read) => read.startsWith("team-b/"))).toBe(true);
    expect((await metrics.dedicated.get()).values[0]?.value).toBe(2);

    // Every namespace is then reconciled again: team-b is found shared, and the namespace that is gone goes.
    api.release();
    const last = await store.writeWhere((write) => write.get("team-b")?.condition === "Shared" && !write.has("team-gone"));
    expect([...last.keys()]).toEqual(["team-a", "team-b", "team-new"]);
    expect((await metrics.dedicated.get()).values[0]?.value).toBe(0);
  });

  it("starts from nothing when the previous status cannot be read", async () => {
    listed = ["team-a"];
    const store = new StatusStore(() => Promise.reject(new Error("forbidden")));
    const { controller, metrics } = await startController(new HoldingApi(), store);
    controller.setLeading(true);
    const first = await store.writeWhere(() => true);
    expect([...first.keys()]).toEqual(["team-a"]);
    expect((await metrics.errors.get()).values.find((value) => value.labels.stage === "status")?.value).toBe(1);
  });

  it("skips what it cannot parse in the previous status and keeps the rest", async () => {
    listed = ["team-a", "team-b"];
    const api = new HoldingApi();
    api.held.add("team-b");
    const text = JSON.stringify({
      "team-b": dedicated("team-b"),
      "team-c": { namespace: "team-c", condition: "Exploded", dedicated: true, message: "" },
      "team-d": { ...dedicated("team-d"), namespace: "team-x" },
    });
    const store = new StatusStore(() => Promise.resolve(text));
    const { controller } = await startController(api, store);
    controller.setLeading(true);
    const first = await store.writeWhere(() => true);
    expect([...first.keys()]).toEqual(["team-a", "team-b"]);
    api.release();
  });
});

describe("parseStatuses", () => {
  it("reads what formatStatuses writes, and entries without a message", () => {
    const statuses = [dedicated("b"), shared("a")];
    expect(parseStatuses(formatStatuses(statuses))).toEqual([shared("a"), dedicated("b")]);
    expect(parseStatuses('{"c":{"condition":"InvalidBlock","dedicated":false}}')).toEqual([{ namespace: "c", condition: "InvalidBlock", dedicated: false, message: "" }]);
    expect(parseStatuses(undefined)).toEqual([]);
    expect(parseStatuses("  ")).toEqual([]);
  });

  it("refuses a document that is not a JSON object", () => {
    for (const text of ["[]", "null", "42", "{not json"]) expect(() => parseStatuses(text), text).toThrow();
  });
});
