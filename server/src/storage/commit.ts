// Writes: a body staged into a temporary file (upload.ts) or a tar.gz extracted into a staging
// directory (archive.ts), then put at its key under the commit lock, all or nothing — limits and quota
// checked before a byte is read and again once the bytes are on the volume, the replaced version's
// usage given back, a replaced directory moved aside recoverably (replacement.ts).
import fs from "node:fs/promises";
import path from "node:path";
import { badRequest, conflict, HttpError, payloadTooLarge, preconditionFailed } from "../errors.js";
import { extractArchive, type ExtractResult } from "./archive.js";
import { HeldDirectory, removeTree, sizeOfFiles, walkFiles } from "./contained.js";
import { metaFor } from "./meta.js";
import type { ArtifactKey } from "./names.js";
import type { Aside } from "./replacement.js";
import type { PlaceOutcome, PlaceRequest } from "./upload-protocol.js";
import { workerError } from "./upload-writers.js";
import { FREE_SPACE_CHECK_INTERVAL, receiveUpload, syncDirectory, volumeFull, type ReceivedUpload, type StagedUpload, type UploadSource } from "./upload.js";
import { currentVersion, versionAt, versionOf, type CurrentVersion, type VersionPrecondition } from "./versions.js";
import { leafOf, placingFailed, quotaExceeded, type Volume } from "./volume.js";

export interface PutRequest {
  readonly namespace: string;
  readonly key: ArtifactKey;
  /** The request's body, or files on the volume to assemble (a multipart upload's parts). */
  readonly body: UploadSource;
  /** From Content-Length when the client sent one: lets limits refuse before a byte is read. */
  readonly declaredSize?: number | undefined;
  readonly expectedSha256?: string | undefined;
  /** Hex MD5 the body must have (S3's Content-MD5); on mismatch nothing is stored (400 BadDigest). */
  readonly expectedMd5?: string | undefined;
  /** Compute the MD5 while streaming: it becomes the S3 ETag. */
  readonly md5?: boolean;
  /** The S3 ETag to record instead of the MD5 (an assembled multipart upload's). */
  readonly s3ETag?: string | undefined;
  readonly createOnly?: boolean;
  /**
   * Checked under the commit lock against the version being replaced (undefined: none): throw to refuse
   * the write (If-Match and similar conditions, which must not race with another writer).
   */
  readonly precondition?: ((current: CurrentVersion | undefined) => void) | undefined;
}

export interface PutArchiveRequest extends Omit<PutRequest, "precondition" | "body"> {
  readonly body: AsyncIterable<Uint8Array>;
  /** As for put(), but what is replaced may be a directory artifact. */
  readonly precondition?: VersionPrecondition | undefined;
}

export interface PutResult {
  readonly created: boolean;
  readonly size: number;
  readonly sha256: string;
  /** The S3 ETag recorded (MD5 or multipart ETag), when the request produced one. */
  readonly s3ETag: string | undefined;
}

export interface PutArchiveResult extends PutResult {
  /** Regular files in the extracted directory; `size` is their total, `sha256` the archive's digest. */
  readonly files: number;
}

/** A staged file on its way to its key. */
interface FileCommit {
  readonly namespace: string;
  readonly key: ArtifactKey;
  readonly staged: Pick<StagedUpload, "tempFile" | "size" | "sha256" | "file" | "sidecar"> & { readonly s3ETag: string | undefined };
  readonly createOnly: boolean;
  readonly precondition: PutRequest["precondition"];
}

/** An extracted directory on its way to its key. */
interface DirectoryCommit {
  readonly namespace: string;
  readonly key: ArtifactKey;
  /** The staging directory the archive was extracted into. */
  readonly staging: string;
  readonly extracted: ExtractResult;
  readonly createOnly: boolean;
  readonly precondition: VersionPrecondition | undefined;
}

/**
 * Checks limits that can be known before reading the body, so a doomed upload is refused at once.
 * Resolves the bytes that could still be written before the reserve, as the volume reported them.
 */
async function precheck(volume: Volume, namespace: string, declaredSize: number | undefined, replacing?: ArtifactKey): Promise<number> {
  const { maxUploadBytes, namespaceQuotaBytes: quota } = volume.options;
  const size = declaredSize ?? 0;
  if (size > maxUploadBytes) throw payloadTooLarge(`the artifact is larger than the limit of ${maxUploadBytes} bytes`);
  // Without a Content-Length this still refuses at once when the reserve is already reached.
  const writable = await volume.writableBytes();
  if (writable - size < 0) throw volumeFull();
  if (quota <= 0) return writable;
  const used = (await volume.sharedUsage?.peek(namespace)) ?? (await volume.usage.get(namespace));
  // A file the write replaces gives its bytes back at the commit: looked up only when it decides.
  if (used + size > quota && used + size - (await replacedBytes(volume, namespace, replacing)) > quota) throw quotaExceeded(quota);
  return writable;
}

/**
 * Bodies up to this size skip the free-space check after staging when the volume had a check interval
 * of room above them before (FREE_SPACE_CHECK_INTERVAL, the tolerance a long upload's periodic checks
 * have): a thousand of them at once could pass the reserve by 64 MiB, one interval. Each skipped
 * check is a statfs, a thread-pool round trip, on every small write.
 */
const UNCHECKED_AFTER_STAGING_BYTES = 64 << 10;

/** Whether the staged bytes may have eaten into the reserve, so that the volume must be asked again. */
function mayHaveReachedReserve(writableBefore: number, stagedBytes: number): boolean {
  return stagedBytes > UNCHECKED_AFTER_STAGING_BYTES || writableBefore - stagedBytes < FREE_SPACE_CHECK_INTERVAL;
}

/** The size of the file at `key` (0 for none or a directory). */
async function replacedBytes(volume: Volume, namespace: string, key: ArtifactKey | undefined): Promise<number> {
  if (key === undefined) return 0;
  const entry = await volume.entryAt(namespace, key).catch(() => undefined);
  return entry?.isFile() ? entry.size : 0;
}

export async function put(volume: Volume, request: PutRequest): Promise<PutResult> {
  const { namespace, key } = request;
  const writableBefore = await precheck(volume, namespace, request.declaredSize, key);
  if (request.createOnly && (await volume.entryAt(namespace, key)) !== undefined) throw preconditionFailed("an artifact already exists at this key");
  // Early too, so a doomed upload is refused before its body is read; the check that counts is the
  // one under the commit lock.
  if (request.precondition !== undefined) {
    const current = await versionAt(volume, namespace, key);
    if (current === undefined || !("directory" in current)) request.precondition(current);
  }

  const sidecarPath = volume.layout.scratch.path("meta");
  const received = await receiveUpload(request.body, volume.uploadContext, {
    maxBytes: volume.options.maxUploadBytes,
    writableBytes: () => volume.writableBytes(),
    fsync: volume.options.fsync,
    md5: request.md5 === true || request.expectedMd5 !== undefined,
    // Written beside the body by the upload worker, so the commit only renames it into place.
    sidecar: { path: sidecarPath, s3ETag: request.s3ETag, md5AsETag: request.s3ETag === undefined && request.md5 === true },
  });
  if (isPlain(volume, request) && received.mayCommitWithFinish && !mayHaveReachedReserve(writableBefore, received.size)) {
    return finishAndCommit(volume, request, received, sidecarPath, writableBefore);
  }
  const staged = await received.finish();
  return commitStaged(volume, request, staged, writableBefore, (commit) => underKeyLock(volume, namespace, key, () => inParent(volume, commit, commitFileIn)));
}

/**
 * A plain write's finish and commit in one hand-off to the upload worker (placedInOneHandOff). Nothing
 * a finish could tell refuses it but its digests, which the worker checks, so the key's commit lock is
 * taken and its parent made before the body's finish rather than after.
 */
async function finishAndCommit(volume: Volume, request: PutRequest, received: ReceivedUpload, sidecarPath: string, writableBefore: number): Promise<PutResult> {
  const { namespace, key } = request;
  let finishing: Promise<StagedUpload> | undefined;
  try {
    return await underKeyLock(volume, namespace, key, () =>
      inParent(volume, request, async (volume, parent) => {
        const expected = { sha256: request.expectedSha256, md5: request.expectedMd5 };
        finishing = received.finish({ ...placeRequest(volume, parent, namespace, key, received.tempFile, sidecarPath), expected });
        const staged = await finishing;
        const { placement } = staged;
        return commitStaged(volume, request, staged, writableBefore, (commit) =>
          placement === undefined ? commitFileIn(volume, parent, commit) : placedInOneHandOff(volume, parent, commit, placement),
        );
      }),
    );
  } finally {
    // Refused before its finish (the parents could not be made): the body goes.
    if (finishing === undefined) await received.discard();
  }
}

/** A file already written whole on the volume, hashed, flushed when FSYNC asks it, to be put at a key. */
export interface FileOnVolume {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  /** Its identity once written (the sidecar names it). */
  readonly file: StagedUpload["file"];
  readonly s3ETag: string | undefined;
}

/**
 * Puts a file already on the volume at its key (a multipart upload's object assembled in place): the
 * commit of put() without its staging, under the key's commit lock, quota and precondition checked
 * there. Unlike put(), a refused or failed commit leaves the file where it was, for the caller.
 */
export async function commitFile(
  volume: Volume,
  request: Pick<PutRequest, "namespace" | "key" | "precondition">,
  source: FileOnVolume,
): Promise<PutResult> {
  const { namespace, key } = request;
  const staged = { tempFile: source.path, size: source.size, sha256: source.sha256, file: source.file, sidecar: undefined, s3ETag: source.s3ETag };
  const commit: FileCommit = { namespace, key, staged, createOnly: false, precondition: request.precondition };
  const created = await underKeyLock(volume, namespace, key, () => inParent(volume, commit, commitFileIn));
  return { created, size: source.size, sha256: source.sha256, s3ETag: source.s3ETag };
}

/** Runs `critical` under the key's commit lock. */
async function underKeyLock<T>(volume: Volume, namespace: string, key: ArtifactKey, critical: () => Promise<T>): Promise<T> {
  // Measured (with the namespace to itself) before commits of other keys may run beside this one.
  await volume.usage.get(namespace);
  return volume.commitLock.runForKey(namespace, key.key, () => volume.withSharedUsage(namespace, critical));
}

/**
 * What the upload worker needs to put a staged file and its sidecar at `key` (PlaceRequest). The
 * sidecar read of the key is forgotten first: the worker's rename replaces it behind the cache's back.
 */
function placeRequest(volume: Volume, parent: HeldDirectory, namespace: string, key: ArtifactKey, file: string, sidecar: string): PlaceRequest {
  const metaPath = volume.layout.metaPath(namespace, key.key);
  volume.sidecars.forget(metaPath);
  return { entry: parent.entry(leafOf(key)), file, sidecar: { from: sidecar, to: metaPath } };
}

/**
 * Whether nothing but the entry at the key can refuse the write: no precondition, not create-only, no
 * quota. Not with FSYNC either (placedInOneHandOff says why), so that its commit may go to the upload worker.
 */
function isPlain(volume: Volume, request: { readonly createOnly?: boolean | undefined; readonly precondition?: unknown }): boolean {
  return request.createOnly !== true && request.precondition === undefined && volume.options.namespaceQuotaBytes <= 0 && !volume.options.fsync;
}

/**
 * Refuses a staged body that is not what the client said or ate into the reserve, has `commitWith`
 * commit the rest, and removes the temporary names unless they were put in place.
 */
async function commitStaged(
  volume: Volume,
  request: PutRequest,
  staged: StagedUpload,
  writableBefore: number,
  commitWith: (commit: FileCommit) => Promise<boolean>,
): Promise<PutResult> {
  let committed = false;
  try {
    if (request.expectedSha256 !== undefined && request.expectedSha256 !== staged.sha256) {
      throw new HttpError(400, "ChecksumMismatch", `checksum mismatch: the body's SHA-256 is ${staged.sha256}, the request said ${request.expectedSha256}`);
    }
    if (request.expectedMd5 !== undefined && request.expectedMd5 !== staged.md5) {
      throw new HttpError(400, "BadDigest", "the Content-MD5 does not match the body received");
    }
    // The staged bytes already occupy the volume: the write is refused if they ate into the reserve.
    if (mayHaveReachedReserve(writableBefore, staged.size) && (await volume.writableBytes()) < 0) throw volumeFull();
    const s3ETag = request.s3ETag ?? (request.md5 === true ? staged.md5 : undefined);
    const commit: FileCommit = { namespace: request.namespace, key: request.key, staged: { ...staged, s3ETag }, createOnly: request.createOnly === true, precondition: request.precondition };
    const created = await commitWith(commit);
    committed = true;
    return { created, size: staged.size, sha256: staged.sha256, s3ETag };
  } finally {
    // Renamed into place, the temporary names are gone: removing them would be round trips for nothing.
    // Otherwise (refused, failed, or linked into place by a create-only write) this removes them.
    if (!committed || request.createOnly === true) await fs.rm(staged.tempFile, { force: true });
    if (!committed && staged.sidecar !== undefined) await fs.rm(staged.sidecar, { force: true });
  }
}

/** Runs `step` in the commit's key's parent directory, made if needed and held meanwhile. */
async function inParent<C extends { namespace: string; key: ArtifactKey }, T>(
  volume: Volume,
  commit: C,
  step: (volume: Volume, parent: HeldDirectory, commit: C) => Promise<T>,
): Promise<T> {
  const parent = await volume.makeParents(commit.namespace, commit.key);
  try {
    return await step(volume, parent, commit);
  } finally {
    await parent.close();
  }
}

// No advice to delete: removing a whole directory artifact to make room for a file is rarely what the
// writer meant, and it is not ours to suggest.
const directoryAtKey = () => conflict("a directory artifact exists at this key; a file cannot replace it (PUT ?archive=tar.gz replaces a directory)");
const notAFileAtKey = () => conflict("something other than an artifact exists at this key");

async function commitFileIn(volume: Volume, parent: HeldDirectory, commit: FileCommit): Promise<boolean> {
  const { namespace, key, staged, createOnly, precondition } = commit;
  if (isPlain(volume, commit) && staged.sidecar !== undefined) {
    const placing = volume.options.runtime.uploadWriters.placeIfIdle(placeRequest(volume, parent, namespace, key, staged.tempFile, staged.sidecar));
    if (placing !== undefined) return placedInOneHandOff(volume, parent, commit, placing);
  }
  const name = leafOf(key);
  const previous = await parent.lstat(name);
  if (previous?.isDirectory()) throw directoryAtKey();
  if (previous !== undefined && !previous.isFile()) throw notAFileAtKey();
  if (createOnly && previous !== undefined) throw preconditionFailed("an artifact already exists at this key");
  if (precondition !== undefined) precondition(previous === undefined ? undefined : await currentVersion(volume, namespace, key, parent));
  const previousSize = previous?.size ?? 0;

  // Commits of other keys run beside this one: the quota is checked and the bytes counted in one
  // step, and given back unless the file is put in place.
  const delta = staged.size - previousSize;
  const quota = volume.options.namespaceQuotaBytes;
  if (!volume.usage.tryReserve(namespace, delta, quota)) throw quotaExceeded(quota);
  let placed = false;
  try {
    // The staged file's identity as the upload worker took it before closing it; rename and link keep it.
    const metaPath = volume.layout.metaPath(namespace, key.key);
    if (staged.sidecar !== undefined) await volume.sidecars.place(metaPath, staged.sidecar);
    else await volume.sidecars.write(metaPath, metaFor(staged.sha256, staged.file, staged.s3ETag));
    await volume.placeAtKey(namespace, key, parent, (target) =>
      // link(2) fails with EEXIST atomically, even against another replica on a shared volume.
      createOnly ? fs.link(staged.tempFile, target) : fs.rename(staged.tempFile, target),
    );
    placed = true;
  } catch (error) {
    throw placementFailure(error);
  } finally {
    if (!placed) volume.usage.add(namespace, -delta);
  }
  return previous === undefined;
}

/** What a failed rename or link of a file into its key tells the client. */
function placementFailure(error: unknown): unknown {
  if ((error as NodeJS.ErrnoException).code === "EEXIST") return preconditionFailed("an artifact already exists at this key");
  if ((error as NodeJS.ErrnoException).code === "EISDIR") return conflict("a directory artifact exists at this key");
  return placingFailed(error);
}

/**
 * The commit of a plain write (no precondition, not create-only, no quota) whose sidecar the upload
 * worker wrote: nothing but the entry at the key can refuse it, so an idle upload worker looks the entry
 * up and renames the sidecar and then the file into place in one hand-off (upload-worker.ts), where the
 * steps one by one are three round trips through the thread pool. Under the key's commit lock, as any
 * commit. Not with FSYNC: there a rename can wait on the journal behind other commits' flushes, and in
 * the worker that wait would hold up every upload's writes (32 durable PUTs at once were 12 % slower).
 */
async function placedInOneHandOff(volume: Volume, parent: HeldDirectory, commit: FileCommit, placing: PlaceOutcome | Promise<PlaceOutcome>): Promise<boolean> {
  const { namespace, key, staged } = commit;
  let outcome: PlaceOutcome;
  try {
    outcome = await placing;
  } catch (error) {
    // The worker ended before it answered (it is started again for the next upload).
    throw placingFailed(error);
  }
  if (!outcome.placed) {
    if ("refused" in outcome) throw outcome.refused === "directory" ? directoryAtKey() : notAFileAtKey();
    if (outcome.failedAt !== "file" || outcome.code !== "ENOENT") throw placementFailure(workerError(outcome.code, outcome.message));
    // The sidecar is in place, the file is not: a peer's delete may have removed the parent meanwhile
    // (and with it anything at the key). The usual way makes the parents again, a bounded number of
    // times, and renames there.
    await volume.placeAtKey(namespace, key, parent, (target) => fs.rename(staged.tempFile, target)).catch((failure: unknown) => {
      throw placementFailure(failure);
    });
  }
  const previousSize = outcome.placed ? outcome.previousSize : undefined;
  volume.usage.add(namespace, staged.size - (previousSize ?? 0));
  return previousSize === undefined;
}

/**
 * Stores a tar.gz body as a directory at `key`, all or nothing: it is extracted into a staging directory
 * on the volume, then swapped in under the namespace's commit lock (the previous file or directory is
 * moved aside first — rename cannot replace a non-empty directory — and removed afterwards).
 */
export async function putArchive(volume: Volume, request: PutArchiveRequest): Promise<PutArchiveResult> {
  const { namespace, key } = request;
  const { options } = volume;
  await precheck(volume, namespace, request.declaredSize);
  if (request.createOnly && (await volume.entryAt(namespace, key)) !== undefined) throw preconditionFailed("an artifact already exists at this key");
  request.precondition?.(await versionAt(volume, namespace, key));
  const staging = volume.layout.scratch.path("extract");
  await fs.mkdir(staging);
  try {
    const extracted = await extractArchive(request.body, staging, {
      maxArchiveBytes: options.maxUploadBytes,
      maxExpandedBytes: options.maxArchiveExpandedBytes,
      writableBytes: () => volume.writableBytes(),
      fsync: options.fsync,
      keyPrefix: key.key,
    });
    if (request.expectedSha256 !== undefined && request.expectedSha256 !== extracted.archiveSha256) {
      throw badRequest(`checksum mismatch: the body's SHA-256 is ${extracted.archiveSha256}, X-Checksum-SHA256 said ${request.expectedSha256}`);
    }
    if ((await volume.writableBytes()) < 0) throw volumeFull();
    if (options.fsync) await syncTree(staging);
    const commit: DirectoryCommit = { namespace, key, staging, extracted, createOnly: request.createOnly === true, precondition: request.precondition };
    const done = await volume.commitLock.run(namespace, () => volume.withSharedUsage(namespace, () => inParent(volume, commit, commitDirectoryIn)));
    if (done.trash !== undefined) await discardReplaced(volume, namespace, key.key, done.trash, extracted);
    return {
      created: done.created,
      size: extracted.expandedBytes,
      sha256: extracted.archiveSha256,
      s3ETag: undefined,
      files: extracted.files.length,
    };
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}

async function commitDirectoryIn(volume: Volume, parent: HeldDirectory, commit: DirectoryCommit): Promise<{ created: boolean; trash: string | undefined }> {
  const { namespace, key, staging, extracted, createOnly, precondition } = commit;
  const name = leafOf(key);
  const previous = await parent.lstat(name);
  if (previous !== undefined && !previous.isFile() && !previous.isDirectory()) throw conflict("something other than an artifact exists at this key");
  if (createOnly && previous !== undefined) throw preconditionFailed("an artifact already exists at this key");
  if (precondition !== undefined) precondition(previous === undefined ? undefined : await versionOf(volume, namespace, key, parent, previous));
  let previousSize = previous?.isFile() ? previous.size : 0;
  if (previous?.isDirectory()) previousSize += await sizeOfFiles(await parent.child(name));
  const quota = volume.options.namespaceQuotaBytes;
  const used = await volume.usage.getLocked(namespace);
  if (quota > 0 && used - previousSize + extracted.expandedBytes > quota) throw quotaExceeded(quota);
  for (const file of extracted.files) {
    const stat = await fs.stat(path.join(staging, file.relative), { bigint: true });
    await volume.sidecars.write(volume.layout.metaPath(namespace, `${key.key}/${file.relative}`), metaFor(file.sha256, stat));
  }
  // rename(2) cannot replace a non-empty directory (or a file by a directory): the old version is
  // moved aside first, recoverably, so a crash before the new one is in place puts it back.
  const aside = previous === undefined ? undefined : await volume.replacements.moveAside(parent, name, { namespace, segments: key.segments }, staging);
  try {
    await volume.placeAtKey(namespace, key, parent, (target) => fs.rename(staging, target));
  } catch (error) {
    if (aside !== undefined) await putBack(volume, aside, namespace, key);
    const code = (error as NodeJS.ErrnoException).code;
    // A peer's write landed at the key between our two renames: it stays, whole; this one did not land.
    if (code === "ENOTEMPTY" || code === "EEXIST" || code === "ENOTDIR" || code === "EISDIR") {
      throw conflict("another write to this key landed at the same moment; this one was not stored, try again");
    }
    throw placingFailed(error);
  }
  if (aside !== undefined) await volume.replacements.landed(aside);
  volume.usage.add(namespace, extracted.expandedBytes - (aside === undefined ? 0 : previousSize));
  return { created: aside === undefined, trash: aside?.path };
}

/** A replacement whose new version did not land: the old version goes back, or is removed if a peer's write took its place. */
async function putBack(volume: Volume, aside: Aside, namespace: string, key: ArtifactKey): Promise<void> {
  const parent = await volume.makeParents(namespace, key).catch(() => undefined);
  try {
    if (!(await volume.replacements.putBack(aside, parent, leafOf(key)))) await removeTree(aside.path);
  } finally {
    await parent?.close();
  }
}

/** Removes what an archive replaced, and the sidecars of its files that the new directory does not have. */
async function discardReplaced(volume: Volume, namespace: string, key: string, trash: string, extracted: ExtractResult): Promise<void> {
  const kept = new Set(extracted.files.map((file) => file.relative));
  const replaced = await HeldDirectory.open(trash);
  if (replaced === undefined) {
    await volume.sidecars.remove(volume.layout.metaPath(namespace, key));
  } else {
    try {
      for await (const file of walkFiles(replaced)) {
        if (!kept.has(file.relative)) await volume.sidecars.remove(volume.layout.metaPath(namespace, `${key}/${file.relative}`));
      }
    } finally {
      await replaced.close();
    }
  }
  await removeTree(trash);
}

/** fsync every directory below `root` (and itself) so extracted entries survive power loss. */
async function syncTree(root: string): Promise<void> {
  await syncDirectory(root);
  for (const entry of await fs.readdir(root, { withFileTypes: true })) {
    if (entry.isDirectory()) await syncTree(path.join(root, entry.name));
  }
}
