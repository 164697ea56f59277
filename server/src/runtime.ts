// The process-wide resources of one server: built once by a serving process (server.ts), handed to
// assemble.ts and from there to whatever needs them. Nothing below keeps mutable state in a module, so
// two servers in one process (tests) share nothing but the process itself.
import { Registry } from "prom-client";
import { JobRunner } from "./jobs/runner.js";
import type { Logger } from "./log.js";
import { BufferPool } from "./storage/buffer-pool.js";
import { createSidecarCache, type SidecarCache } from "./storage/meta.js";
import { TempNames } from "./storage/temp-names.js";
import { DEFAULT_UPLOAD_WORKERS, UploadWriterPool } from "./storage/upload-writers.js";
import { YoungGc } from "./storage/young-gc.js";

export interface Runtime {
  readonly logger: Logger;
  /** The clock of background jobs and of the sweeps' age judgements (ms since the epoch). */
  readonly now: () => number;
  /** This start's identity, in every temporary file's name (storage/temp-names.ts). */
  readonly tempNames: TempNames;
  /**
   * Whether the store's start-up sweep takes every temporary file an earlier start on this host left.
   * False in the second and later of several server processes (processes.ts): the first is live on the
   * same host and already swept before they started.
   */
  readonly sweepsEarlierStartsOnHost: boolean;
  /**
   * Whether this is the only server process on its host (not one of several, processes.ts): then any
   * other start of this host named on the volume has stopped, and the claims it holds are abandoned.
   */
  readonly onlyProcessOnHost: boolean;
  /** The worker threads that hash and write uploads (storage/upload-writers.ts). */
  readonly uploadWriters: UploadWriterPool;
  /** Young collections paced by upload bytes received (storage/young-gc.ts). */
  readonly youngGc: YoungGc;
  /** Digest sidecars read recently (storage/meta.ts). */
  readonly sidecarCache: SidecarCache;
  /** Buffers file bodies are read into on their way to the socket (storage/buffer-pool.ts). */
  readonly bodyBuffers: BufferPool;
  /** The Prometheus registry /metrics serves: every metric of this server registers here. */
  readonly registry: Registry;
  /** What /metrics answers: this registry's samples, or with several server processes all of theirs combined (processes.ts). */
  readonly metricsText: () => Promise<string>;
  /** The background job scheduler (jobs/runner.ts); the server adds its jobs (jobs/server-jobs.ts). */
  readonly jobs: JobRunner;
  /** Stops what runs on its own: the job scheduler (waiting for running jobs to pause) and the upload workers (the next upload starts them again). */
  stop(): Promise<void>;
}

export interface RuntimeOptions {
  readonly logger: Logger;
  readonly now?: () => number;
  /** The start identity; default: the host name and a random identity. */
  readonly tempNames?: TempNames;
  /** Upload worker threads; default: one per spare core, at most 4. */
  readonly uploadWorkers?: number;
  /** Default true: see Runtime. */
  readonly sweepsEarlierStartsOnHost?: boolean;
  /** Default true: see Runtime. */
  readonly onlyProcessOnHost?: boolean;
  /** Default: a new registry, whose own samples /metrics answers. */
  readonly metrics?: { readonly registry: Registry; readonly text: () => Promise<string> };
}

export function createRuntime(options: RuntimeOptions): Runtime {
  const uploadWriters = new UploadWriterPool(options.uploadWorkers ?? DEFAULT_UPLOAD_WORKERS);
  const now = options.now ?? Date.now;
  const registry = options.metrics?.registry ?? new Registry();
  const jobs = new JobRunner(options.logger, registry, now);
  return {
    logger: options.logger,
    now,
    tempNames: options.tempNames ?? new TempNames(),
    sweepsEarlierStartsOnHost: options.sweepsEarlierStartsOnHost ?? true,
    onlyProcessOnHost: options.onlyProcessOnHost ?? true,
    uploadWriters,
    youngGc: new YoungGc(),
    sidecarCache: createSidecarCache(),
    bodyBuffers: new BufferPool(),
    registry,
    metricsText: options.metrics?.text ?? (() => registry.metrics()),
    jobs,
    stop: async () => {
      await jobs.stop();
      await uploadWriters.stop();
    },
  };
}
