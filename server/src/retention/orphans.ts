// The orphan sweep: what the volume keeps about artifacts that are gone. A digest sidecar outlives its
// artifact after a crash between the unlink and the sidecar's removal, a peer that died mid-delete, a
// manual `rm`, or a read that recomputed a digest while its artifact was deleted; a run record of the KFP
// API outlives its run once every artifact the run wrote has expired or been deleted. Neither is ever
// read again, and both pile up.
//
// Sidecars are named by a hash of their key, so an orphan is one that no artifact's key hashes to: each
// namespace's files are walked first (8 bytes of memory per artifact), then its sidecars judged. A
// sidecar is removed only when, besides, it is older than SIDECAR_MIN_AGE_MS on the volume's own clock
// (a commit writes the sidecar just before it renames the artifact into place, so a fresh sidecar may
// be an artifact's that the walk could not see yet), and only the version judged: it is renamed aside
// and, if a write replaced it meanwhile, the new one is put back. A run record goes when it is older
// than RUN_RECORD_MIN_AGE_MS and its run's directory holds no file (a run is recorded at its first
// :write, before that write's body has arrived).
//
// Bounded (a step per file walked or judged), resumable (a cursor on the volume), and under a lease of
// its own, like the retention sweep.
import { createHash } from "node:crypto";
import type { Stats } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { Counter, type Registry } from "prom-client";
import { NAMESPACE_PATTERN } from "../config.js";
import { clearCursor, readCursor, writeCursor } from "../jobs/cursor.js";
import type { JobContext } from "../jobs/runner.js";
import type { Logger } from "../log.js";
import { METRIC_PREFIX, NAMESPACE_LABEL } from "../metrics.js";
import { parseKey, parseSegment } from "../storage/names.js";
import type { ArtifactStore } from "../storage/store.js";
import type { Scratch } from "../storage/temp-names.js";
import { DAY_MS } from "./policy.js";
import { byteLess, everyFileKey, sortedFiles } from "./walk.js";

/** Far longer than any commit takes between writing a sidecar and renaming its artifact into place. */
export const SIDECAR_MIN_AGE_MS = 60 * 60_000;
/** Far longer than the first upload of a run takes between its record and its artifact. */
export const RUN_RECORD_MIN_AGE_MS = DAY_MS;
/** Progress is saved after this many sidecars or records judged. */
const CURSOR_EVERY = 500;
/** What the dry run's log line lists at most. */
const DRY_RUN_LISTED = 1000;
const SIDECAR_NAME = /^([0-9a-f]{2})\/([0-9a-f]{64})\.json$/;
/** `<hh>/<sha256(run id)>/<namespace>.json`, or a record of the one-per-run layout, `<hh>/<sha256(run id)>.json`. */
const RUN_RECORD_NAME = /^([0-9a-f]{2})\/([0-9a-f]{64})(?:\/([^/]+))?\.json$/;

type OrphanKind = "sidecar" | "run_record";

export interface OrphanMetrics {
  readonly removed: Counter<"kind" | typeof NAMESPACE_LABEL>;
  readonly errors: Counter<"kind">;
}

export function createOrphanMetrics(registry: Registry): OrphanMetrics {
  const name = (suffix: string) => `${METRIC_PREFIX}orphans_${suffix}`;
  const existing = registry.getSingleMetric(name("removed_total"));
  if (existing !== undefined) {
    return { removed: existing as OrphanMetrics["removed"], errors: registry.getSingleMetric(name("errors_total")) as OrphanMetrics["errors"] };
  }
  return {
    removed: new Counter({ name: name("removed_total"), help: "Orphans removed by the orphan sweep: digest sidecars of artifacts that are gone (kind=sidecar), run records of runs with no artifact left (kind=run_record).", labelNames: ["kind", NAMESPACE_LABEL], registers: [registry] }),
    errors: new Counter({ name: name("errors_total"), help: "Orphans the orphan sweep could not remove, by kind.", labelNames: ["kind"], registers: [registry] }),
  };
}

export interface OrphanSweepDeps {
  readonly store: ArtifactStore;
  /** Where progress is recorded (on the volume, shared by the servers). */
  readonly cursorFile: string;
  readonly dryRun: boolean;
  readonly logger: Logger;
  readonly metrics: OrphanMetrics;
}

export interface OrphanSweepReport {
  readonly sidecarsScanned: number;
  readonly sidecarsRemoved: number;
  readonly runRecordsScanned: number;
  readonly runRecordsRemoved: number;
  /** Dry run: what would have been removed (`sidecar <namespace>/<file>`, `run <id> in <namespace>`), the first 1000. */
  readonly wouldRemove: string[];
  readonly resumedFrom: OrphanCursor | undefined;
}

/** Sidecars: the namespace and the last sidecar judged in it; run records: the last record judged. */
export type OrphanCursor = { readonly phase: "sidecars"; readonly namespace: string; readonly after: string } | { readonly phase: "runs"; readonly after: string };

function asCursor(parsed: unknown): OrphanCursor | undefined {
  const { phase, namespace, after } = (parsed ?? {}) as { phase?: unknown; namespace?: unknown; after?: unknown };
  if (typeof after !== "string") return undefined;
  if (phase === "runs") return { phase, after };
  return phase === "sidecars" && typeof namespace === "string" ? { phase, namespace, after } : undefined;
}

export async function sweepOrphans(deps: OrphanSweepDeps, context: JobContext): Promise<OrphanSweepReport> {
  const { store, logger, metrics } = deps;
  const { layout } = store;
  const started = context.now();
  const resumedFrom = await readCursor(deps.cursorFile, asCursor);
  // Ages are judged on the volume's clock (the one that stamps the files), not this process's.
  const volumeNow = await volumeClock(layout.scratch);
  let sidecarsScanned = 0;
  let sidecarsRemoved = 0;
  let runRecordsScanned = 0;
  let runRecordsRemoved = 0;
  let judged = 0;
  let wouldRemoveCount = 0;
  const wouldRemove: string[] = [];

  /** Removes the orphan `file` judged as `stat`; resolves whether it went. Failures are counted, not thrown. */
  const remove = async (kind: OrphanKind, namespace: string, file: string, stat: Stats, description: string): Promise<boolean> => {
    if (deps.dryRun) {
      wouldRemoveCount += 1;
      if (wouldRemove.length < DRY_RUN_LISTED) wouldRemove.push(description);
      return false;
    }
    try {
      if (!(await removeIfUnchanged(file, stat, layout.scratch))) return false;
      metrics.removed.inc({ kind, [NAMESPACE_LABEL]: namespace });
      return true;
    } catch (error) {
      metrics.errors.inc({ kind });
      logger.warn("orphan sweep could not remove an orphan", { kind, namespace, error: String(error) });
      return false;
    }
  };
  const saveProgress = async (cursor: OrphanCursor) => {
    judged += 1;
    if (judged % CURSOR_EVERY === 0) await writeCursor(deps.cursorFile, cursor);
  };

  if (resumedFrom?.phase !== "runs") {
    for (const namespace of await sidecarNamespaces(layout.metaDir)) {
      if (resumedFrom !== undefined && byteLess(namespace, resumedFrom.namespace)) continue;
      const after = resumedFrom?.namespace === namespace ? resumedFrom.after : undefined;
      const live = await liveSidecarNames(store, namespace, context);
      for await (const sidecar of sortedFiles(path.join(layout.metaDir, namespace), "", after)) {
        await context.step();
        const name = SIDECAR_NAME.exec(sidecar.key);
        // Not a sidecar's name: not ours to judge.
        if (name === null || name[1] !== name[2]?.slice(0, 2)) continue;
        sidecarsScanned += 1;
        await saveProgress({ phase: "sidecars", namespace, after: sidecar.key });
        if (live.has(name[2] ?? "")) continue;
        const stat = await fs.lstat(sidecar.path).catch(() => undefined);
        if (stat === undefined || !stat.isFile() || stat.mtimeMs > volumeNow - SIDECAR_MIN_AGE_MS) continue;
        if (await remove("sidecar", namespace, sidecar.path, stat, `sidecar ${namespace}/${sidecar.key}`)) sidecarsRemoved += 1;
      }
    }
  }

  const afterRecord = resumedFrom?.phase === "runs" ? resumedFrom.after : undefined;
  for await (const entry of sortedFiles(layout.runsDir, "", afterRecord)) {
    await context.step();
    const record = await runRecordAt(entry.key, entry.path);
    if (record === undefined) continue;
    runRecordsScanned += 1;
    await saveProgress({ phase: "runs", after: entry.key });
    if (record.stat.mtimeMs > volumeNow - RUN_RECORD_MIN_AGE_MS) continue;
    if (await holdsAFile(layout.artifactPath(record.namespace, parseKey(`${record.pipeline}/${record.runId}`)))) continue;
    if (await remove("run_record", record.namespace, entry.path, record.stat, `run ${record.runId} in ${record.namespace}`)) {
      runRecordsRemoved += 1;
      // The run's directory in the index, once its last namespace's record is gone.
      if (entry.key.split("/").length === 3) await fs.rmdir(path.dirname(entry.path)).catch(() => {});
    }
  }

  await clearCursor(deps.cursorFile);
  logger.info("orphan sweep", {
    sidecarsScanned,
    sidecarsRemoved,
    runRecordsScanned,
    runRecordsRemoved,
    dryRun: deps.dryRun || undefined,
    wouldRemove: deps.dryRun ? wouldRemoveCount : undefined,
    resumed: resumedFrom !== undefined || undefined,
    durationSeconds: (context.now() - started) / 1000,
  });
  if (deps.dryRun && wouldRemove.length > 0) logger.info("orphan sweep dry run: would remove", { orphans: wouldRemove });
  return { sidecarsScanned, sidecarsRemoved, runRecordsScanned, runRecordsRemoved, wouldRemove, resumedFrom };
}

/**
 * Removes `file` if it is still the version judged (same inode and modification time) and resolves
 * true; resolves false if it is gone or was replaced. Renamed aside first, so the check and the removal
 * see the same file: a version a writer renamed into place meanwhile is linked back, unless an even
 * newer one is there already.
 */
export async function removeIfUnchanged(file: string, judged: Pick<Stats, "ino" | "mtimeMs">, scratch: Scratch): Promise<boolean> {
  const aside = scratch.path("orphan");
  try {
    await fs.rename(file, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  try {
    const moved = await fs.lstat(aside);
    if (moved.ino === judged.ino && moved.mtimeMs === judged.mtimeMs) return true;
    await fs.link(aside, file).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    });
    return false;
  } finally {
    await fs.rm(aside, { force: true });
  }
}

/** The volume's "now": the modification time a file written there gets. */
async function volumeClock(scratch: Scratch): Promise<number> {
  const probe = scratch.path("clock");
  try {
    await fs.writeFile(probe, "", { mode: 0o640 });
    return (await fs.lstat(probe)).mtimeMs;
  } finally {
    await fs.rm(probe, { force: true });
  }
}

/** The namespaces that have sidecars, in byte order; nothing else under the sidecar directory is judged. */
async function sidecarNamespaces(metaDir: string): Promise<string[]> {
  const entries = await fs.readdir(metaDir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isDirectory() && NAMESPACE_PATTERN.test(entry.name))
    .map((entry) => entry.name)
    .sort((a, b) => (byteLess(a, b) ? -1 : byteLess(b, a) ? 1 : 0));
}

/** The sidecar names (key hashes) of every file of `namespace` now on the volume. */
async function liveSidecarNames(store: ArtifactStore, namespace: string, context: JobContext): Promise<HashPrefixSet> {
  const live = new HashPrefixSet();
  for await (const key of everyFileKey(store.layout.namespaceDir(namespace))) {
    await context.step();
    live.add(path.basename(store.layout.metaPath(namespace, key), ".json"));
  }
  live.seal();
  return live;
}

interface JudgedRunRecord {
  readonly runId: string;
  readonly namespace: string;
  readonly pipeline: string;
  readonly stat: Stats;
}

/** The run record at `relative` under the run index, if it is one that names itself consistently. */
async function runRecordAt(relative: string, file: string): Promise<JudgedRunRecord | undefined> {
  const name = RUN_RECORD_NAME.exec(relative);
  if (name === null) return undefined;
  const [, shard, digest, namespaceFile] = name;
  try {
    const stat = await fs.lstat(file);
    const parsed = JSON.parse(await fs.readFile(file, "utf8")) as { runId?: unknown; namespace?: unknown; pipeline?: unknown };
    const { runId, namespace, pipeline } = parsed;
    if (typeof runId !== "string" || typeof namespace !== "string" || typeof pipeline !== "string" || !stat.isFile()) return undefined;
    if (createHash("sha256").update(runId).digest("hex") !== digest || digest.slice(0, 2) !== shard) return undefined;
    if (namespaceFile !== undefined && namespaceFile !== namespace) return undefined;
    if (!NAMESPACE_PATTERN.test(namespace)) return undefined;
    parseSegment(runId, "run_id");
    parseSegment(pipeline, "pipeline");
    return { runId, namespace, pipeline, stat };
  } catch {
    // Unreadable, torn or naming what no write could have recorded: left alone.
    return undefined;
  }
}

/** Whether a regular file exists at or below `target` (a directory of empty directories holds none). */
async function holdsAFile(target: string): Promise<boolean> {
  let stat: Stats;
  try {
    stat = await fs.lstat(target);
  } catch (error) {
    // Unreadable is not empty: the record stays.
    return (error as NodeJS.ErrnoException).code !== "ENOENT";
  }
  if (!stat.isDirectory()) return stat.isFile();
  const files = everyFileKey(target);
  try {
    return (await files.next()).done !== true;
  } catch {
    return true;
  } finally {
    await files.return(undefined);
  }
}

/**
 * A set of SHA-256 hex digests kept as their first 64 bits, 8 bytes each, sorted once filled. Two keys
 * sharing 64 bits would make an orphan look alive: a sidecar kept, never one removed.
 */
class HashPrefixSet {
  #values = new BigUint64Array(1024);
  #size = 0;

  add(hexDigest: string): void {
    if (this.#size === this.#values.length) {
      const grown = new BigUint64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#size] = prefixOf(hexDigest);
    this.#size += 1;
  }

  seal(): void {
    this.#values = this.#values.slice(0, this.#size).sort();
  }

  has(hexDigest: string): boolean {
    const wanted = prefixOf(hexDigest);
    let low = 0;
    let high = this.#size - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const value = this.#values[middle] ?? 0n;
      if (value === wanted) return true;
      if (value < wanted) low = middle + 1;
      else high = middle - 1;
    }
    return false;
  }
}

function prefixOf(hexDigest: string): bigint {
  return BigInt(`0x${hexDigest.slice(0, 16)}`);
}
