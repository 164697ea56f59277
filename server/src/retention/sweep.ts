// The retention sweep: every artifact older than its policy allows is removed, namespace by namespace, in
// key order. Bounded: it pauses every few hundred files (JobContext.step) so requests keep flowing, and it
// records how far it got, so a sweep interrupted by a crash, a restart or a lost lease resumes there
// instead of starting over. Removal goes through the store (containment, usage, digests) and only removes
// the version that was judged, so an artifact rewritten meanwhile stays. Symlinks are never followed: the
// walk only descends into real directories and only judges regular files.
import fs from "node:fs/promises";
import path from "node:path";
import { Counter, Gauge, type Registry } from "prom-client";
import { clearCursor, readCursor, writeCursor } from "../jobs/cursor.js";
import type { JobContext } from "../jobs/runner.js";
import type { Logger } from "../log.js";
import { METRIC_PREFIX, NAMESPACE_LABEL } from "../metrics.js";
import { HttpError } from "../errors.js";
import { parseKey } from "../storage/names.js";
import type { ArtifactStore } from "../storage/store.js";
import { DirectorySyncs } from "./directory-syncs.js";
import { sortedFiles } from "./walk.js";
import { DAY_MS, type RetentionPolicy } from "./policy.js";

/** Progress is saved after this many files, so a resumed sweep repeats at most this much. */
const CURSOR_EVERY = 500;
/** A dry run names at most this many artifacts (it counts them all). */
const DRY_RUN_LISTED = 1000;

export interface RetentionMetrics {
  readonly expiredObjects: Counter<typeof NAMESPACE_LABEL>;
  readonly expiredBytes: Counter<typeof NAMESPACE_LABEL>;
  readonly lastSweep: Gauge;
  readonly lastSweepDuration: Gauge;
  readonly errors: Counter;
}

export function createRetentionMetrics(registry: Registry): RetentionMetrics {
  const name = (suffix: string) => `${METRIC_PREFIX}retention_${suffix}`;
  const existing = registry.getSingleMetric(name("expired_objects_total"));
  if (existing !== undefined) {
    return {
      expiredObjects: existing as Counter<typeof NAMESPACE_LABEL>,
      expiredBytes: registry.getSingleMetric(name("expired_bytes_total")) as Counter<typeof NAMESPACE_LABEL>,
      lastSweep: registry.getSingleMetric(name("last_sweep_timestamp_seconds")) as Gauge,
      lastSweepDuration: registry.getSingleMetric(name("last_sweep_duration_seconds")) as Gauge,
      errors: registry.getSingleMetric(name("sweep_errors_total")) as Counter,
    };
  }
  return {
    expiredObjects: new Counter({ name: name("expired_objects_total"), help: "Artifacts removed by the retention sweep, by namespace.", labelNames: [NAMESPACE_LABEL], registers: [registry] }),
    expiredBytes: new Counter({ name: name("expired_bytes_total"), help: "Bytes removed by the retention sweep, by namespace.", labelNames: [NAMESPACE_LABEL], registers: [registry] }),
    lastSweep: new Gauge({ name: name("last_sweep_timestamp_seconds"), help: "When the last complete retention sweep ended (Unix seconds).", registers: [registry], aggregator: "max" }),
    lastSweepDuration: new Gauge({ name: name("last_sweep_duration_seconds"), help: "How long the last complete retention sweep took.", registers: [registry], aggregator: "max" }),
    errors: new Counter({ name: name("sweep_errors_total"), help: "Artifacts the retention sweep could not judge or remove.", registers: [registry] }),
  };
}

export interface SweepReport {
  readonly scanned: number;
  readonly expired: number;
  readonly expiredBytes: number;
  /** Dry run: how many artifacts would have been removed. */
  readonly wouldExpire: number;
  /** Dry run: the first DRY_RUN_LISTED of them (namespace/key), so a sweep of millions stays small in memory and in the log. */
  readonly wouldExpireListed: readonly string[];
  readonly resumedFrom: { namespace: string; key: string } | undefined;
}

export interface RetentionSweepDeps {
  readonly store: ArtifactStore;
  readonly policy: RetentionPolicy;
  /** Where progress is recorded (on the volume, shared by the servers). */
  readonly cursorFile: string;
  readonly dryRun: boolean;
  readonly logger: Logger;
  readonly metrics: RetentionMetrics;
}

interface Cursor {
  readonly namespace: string;
  readonly key: string;
}

export async function sweepRetention(deps: RetentionSweepDeps, context: JobContext): Promise<SweepReport> {
  const { store, policy, logger, metrics } = deps;
  const started = context.now();
  const resumedFrom = await readCursor(deps.cursorFile, asCursor);
  let scanned = 0;
  let expired = 0;
  let expiredBytes = 0;
  let wouldExpire = 0;
  const wouldExpireListed: string[] = [];
  const cutoffFor = (days: number) => started - days * DAY_MS;
  // Removals are made durable a tick at a time: one fsync per directory, not one per file.
  const syncs = new DirectorySyncs(store.options.fsync);

  try {
    for (const namespace of (await store.namespaces()).sort()) {
      if (resumedFrom !== undefined && namespace < resumedFrom.namespace) continue;
      if (!policy.mayExpire(namespace)) continue;
      const after = resumedFrom?.namespace === namespace ? resumedFrom.key : undefined;
      const namespaceDir = store.layout.namespaceDir(namespace);
      for await (const file of sortedFiles(namespaceDir, "", after)) {
        if (await context.step()) await syncs.flush();
        scanned += 1;
        if (scanned % CURSOR_EVERY === 0) await writeCursor(deps.cursorFile, { namespace, key: file.key });
        const days = policy.daysFor(namespace, file.key);
        if (days === 0) continue;
        const stat = await fs.lstat(file.path).catch(() => undefined);
        if (stat === undefined || !stat.isFile() || stat.mtimeMs >= cutoffFor(days)) continue;
        if (deps.dryRun) {
          wouldExpire += 1;
          if (wouldExpireListed.length < DRY_RUN_LISTED) wouldExpireListed.push(`${namespace}/${file.key}`);
          continue;
        }
        try {
          await store.delete(namespace, parseKey(file.key), false, { ino: stat.ino, mtimeMs: stat.mtimeMs }, { deferDirectorySync: true });
          syncs.add(path.dirname(file.path), namespaceDir);
          expired += 1;
          expiredBytes += stat.size;
          metrics.expiredObjects.inc({ [NAMESPACE_LABEL]: namespace });
          metrics.expiredBytes.inc({ [NAMESPACE_LABEL]: namespace }, stat.size);
        } catch (error) {
          // Rewritten or removed meanwhile: not ours to remove any more.
          if (error instanceof HttpError && (error.status === 412 || error.status === 404)) continue;
          metrics.errors.inc();
          logger.warn("retention could not remove an artifact", { namespace, error: String(error) });
        }
      }
    }
  } catch (error) {
    // What was removed before a lost lease or a failure is made durable too; the error is what counts.
    await syncs.flush().catch(() => {});
    throw error;
  }
  await syncs.flush();
  await clearCursor(deps.cursorFile);
  const durationSeconds = (context.now() - started) / 1000;
  metrics.lastSweep.set(context.now() / 1000);
  metrics.lastSweepDuration.set(durationSeconds);
  logger.info("retention sweep", { scanned, expired, expiredBytes, dryRun: deps.dryRun || undefined, wouldExpire: deps.dryRun ? wouldExpire : undefined, resumed: resumedFrom !== undefined || undefined, durationSeconds });
  if (deps.dryRun && wouldExpire > 0) logger.info("retention dry run: would remove", { artifacts: wouldExpireListed, listed: wouldExpireListed.length, total: wouldExpire });
  return { scanned, expired, expiredBytes, wouldExpire, wouldExpireListed, resumedFrom };
}

function asCursor(parsed: unknown): Cursor | undefined {
  const { namespace, key } = (parsed ?? {}) as Partial<Cursor>;
  return typeof namespace === "string" && typeof key === "string" ? { namespace, key } : undefined;
}
