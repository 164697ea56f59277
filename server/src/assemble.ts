// Builds the application from its configuration and the runtime (runtime.ts): the store (initialized),
// metrics, authorizer and the Hono apps of the two listeners. server.ts serves the result.
import type { Hono } from "hono";
import { createApp, createSurface, faultHandling } from "./app.js";
import { createAuthorizer } from "./auth/index.js";
import type { Authorizer } from "./auth/types.js";
import type { Config } from "./config.js";
import type { AppEnv } from "./http/env.js";
import type { Logger } from "./log.js";
import { createMetrics, type HttpMetrics } from "./metrics.js";
import type { Lifecycle } from "./routes/operations.js";
import { createRuntime, type Runtime } from "./runtime.js";
import type { JobRunner } from "./jobs/runner.js";
import { createServerJobs } from "./jobs/server-jobs.js";
import { MultipartUploads } from "./s3/multipart.js";
import { createS3App } from "./s3/app.js";
import { RunIndex } from "./storage/runs.js";
import { ArtifactStore } from "./storage/store.js";

export interface Assembled {
  readonly app: Hono<AppEnv>;
  /** The S3-compatible API, served on its own port; undefined when S3_ENABLED=false. */
  readonly s3App: Hono<AppEnv> | undefined;
  readonly multipart: MultipartUploads;
  /** Background work (temporary files, multipart uploads, retention); server.ts starts and stops it. */
  readonly jobs: JobRunner;
  readonly store: ArtifactStore;
  readonly runs: RunIndex;
  readonly metrics: HttpMetrics;
  readonly authorizer: Authorizer;
  readonly lifecycle: Lifecycle;
  readonly runtime: Runtime;
}

/**
 * `overrides.runtime`: the process's runtime, made once by the entry point; without one (tests) a new
 * runtime is made with `logger` and `overrides.now`.
 */
export async function assemble(
  config: Config,
  logger: Logger,
  overrides: { authorizer?: Authorizer; now?: () => number; runtime?: Runtime } = {},
): Promise<Assembled> {
  const runtime = overrides.runtime ?? createRuntime({ logger, ...(overrides.now ? { now: overrides.now } : {}) });
  const store = new ArtifactStore({
    root: config.artifactsRoot,
    maxUploadBytes: config.maxUploadBytes,
    maxArchiveExpandedBytes: config.maxArchiveExpandedBytes,
    minFreeBytes: config.minFreeBytes,
    namespaceQuotaBytes: config.namespaceQuotaBytes,
    fsync: config.fsync,
    // Live uploads touch their temporary files at least once per idle timeout.
    staleTempMs: Math.max(2 * config.idleTimeoutMs, 10 * 60_000),
    runtime,
  });
  await store.init();
  const runs = new RunIndex(store.layout.runsDir, store.layout.scratch, config.fsync);
  const metrics = createMetrics(
    {
      freeBytes: () => store.freeBytes(),
      usedBytesByNamespace: () => store.usage.entries(),
    },
    runtime.registry,
    runtime.metricsText,
  );
  const authorizer = overrides.authorizer ?? createAuthorizer(config, { registry: metrics.registry, logger });
  const lifecycle: Lifecycle = { shuttingDown: false };
  const app = createApp(config, { store, runs, authorizer, metrics, logger, lifecycle });
  const multipart = new MultipartUploads(store, store.layout.internalDir);
  await multipart.init();
  const jobs = await createServerJobs(config, { store, multipart, logger, runtime });
  const s3App = config.s3.enabled
    ? createSurface({ logger, metrics, faults: faultHandling(store, logger) }, [
        createS3App(config.s3, {
          store,
          multipart,
          bucketLifecycles: jobs.bucketLifecycles,
          authorizer,
          faults: faultHandling(store, logger),
          authMode: config.authMode,
          scopeNamespace: config.scopeNamespace,
        }),
      ])
    : undefined;
  return { app, s3App, multipart, jobs: runtime.jobs, store, runs, metrics, authorizer, lifecycle, runtime };
}
