// The HTTP surface of each listener: the access log, then one Hono sub-app per API (routes/api.ts gives
// each its guards, its error mapper and its catch-all), mounted here. A new API is a sub-app under
// routes/ mounted in createApp. The S3 API is its own listener's only sub-app (createS3Surface).
import { Hono } from "hono";
import type { Authorizer } from "./auth/types.js";
import type { Config } from "./config.js";
import { notFound } from "./errors.js";
import type { AppEnv } from "./http/env.js";
import { accessLog } from "./http/access-log.js";
import type { Logger } from "./log.js";
import type { HttpMetrics } from "./metrics.js";
import { AccessCore, authorizerAuthentication } from "./routes/access.js";
import { errorMapper, nativeErrorBody, type FaultHandling } from "./routes/api.js";
import { createFilesystemStorageApi } from "./routes/filesystem-storage.js";
import { createKfpApi } from "./routes/kfp.js";
import { createNativeApi } from "./routes/native.js";
import { createOperationsApi, type Lifecycle } from "./routes/operations.js";
import type { RunIndex } from "./storage/runs.js";
import type { ArtifactStore } from "./storage/store.js";

export interface AppDeps {
  readonly store: ArtifactStore;
  readonly runs: RunIndex;
  readonly authorizer: Authorizer;
  readonly metrics: HttpMetrics;
  readonly logger: Logger;
  readonly lifecycle: Lifecycle;
}

/** A listener's app: one access-log line per request, then `apis` in order (the first whose prefix matches answers). */
export function createSurface(deps: { logger: Logger; metrics: HttpMetrics; faults: FaultHandling }, apis: readonly Hono<AppEnv>[]): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(accessLog(deps));
  for (const api of apis) app.route("/", api);
  // Only the access log itself can fail out here, and only a listener without a catch-all API (no
  // operations API) leaves paths unclaimed: every API maps its own errors.
  app.onError(errorMapper(nativeErrorBody, deps.faults));
  app.notFound((c) => nativeErrorBody(c, notFound("no such route")));
  return app;
}

export function faultHandling(store: ArtifactStore, logger: Logger): FaultHandling {
  return { logger, checkVolume: () => store.checkVolume() };
}

export function createApp(config: Config, deps: AppDeps): Hono<AppEnv> {
  const faults = faultHandling(deps.store, deps.logger);
  // The native and KFP APIs authenticate alike: a bearer token, or a trusted proxy's header.
  const access = new AccessCore({ authorizer: deps.authorizer, scopeNamespace: config.scopeNamespace }, authorizerAuthentication(deps.authorizer));
  return createSurface({ ...deps, faults }, [
    createNativeApi({ access, store: deps.store, faults }),
    // Before the KFP API: both live under /apis, and the KFP API's catch-all would answer this one's path.
    createFilesystemStorageApi(config, { faults }),
    createKfpApi({ access, store: deps.store, runs: deps.runs, faults }),
    // Last: its prefix is every path, so it also answers the paths no API claims.
    createOperationsApi({ ...deps, faults, nodeName: config.nodeName, usesKubernetes: config.authMode === "kubernetes" }),
  ]);
}
