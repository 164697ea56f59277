// GET /apis/v2beta1/filesystem-storage/config in KEP-12513's shape: `enabled` and `dedicated_namespaces`,
// plus `endpoints` (namespace → URL of its dedicated server), an additive field. The chart's dedicated
// servers come from the environment; the manager's from its status ConfigMap, read with one GET by name
// (the only read RBAC the server gets) and cached, since the UI polls this. No authentication: the KFP
// UI and API server read it as they read KFP's own configuration. Its errors are in KFP's shape.
import { CoreV1Api } from "@kubernetes/client-node";
import type { Hono } from "hono";
import { loadKubeConfig } from "../auth/kube-client.js";
import type { Config } from "../config.js";
import type { AppEnv } from "../http/env.js";
import type { Logger } from "../log.js";
import { defineApi, type FaultHandling } from "./api.js";
import { kfpErrorBody } from "./kfp.js";
import { parseStatuses, STATUS_DATA_KEY } from "../manager/status.js";

const FILESYSTEM_STORAGE_API_PATH = "/apis/v2beta1/filesystem-storage";
export const FILESYSTEM_STORAGE_CONFIG_PATH = `${FILESYSTEM_STORAGE_API_PATH}/config`;
const CACHE_MS = 10_000;

export type DedicatedServers = ReadonlyMap<string, string>;

/** `a=http://x,b=http://y` into a map; malformed items are skipped (the chart writes this value). */
export function parseDedicatedServers(text: string): Map<string, string> {
  const servers = new Map<string, string>();
  for (const item of text.split(",").map((part) => part.trim())) {
    const eq = item.indexOf("=");
    if (eq > 0) servers.set(item.slice(0, eq), item.slice(eq + 1));
  }
  return servers;
}

/** The dedicated namespaces' endpoints in the manager's status document (manager/status.ts). */
export function parseManagerStatus(text: string | undefined): Map<string, string> {
  const servers = new Map<string, string>();
  for (const status of parseStatuses(text)) {
    if (status.dedicated && status.condition === "Dedicated" && status.endpoint !== undefined) servers.set(status.namespace, status.endpoint);
  }
  return servers;
}

export type StatusReader = () => Promise<string | undefined>;

function kubeStatusReader(config: Config, reference: string): StatusReader {
  const [namespace = "", name = ""] = reference.split("/");
  let core: CoreV1Api | undefined;
  return async () => {
    core ??= loadKubeConfig(config.kubeconfig).makeApiClient(CoreV1Api);
    const configMap = await core.readNamespacedConfigMap({ name, namespace });
    return configMap.data?.[STATUS_DATA_KEY];
  };
}

export interface FilesystemStorageDeps {
  readonly faults: FaultHandling;
  /** Where the manager's status comes from; by default its ConfigMap, read from the API server. */
  readonly readStatus?: StatusReader;
}

/** Mounted before the KFP API, which shares its /apis prefix. */
export function createFilesystemStorageApi(config: Config, deps: FilesystemStorageDeps): Hono<AppEnv> {
  return defineApi({ basePath: FILESYSTEM_STORAGE_API_PATH, errorBody: kfpErrorBody, faults: deps.faults }, (app) =>
    registerRoutes(app, config, deps.faults.logger, deps.readStatus),
  );
}

function registerRoutes(app: Hono<AppEnv>, config: Config, logger: Logger, readStatus: StatusReader | undefined): void {
  const fromChart = parseDedicatedServers(config.dedicatedServers);
  const reader =
    readStatus ?? (config.dedicatedStatusConfigMap && config.authMode === "kubernetes" ? kubeStatusReader(config, config.dedicatedStatusConfigMap) : undefined);
  let cached: { at: number; servers: Map<string, string> } | undefined;
  const managed = async (): Promise<Map<string, string>> => {
    if (reader === undefined) return new Map();
    if (cached !== undefined && Date.now() - cached.at < CACHE_MS) return cached.servers;
    try {
      cached = { at: Date.now(), servers: parseManagerStatus(await reader()) };
    } catch (error) {
      // Keep answering with the chart's servers and the last status we read: the UI must keep working.
      logger.warn("could not read the manager's status", { configMap: config.dedicatedStatusConfigMap, error: String(error) });
      cached = { at: Date.now(), servers: cached?.servers ?? new Map<string, string>() };
    }
    return cached.servers;
  };
  app.get("/config", async (c) => {
    const servers = new Map([...(await managed()), ...fromChart]);
    const namespaces = [...servers.keys()].sort();
    c.header("Cache-Control", "max-age=10");
    return c.json({ enabled: true, dedicated_namespaces: namespaces, endpoints: Object.fromEntries(namespaces.map((ns) => [ns, servers.get(ns)])) });
  });
}
