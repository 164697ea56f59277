// The server's background jobs, in one place: crash leftovers in the temporary directory (every server
// sweeps its own volume view), abandoned multipart uploads, the retention sweep and the orphan sweep
// (digest sidecars and run records of artifacts that are gone); the last three one server at a time per
// volume, each by its own lease.
import path from "node:path";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { LifecycleStore } from "../retention/lifecycle.js";
import { createOrphanMetrics, sweepOrphans } from "../retention/orphans.js";
import { RetentionPolicy } from "../retention/policy.js";
import { createRetentionMetrics, sweepRetention } from "../retention/sweep.js";
import type { MultipartUploads } from "../s3/multipart.js";
import type { ArtifactStore } from "../storage/store.js";
import type { Runtime } from "../runtime.js";
import { VolumeLease } from "./volume-lease.js";

const TEMPORARY_FILES_INTERVAL_MS = 60_000;
const MULTIPART_INTERVAL_MS = 10 * 60_000;
/** A lease outlives a holder's silence this long: renewals come every few hundred files. */
const LEASE_MS = 2 * 60_000;

export interface ServerJobs {
  readonly bucketLifecycles: LifecycleStore;
  readonly policy: RetentionPolicy;
}

export async function createServerJobs(
  config: Config,
  deps: { store: ArtifactStore; multipart: MultipartUploads; logger: Logger; runtime: Pick<Runtime, "registry" | "jobs" | "now"> },
): Promise<ServerJobs> {
  const { store, multipart, logger } = deps;
  const { jobs: runner, now, registry } = deps.runtime;
  const jobsDir = path.join(store.layout.internalDir, "jobs");
  const bucketLifecycles = new LifecycleStore(path.join(store.layout.internalDir, "lifecycle"));
  await bucketLifecycles.load();
  // Namespaces on the volume, refreshed at each sweep, for lifecycle rules that cover all of them.
  let namespaces: readonly string[] = await store.namespaces();
  const policy = new RetentionPolicy(config.retention.defaultDays, () => [
    ...config.retention.rules,
    ...bucketLifecycles.retentionRules({ kubeflowBucket: config.s3.kubeflowBucket, systemNamespace: config.s3.systemNamespace, namespaces: () => namespaces }),
  ]);
  const retentionMetrics = createRetentionMetrics(registry);
  const orphanMetrics = createOrphanMetrics(registry);
  const lease = (name: string) => new VolumeLease(jobsDir, name, store.layout.tempNames.ownPrefix, LEASE_MS, now);

  runner.add({
    name: "temporary-files",
    intervalMs: TEMPORARY_FILES_INTERVAL_MS,
    run: async () => {
      await store.sweepTemporaryFiles(false);
    },
  });
  runner.add({
    name: "multipart-uploads",
    intervalMs: MULTIPART_INTERVAL_MS,
    lease: lease("multipart-uploads"),
    run: async (context) => {
      const lifecycleDays = bucketLifecycles.abortMultipartDays();
      const maxAgeMs = Math.min(config.s3.multipartExpiryMs, lifecycleDays === undefined ? Infinity : lifecycleDays * 86_400_000);
      const removed = await multipart.sweep(maxAgeMs, context.now());
      if (removed > 0) logger.info("removed abandoned multipart uploads", { removed });
    },
  });
  runner.add({
    name: "retention",
    intervalMs: config.retention.sweepIntervalMs,
    lease: lease("retention"),
    run: async (context) => {
      namespaces = await store.namespaces();
      await sweepRetention(
        { store, policy, cursorFile: path.join(jobsDir, "retention.cursor"), dryRun: config.retention.dryRun, logger, metrics: retentionMetrics },
        context,
      );
    },
  });
  runner.add({
    name: "orphans",
    // Orphans only come from crashes, manual removals and runs that ended long ago: by default a few sweeps a day.
    intervalMs: config.retention.orphanSweepIntervalMs,
    lease: lease("orphans"),
    run: async (context) => {
      await sweepOrphans({ store, cursorFile: path.join(jobsDir, "orphans.cursor"), dryRun: config.retention.dryRun, logger, metrics: orphanMetrics }, context);
    },
  });
  return { bucketLifecycles, policy };
}
