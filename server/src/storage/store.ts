// ArtifactStore: the volume as the API sees it — atomic writes, contained reads, deletes, listings,
// per-namespace usage and quotas, and the start-up sweep of temporary files left by a crash.
import type { BigIntStats, Stats } from "node:fs";
import fs from "node:fs/promises";
import { constants as fsConstants, openSync } from "node:fs";
import path from "node:path";
import { ConfigError } from "../config.js";
import { badRequest, conflict, HttpError, insufficientStorage, notFound, payloadTooLarge, preconditionFailed } from "../errors.js";
import type { Runtime } from "../runtime.js";
import { extractArchive, type ExtractResult } from "./archive.js";
import { HeldDirectory, isNotThere, removeTree, sizeOfFiles, VolumeRoot, walkFiles, type VolumePath } from "./contained.js";
import { VolumeLayout } from "./layout.js";
import { describes, digestOpenFile, metaFor, Sidecars } from "./meta.js";
import { NamespaceLock } from "./mutex.js";
import { SmallFileCache, type FileVersion, type SmallArtifact } from "./small-files.js";
import { parseKey, type ArtifactKey } from "./names.js";
import { Replacements, type Aside } from "./replacement.js";
import { SharedUsage } from "./shared-usage.js";
import { isNoSpace, stageUpload, syncDirectory, volumeFull, type UploadContext } from "./upload.js";
import { NamespaceUsage } from "./usage.js";
import { checkVolume, type RootIdentity, type VolumeHealth } from "./volume-health.js";

export interface StoreOptions {
  readonly root: string;
  readonly maxUploadBytes: number;
  readonly maxArchiveExpandedBytes: number;
  readonly minFreeBytes: number;
  /** 0: no quota. */
  readonly namespaceQuotaBytes: number;
  readonly fsync: boolean;
  /** Temporary files of other hosts older than this are crash leftovers (live uploads touch theirs). */
  readonly staleTempMs: number;
  /** The process-wide resources the store uses: start identity, upload workers, caches, clock. */
  readonly runtime: Runtime;
}

export interface PutRequest {
  readonly namespace: string;
  readonly key: ArtifactKey;
  readonly body: AsyncIterable<Uint8Array>;
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

/** What a conditional request compares: the digests of the content at a key. */
export interface CurrentVersion {
  readonly sha256: string;
  readonly s3ETag: string | undefined;
  readonly modified: Date;
}

/** A directory artifact, as a precondition sees it: it has no digest of its own, only a date. */
export interface DirectoryVersion {
  readonly directory: true;
  readonly modified: Date;
}

/** Checked under the commit lock against what is at the key (undefined: nothing); throws to refuse. */
export type VersionPrecondition = (current: CurrentVersion | DirectoryVersion | undefined) => void;

export interface PutArchiveRequest extends Omit<PutRequest, "precondition"> {
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

export interface OpenArtifact {
  readonly handle: fs.FileHandle;
  readonly size: number;
  readonly sha256: string;
  readonly s3ETag: string | undefined;
  readonly modified: Date;
  /** The file version opened: what a small-file cache entry of its bytes is valid for. */
  readonly version: FileVersion;
}

/** Artifacts up to this size are kept in memory after a first read (small-files.ts). */
const SMALL_FILE_BYTES = 64 << 10;
/** All kept small artifacts together: a bounded share of the process's memory. */
const SMALL_FILES_TOTAL_BYTES = 8 << 20;

export interface ListItem {
  readonly key: string;
  readonly size: number;
  readonly sha256: string | null;
  readonly modified: string;
  readonly type: "file";
  /** S3's ETag, for content written through S3 (absent from JSON otherwise). */
  readonly s3ETag?: string | undefined;
}

export interface ListRequest {
  readonly namespace: string;
  readonly prefix: string;
  readonly delimiter: "/" | undefined;
  readonly limit: number;
  /** List strictly after this key or prefix. */
  readonly after: string | undefined;
}

export interface ListResult {
  readonly items: ListItem[];
  readonly prefixes: string[];
  /** The last key or prefix returned, when more may follow. */
  readonly lastReturned: string | undefined;
}

type Entry = { readonly name: string; readonly isDirectory: boolean };

export class ArtifactStore {
  readonly layout: VolumeLayout;
  readonly usage: NamespaceUsage;
  readonly #commitLock = new NamespaceLock();
  readonly #smallFiles = new SmallFileCache(SMALL_FILE_BYTES, SMALL_FILES_TOTAL_BYTES);
  readonly #replacements: Replacements;
  /** Digest sidecars of the artifacts (meta.ts). */
  readonly sidecars: Sidecars;
  /** With a quota: usage kept on the volume, under a lock every server on it honours (shared-usage.ts). */
  readonly #sharedUsage: SharedUsage | undefined;
  #rootIdentity: RootIdentity = -1;
  /** The root held open: every artifact path is resolved from it (contained.ts). */
  #volume: VolumeRoot | undefined;

  constructor(readonly options: StoreOptions) {
    this.layout = new VolumeLayout(options.root, options.runtime.tempNames);
    this.sidecars = new Sidecars(this.layout.scratch, options.runtime.sidecarCache);
    this.#replacements = new Replacements(this.layout.scratch, options.fsync);
    this.usage = new NamespaceUsage((namespace) => this.#measureNamespace(namespace), this.#commitLock);
    this.#sharedUsage =
      options.namespaceQuotaBytes > 0
        ? new SharedUsage(this.layout.internalDir, this.layout.scratch, options.runtime.tempNames.ownPrefix, this.usage, (namespace) => this.#measureNamespace(namespace), options.runtime.logger)
        : undefined;
  }

  /** Creates the internal directories and sweeps crash leftovers. Call once before serving. */
  async init(): Promise<void> {
    this.options.runtime.uploadWriters.checkWorkerScript();
    await writableDirectory(this.options.root, this.options.root);
    // A plain descriptor, never closed: a FileHandle would be closed (with a warning) when collected.
    this.#rootIdentity = openSync(this.options.root, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    this.#volume = await VolumeRoot.hold(this.#rootIdentity, (segments) =>
      // Someone changed the volume directly (a symlink, or a directory moved while it was opened).
      this.options.runtime.logger.warn("refused a path that passes through a symlink or was moved while it was opened", { namespace: segments[0] }),
    );
    for (const directory of [this.layout.internalDir, this.layout.tmpDir, this.layout.metaDir, this.layout.runsDir]) {
      await writableDirectory(directory, this.options.root);
    }
    await this.#sharedUsage?.init();
    await this.sweepTemporaryFiles(true);
  }

  /**
   * Removes temporary files left by a crash: at start-up every file an earlier start on this host left
   * (that process is gone), and any file older than the stale threshold (other replicas' uploads keep
   * theirs fresh). Replacements the crash interrupted are settled first (replacement.ts): an old
   * version set aside goes back to its key if the new one never landed, instead of being swept.
   */
  async sweepTemporaryFiles(includeOwn: boolean): Promise<number> {
    const { tempNames } = this.options.runtime;
    const now = this.options.runtime.now();
    const isLeftover = async (name: string): Promise<boolean> => {
      // This process's own entries are live work (uploads, extractions, deletions in progress).
      if (tempNames.isOwn(name)) return false;
      if (includeOwn && tempNames.isThisHost(name)) return true;
      // A directory (an extraction) is only as old as its newest file: one large entry can take long.
      return now - (await newestModification(path.join(this.layout.tmpDir, name))) > this.options.staleTempMs;
    };
    const restored = await this.#replacements.recover(isLeftover, (place) =>
      this.#makeParents(place.namespace, parseKey(place.segments.join("/"))).catch(() => undefined),
    );
    if (restored > 0) this.options.runtime.logger.warn("put back artifacts whose replacement a crash interrupted", { restored });
    let removed = 0;
    for (const name of await fs.readdir(this.layout.tmpDir)) {
      const full = path.join(this.layout.tmpDir, name);
      if (await isLeftover(name)) {
        // A directory moved here (a deleted or replaced artifact) may still be changed through a descriptor
        // someone kept inside it: removed through held directories, never following a symlink.
        await removeTree(full);
        removed += 1;
      }
    }
    if (removed > 0) this.options.runtime.logger.info("swept temporary files left by an earlier crash", { removed });
    return removed;
  }

  /** What staging an upload into this store's temporary directory uses (upload.ts). */
  get uploadContext(): UploadContext {
    const { uploadWriters, youngGc } = this.options.runtime;
    return { scratch: this.layout.scratch, uploadWriters, youngGc };
  }

  /** Whether the volume can take writes, and what is wrong with it if anything (readiness, error answers). */
  checkVolume(): Promise<VolumeHealth> {
    return checkVolume(this.layout, this.#rootIdentity, () => this.writableBytes());
  }

  /** Bytes that may still be written before the free-space reserve is reached. */
  async writableBytes(): Promise<number> {
    const stats = await fs.statfs(this.options.root);
    return stats.bavail * stats.bsize - this.options.minFreeBytes;
  }

  async freeBytes(): Promise<number> {
    const stats = await fs.statfs(this.options.root);
    return stats.bavail * stats.bsize;
  }

  /** Checks limits that can be known before reading the body, so a doomed upload is refused at once. */
  async #precheck(namespace: string, declaredSize: number | undefined): Promise<void> {
    const size = declaredSize ?? 0;
    if (size > this.options.maxUploadBytes) {
      throw payloadTooLarge(`the artifact is larger than the limit of ${this.options.maxUploadBytes} bytes`);
    }
    // Without a Content-Length this still refuses at once when the reserve is already reached.
    if ((await this.writableBytes()) - size < 0) throw volumeFull();
    const quota = this.options.namespaceQuotaBytes;
    if (quota > 0 && ((await this.#sharedUsage?.peek(namespace)) ?? (await this.usage.get(namespace))) + size > quota) throw quotaExceeded(quota);
  }

  async put(request: PutRequest): Promise<PutResult> {
    const { namespace, key } = request;
    await this.#precheck(namespace, request.declaredSize);
    if (request.createOnly && (await this.#entryAt(namespace, key)) !== undefined) throw preconditionFailed("an artifact already exists at this key");
    // Early too, so a doomed upload is refused before its body is read; the check that counts is the
    // one under the commit lock.
    if (request.precondition !== undefined) {
      const current = await this.#versionAt(namespace, key);
      if (current === undefined || !("directory" in current)) request.precondition(current);
    }

    const staged = await stageUpload(request.body, this.uploadContext, {
      maxBytes: this.options.maxUploadBytes,
      writableBytes: () => this.writableBytes(),
      fsync: this.options.fsync,
      md5: request.md5 === true || request.expectedMd5 !== undefined,
    });
    try {
      if (request.expectedSha256 !== undefined && request.expectedSha256 !== staged.sha256) {
        throw new HttpError(400, "ChecksumMismatch", `checksum mismatch: the body's SHA-256 is ${staged.sha256}, the request said ${request.expectedSha256}`);
      }
      if (request.expectedMd5 !== undefined && request.expectedMd5 !== staged.md5) {
        throw new HttpError(400, "BadDigest", "the Content-MD5 does not match the body received");
      }
      // The staged bytes already occupy the volume: the write is refused if they ate into the reserve.
      if ((await this.writableBytes()) < 0) throw volumeFull();
      const s3ETag = request.s3ETag ?? (request.md5 === true ? staged.md5 : undefined);
      // Measured (with the namespace to itself) before commits of other keys may run beside this one.
      await this.usage.get(namespace);
      const created = await this.#commitLock.runForKey(namespace, key.key, () =>
        this.#withSharedUsage(namespace, () => this.#commitFile(namespace, key, { ...staged, s3ETag }, request.createOnly === true, request.precondition)),
      );
      return { created, size: staged.size, sha256: staged.sha256, s3ETag };
    } finally {
      // After a successful rename the temporary name no longer exists; otherwise this removes it.
      await fs.rm(staged.tempFile, { force: true });
    }
  }

  async #commitFile(
    namespace: string,
    key: ArtifactKey,
    staged: { tempFile: string; size: number; sha256: string; s3ETag: string | undefined },
    createOnly: boolean,
    precondition: PutRequest["precondition"],
  ): Promise<boolean> {
    const parent = await this.#makeParents(namespace, key);
    try {
      return await this.#commitFileIn(parent, namespace, key, staged, createOnly, precondition);
    } finally {
      await parent.close();
    }
  }

  async #commitFileIn(
    parent: HeldDirectory,
    namespace: string,
    key: ArtifactKey,
    staged: { tempFile: string; size: number; sha256: string; s3ETag: string | undefined },
    createOnly: boolean,
    precondition: PutRequest["precondition"],
  ): Promise<boolean> {
    const name = leafOf(key);
    const previous = await parent.lstat(name);
    // No advice to delete: removing a whole directory artifact to make room for a file is rarely what
    // the writer meant, and it is not ours to suggest.
    if (previous?.isDirectory()) throw conflict("a directory artifact exists at this key; a file cannot replace it (PUT ?archive=tar.gz replaces a directory)");
    if (previous !== undefined && !previous.isFile()) throw conflict("something other than an artifact exists at this key");
    if (createOnly && previous !== undefined) throw preconditionFailed("an artifact already exists at this key");
    if (precondition !== undefined) precondition(previous === undefined ? undefined : await this.#currentVersion(namespace, key, parent));
    const previousSize = previous?.size ?? 0;

    // Commits of other keys run beside this one: the quota is checked and the bytes counted in one
    // step, and given back unless the file is put in place.
    const delta = staged.size - previousSize;
    if (!this.usage.tryReserve(namespace, delta, this.options.namespaceQuotaBytes)) throw quotaExceeded(this.options.namespaceQuotaBytes);
    let placed = false;
    try {
      const stagedStat = await fs.stat(staged.tempFile, { bigint: true });
      await this.sidecars.write(this.layout.metaPath(namespace, key.key), metaFor(staged.sha256, stagedStat, staged.s3ETag));
      await this.#placeAtKey(namespace, key, parent, (target) =>
        // link(2) fails with EEXIST atomically, even against another replica on a shared volume.
        createOnly ? fs.link(staged.tempFile, target) : fs.rename(staged.tempFile, target),
      );
      placed = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") throw preconditionFailed("an artifact already exists at this key");
      if ((error as NodeJS.ErrnoException).code === "EISDIR") throw conflict("a directory artifact exists at this key");
      throw placingFailed(error);
    } finally {
      if (!placed) this.usage.add(namespace, -delta);
    }
    return previous === undefined;
  }

  /**
   * Stores a tar.gz body as a directory at `key`, all or nothing: it is extracted into a staging directory
   * on the volume, then swapped in under the namespace's commit lock (the previous file or directory is
   * moved aside first — rename cannot replace a non-empty directory — and removed afterwards).
   */
  async putArchive(request: PutArchiveRequest): Promise<PutArchiveResult> {
    const { namespace, key } = request;
    await this.#precheck(namespace, request.declaredSize);
    if (request.createOnly && (await this.#entryAt(namespace, key)) !== undefined) throw preconditionFailed("an artifact already exists at this key");
    request.precondition?.(await this.#versionAt(namespace, key));
    const staging = this.layout.scratch.path("extract");
    await fs.mkdir(staging);
    try {
      const extracted = await extractArchive(request.body, staging, {
        maxArchiveBytes: this.options.maxUploadBytes,
        maxExpandedBytes: this.options.maxArchiveExpandedBytes,
        writableBytes: () => this.writableBytes(),
        fsync: this.options.fsync,
        keyPrefix: key.key,
      });
      if (request.expectedSha256 !== undefined && request.expectedSha256 !== extracted.archiveSha256) {
        throw badRequest(`checksum mismatch: the body's SHA-256 is ${extracted.archiveSha256}, X-Checksum-SHA256 said ${request.expectedSha256}`);
      }
      if ((await this.writableBytes()) < 0) throw volumeFull();
      if (this.options.fsync) await syncTree(staging);
      const commit = await this.#commitLock.run(namespace, () =>
        this.#withSharedUsage(namespace, () => this.#commitDirectory(namespace, key, staging, extracted, request.createOnly === true, request.precondition)),
      );
      if (commit.trash !== undefined) await this.#discardReplaced(namespace, key.key, commit.trash, extracted);
      return {
        created: commit.created,
        size: extracted.expandedBytes,
        sha256: extracted.archiveSha256,
        s3ETag: undefined,
        files: extracted.files.length,
      };
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
  }

  async #commitDirectory(
    namespace: string,
    key: ArtifactKey,
    staging: string,
    extracted: ExtractResult,
    createOnly: boolean,
    precondition: VersionPrecondition | undefined,
  ): Promise<{ created: boolean; trash: string | undefined }> {
    const parent = await this.#makeParents(namespace, key);
    try {
      return await this.#commitDirectoryIn(parent, namespace, key, staging, extracted, createOnly, precondition);
    } finally {
      await parent.close();
    }
  }

  async #commitDirectoryIn(
    parent: HeldDirectory,
    namespace: string,
    key: ArtifactKey,
    staging: string,
    extracted: ExtractResult,
    createOnly: boolean,
    precondition: VersionPrecondition | undefined,
  ): Promise<{ created: boolean; trash: string | undefined }> {
    const name = leafOf(key);
    const previous = await parent.lstat(name);
    if (previous !== undefined && !previous.isFile() && !previous.isDirectory()) throw conflict("something other than an artifact exists at this key");
    if (createOnly && previous !== undefined) throw preconditionFailed("an artifact already exists at this key");
    if (precondition !== undefined) precondition(previous === undefined ? undefined : await this.#versionOf(namespace, key, parent, previous));
    let previousSize = previous?.isFile() ? previous.size : 0;
    if (previous?.isDirectory()) previousSize += await sizeOfFiles(await parent.child(name));
    const quota = this.options.namespaceQuotaBytes;
    const used = await this.usage.getLocked(namespace);
    if (quota > 0 && used - previousSize + extracted.expandedBytes > quota) throw quotaExceeded(quota);
    for (const file of extracted.files) {
      const stat = await fs.stat(path.join(staging, file.relative), { bigint: true });
      await this.sidecars.write(this.layout.metaPath(namespace, `${key.key}/${file.relative}`), metaFor(file.sha256, stat));
    }
    // rename(2) cannot replace a non-empty directory (or a file by a directory): the old version is
    // moved aside first, recoverably, so a crash before the new one is in place puts it back.
    const aside = previous === undefined ? undefined : await this.#replacements.moveAside(parent, name, { namespace, segments: key.segments }, staging);
    try {
      await this.#placeAtKey(namespace, key, parent, (target) => fs.rename(staging, target));
    } catch (error) {
      if (aside !== undefined) await this.#putBack(aside, namespace, key);
      const code = (error as NodeJS.ErrnoException).code;
      // A peer's write landed at the key between our two renames: it stays, whole; this one did not land.
      if (code === "ENOTEMPTY" || code === "EEXIST" || code === "ENOTDIR" || code === "EISDIR") {
        throw conflict("another write to this key landed at the same moment; this one was not stored, try again");
      }
      throw placingFailed(error);
    }
    if (aside !== undefined) await this.#replacements.landed(aside);
    this.usage.add(namespace, extracted.expandedBytes - (aside === undefined ? 0 : previousSize));
    return { created: aside === undefined, trash: aside?.path };
  }

  /** A replacement whose new version did not land: the old version goes back, or is removed if a peer's write took its place. */
  async #putBack(aside: Aside, namespace: string, key: ArtifactKey): Promise<void> {
    const parent = await this.#makeParents(namespace, key).catch(() => undefined);
    try {
      if (!(await this.#replacements.putBack(aside, parent, leafOf(key)))) await removeTree(aside.path);
    } finally {
      await parent?.close();
    }
  }

  /**
   * Puts `source` at the key with `place` (a rename or a link to the entry's path), then fsyncs the
   * parent. A peer process on the same volume may have removed the parent meanwhile (its delete prunes
   * the directories it leaves empty, ours among them while the new entry was not there yet): then the
   * parents are made again and the step retried, a bounded number of times.
   */
  async #placeAtKey(namespace: string, key: ArtifactKey, parent: HeldDirectory, place: (target: string) => Promise<void>): Promise<void> {
    let current = parent;
    try {
      for (let attempt = 1; ; attempt += 1) {
        try {
          await place(current.entry(leafOf(key)));
          break;
        } catch (error) {
          if (attempt >= PARENT_ATTEMPTS || !(await wasRemoved(error, current))) throw error;
        }
        if (current !== parent) await current.close();
        current = await this.#makeParents(namespace, key);
      }
      if (this.options.fsync) await current.sync();
    } finally {
      if (current !== parent) await current.close();
    }
  }

  /** Removes what an archive replaced, and the sidecars of its files that the new directory does not have. */
  async #discardReplaced(namespace: string, key: string, trash: string, extracted: ExtractResult): Promise<void> {
    const kept = new Set(extracted.files.map((file) => file.relative));
    const replaced = await HeldDirectory.open(trash);
    if (replaced === undefined) {
      await this.sidecars.remove(this.layout.metaPath(namespace, key));
    } else {
      try {
        for await (const file of walkFiles(replaced)) {
          if (!kept.has(file.relative)) await this.sidecars.remove(this.layout.metaPath(namespace, `${key}/${file.relative}`));
        }
      } finally {
        await replaced.close();
      }
    }
    await removeTree(trash);
  }

  /** The volume's root, held; init() sets it before anything is served. */
  get #root(): VolumeRoot {
    if (this.#volume === undefined) throw new Error("ArtifactStore.init() has not run");
    return this.#volume;
  }

  /** mkdir -p of the key's parent directories, through held directories; resolves the parent, held. */
  async #makeParents(namespace: string, key: ArtifactKey): Promise<HeldDirectory> {
    let parent: HeldDirectory | undefined;
    for (let attempt = 1; ; attempt += 1) {
      try {
        parent = await this.#root.makeDirectories([namespace, ...key.segments.slice(0, -1)]);
        break;
      } catch (error) {
        if (isNoSpace(error)) throw volumeFull();
        // A peer pruned a directory we had just made, before we made the next one in it: again.
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        if (attempt >= PARENT_ATTEMPTS) throw placingFailed(error);
      }
    }
    if (parent === undefined) throw conflict("a parent of this key is an artifact, not a directory");
    return parent;
  }

  /** The directory holding the key's entry, held; undefined when it is not there as a real directory. */
  #openParent(namespace: string, key: ArtifactKey): Promise<HeldDirectory | undefined> {
    return this.#root.openDirectory([namespace, ...key.segments.slice(0, -1)]);
  }

  /** What the key's entry is (a symlink reported as one), or undefined when nothing is there. */
  async #entryAt(namespace: string, key: ArtifactKey): Promise<Stats | undefined> {
    const parent = await this.#openParent(namespace, key);
    if (parent === undefined) return undefined;
    try {
      return await parent.lstat(leafOf(key));
    } finally {
      await parent.close();
    }
  }

  /**
   * Opens a file artifact for reading, contained (contained.ts: the descriptor must read back the
   * artifact's own path, so nothing on the way was a symlink). The digest is ensured from the sidecar,
   * or recomputed when the sidecar does not describe these bytes.
   */
  async open(namespace: string, key: ArtifactKey): Promise<OpenArtifact | { directory: true }> {
    const opened = await this.#root.openFile([namespace, ...key.segments]);
    if (opened === undefined) throw notFound("artifact not found");
    if ("directory" in opened) return opened;
    const { handle, stat } = opened;
    try {
      const { sha256, s3ETag } = await this.#digestFor(namespace, key.key, handle, stat);
      return { handle, size: Number(stat.size), sha256, s3ETag, modified: stat.mtime, version: stat };
    } catch (error) {
      await handle.close().catch(() => {});
      throw error;
    }
  }

  /** A small artifact's bytes kept from an earlier read, if the file is still exactly that version. */
  cachedSmall(namespace: string, key: ArtifactKey): Promise<SmallArtifact | undefined> {
    return this.#smallFiles.get(this.layout.artifactPath(namespace, key));
  }

  /** Whether reading `opened` whole and passing it to rememberSmall() is worth it. */
  isSmall(opened: OpenArtifact): boolean {
    return opened.size <= this.#smallFiles.maxFileBytes;
  }

  /** Keeps the whole body of a small artifact opened with open(), for cachedSmall(). */
  rememberSmall(namespace: string, key: ArtifactKey, opened: OpenArtifact, body: Buffer<ArrayBuffer>): void {
    const { size, sha256, s3ETag, modified, version } = opened;
    this.#smallFiles.remember(this.layout.artifactPath(namespace, key), version, { size, body, sha256, s3ETag, modified });
  }

  async #digestFor(
    namespace: string,
    key: string,
    handle: fs.FileHandle,
    stat: BigIntStats,
  ): Promise<{ sha256: string; s3ETag: string | undefined }> {
    const metaPath = this.layout.metaPath(namespace, key);
    const meta = await this.sidecars.read(metaPath);
    if (describes(meta, stat)) return { sha256: meta.sha256, s3ETag: meta.s3ETag };
    // Rare: a crash or a race left the sidecar describing other bytes. Recompute from what is on disk.
    const sha256 = await digestOpenFile(handle);
    const after = await handle.stat({ bigint: true });
    if (after.mtimeNs === stat.mtimeNs && after.size === stat.size) {
      await this.sidecars.write(metaPath, metaFor(sha256, stat)).catch(() => {});
    }
    return { sha256, s3ETag: undefined };
  }

  /** What is at the key as a precondition compares it, or undefined when nothing (or no artifact) is. */
  async #versionAt(namespace: string, key: ArtifactKey): Promise<CurrentVersion | DirectoryVersion | undefined> {
    const parent = await this.#openParent(namespace, key);
    if (parent === undefined) return undefined;
    try {
      const stat = await parent.lstat(leafOf(key));
      if (stat === undefined || (!stat.isFile() && !stat.isDirectory())) return undefined;
      return await this.#versionOf(namespace, key, parent, stat);
    } finally {
      await parent.close();
    }
  }

  async #versionOf(namespace: string, key: ArtifactKey, parent: HeldDirectory, stat: { isDirectory(): boolean; mtime: Date }): Promise<CurrentVersion | DirectoryVersion> {
    return stat.isDirectory() ? { directory: true, modified: stat.mtime } : this.#currentVersion(namespace, key, parent);
  }

  /** The digests of the key's file in its held parent, for a precondition checked under the commit lock. */
  async #currentVersion(namespace: string, key: ArtifactKey, parent: HeldDirectory): Promise<CurrentVersion> {
    const handle = await parent.openFile(leafOf(key)).catch((error: unknown) => {
      if (isNotThere(error)) throw conflict("the artifact changed while its version was being read; try again");
      throw error;
    });
    try {
      const stat = await handle.stat({ bigint: true });
      if (!stat.isFile()) throw conflict("the artifact changed while its version was being read; try again");
      return { ...(await this.#digestFor(namespace, key.key, handle, stat)), modified: stat.mtime };
    } finally {
      await handle.close();
    }
  }

  /**
   * A file or directory artifact, for streaming it as an archive: named, not held (a HEAD needs nothing
   * open), and opened contained by packArchive().
   */
  async resolveForArchive(namespace: string, key: ArtifactKey): Promise<{ directory: VolumePath } | { file: VolumePath }> {
    const stat = await this.#entryAt(namespace, key);
    if (stat === undefined || (!stat.isFile() && !stat.isDirectory())) throw notFound("artifact not found");
    const location: VolumePath = { volume: this.#root, segments: [namespace, ...key.segments] };
    return stat.isDirectory() ? { directory: location } : { file: location };
  }

  /**
   * Removes the artifact at `key`, if `condition` holds under the commit lock (412 otherwise): either the
   * file version the retention sweep judged (its inode and mtime: no digest needed), so a write that
   * replaced it meanwhile is never lost, or a client's precondition (If-Match and similar).
   * `deferDirectorySync`: the caller fsyncs the file's parent directory itself, once for many removals
   * (the retention sweep, where one fsync per removal was most of its cost).
   */
  async delete(
    namespace: string,
    key: ArtifactKey,
    recursive: boolean,
    condition?: { ino: number; mtimeMs: number } | VersionPrecondition,
    options: { deferDirectorySync?: boolean } = {},
  ): Promise<void> {
    const trash = await this.#commitLock.run(namespace, () =>
      this.#withSharedUsage(namespace, async () => {
        const parent = await this.#openParent(namespace, key);
        if (parent === undefined) throw notFound("artifact not found");
        try {
          return await this.#deleteIn(parent, namespace, key, recursive, condition, options);
        } finally {
          await parent.close();
        }
      }),
    );
    if (trash !== undefined) {
      let freed = 0;
      const removed = await HeldDirectory.open(trash);
      if (removed !== undefined) {
        try {
          for await (const file of walkFiles(removed)) {
            freed += file.size;
            await this.sidecars.remove(this.layout.metaPath(namespace, `${key.key}/${file.relative}`));
          }
        } finally {
          await removed.close();
        }
      }
      await removeTree(trash);
      const free = () => this.usage.add(namespace, -freed);
      // With a quota the volume's record of the namespace's usage gives the bytes back too.
      if (this.#sharedUsage === undefined) free();
      else await this.#commitLock.run(namespace, () => this.#withSharedUsage(namespace, () => Promise.resolve(free())));
    }
  }

  /** Runs a commit or delete of `namespace` under the lock its usage on the volume needs, when a quota is set. */
  #withSharedUsage<T>(namespace: string, change: () => Promise<T>): Promise<T> {
    return this.#sharedUsage === undefined ? change() : this.#sharedUsage.hold(namespace, change);
  }

  /** delete() under the commit lock, in the key's held parent directory; resolves what to remove afterwards. */
  async #deleteIn(
    parent: HeldDirectory,
    namespace: string,
    key: ArtifactKey,
    recursive: boolean,
    condition: { ino: number; mtimeMs: number } | VersionPrecondition | undefined,
    options: { deferDirectorySync?: boolean },
  ): Promise<string | undefined> {
    const name = leafOf(key);
    const stat = await parent.lstat(name);
    // Symlinks, sockets, devices: not artifacts, and never removed through the API.
    if (stat === undefined || (!stat.isFile() && !stat.isDirectory())) throw notFound("artifact not found");
    if (typeof condition === "function") {
      condition(await this.#versionOf(namespace, key, parent, stat));
    } else if (condition !== undefined && (!stat.isFile() || stat.ino !== condition.ino || stat.mtimeMs !== condition.mtimeMs)) {
      throw preconditionFailed("the artifact changed since it was judged");
    }
    if (stat.isDirectory()) {
      if (!recursive) throw conflict("this key is a directory; add ?recursive=true to delete it and everything below it");
      // Rename first so the whole directory disappears at once; the slow removal happens outside the lock.
      const moved = this.layout.scratch.path("trash");
      await fs.rename(parent.entry(name), moved).catch(changedMeanwhile);
      if (this.options.fsync) await parent.sync();
      await this.#pruneEmptyParents(namespace, key);
      return moved;
    }
    // unlink(2) of the entry in the held parent: if a symlink was swapped in since the lstat, it is the
    // symlink that goes, never what it points to.
    await fs.unlink(parent.entry(name)).catch(changedMeanwhile);
    await this.sidecars.remove(this.layout.metaPath(namespace, key.key));
    if (this.options.fsync && options.deferDirectorySync !== true) await parent.sync();
    this.usage.add(namespace, -stat.size);
    await this.#pruneEmptyParents(namespace, key);
    return undefined;
  }

  /**
   * Removes directories left empty by a delete of `key`, up to (not including) the namespace directory:
   * each rmdir(2) in the directory held above it, which was opened in the one above that.
   */
  async #pruneEmptyParents(namespace: string, key: ArtifactKey): Promise<void> {
    const parents = key.segments.slice(0, -1);
    if (parents.length === 0) return;
    const namespaceDir = await this.#root.openDirectory([namespace]);
    if (namespaceDir === undefined) return;
    const held = [namespaceDir];
    try {
      for (const segment of parents.slice(0, -1)) {
        const next = await held[held.length - 1]!.child(segment);
        if (next === undefined) return;
        held.push(next);
      }
      for (let depth = parents.length - 1; depth >= 0; depth -= 1) {
        try {
          await fs.rmdir(held[depth]!.entry(parents[depth]!));
        } catch {
          return; // not empty (or gone, or not a directory): stop
        }
      }
    } finally {
      for (const directory of held) await directory.close();
    }
  }

  /**
   * Lists keys in UTF-8 byte order, S3's ListObjectsV2 semantics: with the delimiter, every key with a '/'
   * after the prefix is rolled up into the common prefix that ends at that '/', listed once; a page
   * holds the first `limit` entries (keys and common prefixes) after `after`. Directories are walked with
   * their entries sorted as the keys they contain would sort ("name/" for a directory), so a depth-first
   * walk yields keys in order and a page can skip whole subtrees before the cursor.
   */
  async list(request: ListRequest): Promise<ListResult> {
    const { namespace, prefix } = request;
    const items: ListItem[] = [];
    const prefixes: string[] = [];
    // Start at the deepest directory the prefix fixes.
    const fixedDir = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/") + 1) : "";
    if (fixedDir !== "") {
      for (const segment of fixedDir.slice(0, -1).split("/")) {
        if (segment === "" || segment === "." || segment === ".." || segment.includes("\\") || segment.includes("\0")) {
          return { items, prefixes, lastReturned: undefined };
        }
      }
    }
    const startDir = await this.#root.openDirectory([namespace, ...fixedDir.split("/").filter(Boolean)]);
    if (startDir === undefined) return { items, prefixes, lastReturned: undefined };
    try {
      return await this.#listFrom(startDir, fixedDir, request);
    } finally {
      await startDir.close();
    }
  }

  async #listFrom(startDir: HeldDirectory, fixedDir: string, request: ListRequest): Promise<ListResult> {
    const items: ListItem[] = [];
    const prefixes: string[] = [];
    let lastReturned: string | undefined;
    let truncated = false;
    for await (const entry of listedEntries(startDir, fixedDir, request)) {
      // One entry past the page: only then is there a next page, so the last page never says "more".
      if (items.length + prefixes.length >= request.limit) {
        truncated = true;
        break;
      }
      if (entry.kind === "prefix") {
        prefixes.push(entry.prefix);
        lastReturned = entry.prefix;
        continue;
      }
      const meta = await this.sidecars.read(this.layout.metaPath(request.namespace, entry.key));
      items.push({
        key: entry.key,
        size: Number(entry.stat.size),
        sha256: describes(meta, entry.stat) ? meta.sha256 : null,
        modified: entry.stat.mtime.toISOString(),
        type: "file",
        s3ETag: describes(meta, entry.stat) ? meta.s3ETag : undefined,
      });
      lastReturned = entry.key;
    }
    return { items, prefixes, lastReturned: truncated ? lastReturned : undefined };
  }

  /** Sum of file sizes below a namespace; the slow path, run once per namespace per process. */
  async #measureNamespace(namespace: string): Promise<number> {
    return sizeOfFiles(await this.#root.openDirectory([namespace]));
  }

  /** Names of the real directories (never symlinks) directly below `relative` in a namespace; [] if none. */
  async childDirectories(namespace: string, relative: string): Promise<string[]> {
    const directory = await this.#root.openDirectory([namespace, ...parseKey(relative).segments]);
    if (directory === undefined) return [];
    try {
      return (await directory.entries()).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
    } finally {
      await directory.close();
    }
  }

  /** Namespaces present on the volume (for usage metrics). */
  async namespaces(): Promise<string[]> {
    const entries = await fs.readdir(this.options.root, { withFileTypes: true }).catch(() => []);
    return entries.filter((entry) => entry.isDirectory() && !entry.name.startsWith(".")).map((entry) => entry.name);
  }
}

/** How many times a commit makes its key's parents again after a peer removed them, before it answers 409. */
const PARENT_ATTEMPTS = 8;

/** Whether `error` (from a call naming an entry of `directory`) is ENOENT because `directory` itself was removed. */
async function wasRemoved(error: unknown, directory: HeldDirectory): Promise<boolean> {
  if ((error as NodeJS.ErrnoException).code !== "ENOENT") return false;
  const stat = await directory.handle.stat();
  return stat.nlink === 0;
}

/** What is left of a failed rename or link into place, as a client is told it. */
function placingFailed(error: unknown): unknown {
  if (isNoSpace(error)) return volumeFull();
  // The parents kept being removed under it (PARENT_ATTEMPTS times), or the staged entry is gone.
  if ((error as NodeJS.ErrnoException).code === "ENOENT") return conflict("the key's parent directory was removed by a concurrent delete; try again");
  return error;
}

function quotaExceeded(quota: number) {
  return insufficientStorage(`the namespace's artifact quota of ${quota} bytes would be exceeded`);
}

/** The latest modification time of a file, or of anything below a directory (0 if it is gone). */
async function newestModification(entry: string): Promise<number> {
  const stat = await fs.lstat(entry).catch(() => undefined);
  if (stat === undefined) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const child of await fs.readdir(entry).catch(() => [])) {
    newest = Math.max(newest, await newestModification(path.join(entry, child)));
  }
  return newest;
}

/** fsync every directory below `root` (and itself) so extracted entries survive power loss. */
async function syncTree(root: string): Promise<void> {
  await syncDirectory(root);
  for (const entry of await fs.readdir(root, { withFileTypes: true })) {
    if (entry.isDirectory()) await syncTree(path.join(root, entry.name));
  }
}

/** The last segment of a key: its entry's name in its parent directory. */
function leafOf(key: ArtifactKey): string {
  const name = key.segments.at(-1);
  if (name === undefined) throw badRequest("key must not be empty");
  return name;
}

/**
 * A rename or unlink that lost a race with a change made to the volume directly (the entry removed,
 * or swapped for a directory or a symlink since it was looked at): a clean answer, never a 500.
 */
function changedMeanwhile(error: unknown): never {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "ENOTDIR") throw notFound("artifact not found");
  if (code === "EISDIR" || code === "EPERM" || code === "ENOTEMPTY" || code === "EEXIST") throw conflict("the artifact changed while it was being removed; try again");
  throw error;
}

async function readSortedEntries(directory: HeldDirectory): Promise<Entry[]> {
  const entries = (await directory.entries())
    .filter((dirent) => dirent.isDirectory() || dirent.isFile())
    .map((dirent) => ({ name: dirent.name, isDirectory: dirent.isDirectory() }));
  const sortKey = (entry: Entry) => (entry.isDirectory ? `${entry.name}/` : entry.name);
  return entries.sort((a, b) => compareKeys(sortKey(a), sortKey(b)));
}

/**
 * Creates `directory` if needed and makes sure this process can write in it. An existing directory
 * passes mkdir whatever its owner, so without this check a volume the server cannot write would start
 * and fail every upload later. Refusals become a ConfigError that says what refused and how to fix it:
 * a container user's first command is often a host directory owned by root, or a read-only root.
 */
async function writableDirectory(directory: string, root: string): Promise<void> {
  try {
    await fs.mkdir(directory, { recursive: true });
    await fs.access(directory, fsConstants.W_OK | fsConstants.X_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EACCES" && code !== "EPERM" && code !== "EROFS") throw error;
    const uid = process.getuid?.() ?? "this user";
    const prefix = `ARTIFACTS_ROOT ${root} is not writable by uid ${uid}`;
    if (code === "EROFS") {
      throw new ConfigError(`${prefix} (a read-only file system): mount a writable volume there, such as a named volume`);
    }
    // The nearest directory that exists is the one whose owner or mode refused.
    const rootPath = path.resolve(root);
    let refusing = path.resolve(directory);
    let stat = await fs.stat(refusing).catch(() => undefined);
    while (stat === undefined && path.dirname(refusing) !== refusing) {
      refusing = path.dirname(refusing);
      stat = await fs.stat(refusing).catch(() => undefined);
    }
    const mode = stat === undefined ? "" : (stat.mode & 0o7777).toString(8).padStart(4, "0");
    const cause = stat === undefined ? code : `${refusing === rootPath ? "" : `${refusing} `}owned by ${stat.uid}:${stat.gid}, mode ${mode}`;
    const fix =
      refusing === rootPath ? `chown it to ${uid}` : refusing.startsWith(rootPath + path.sep) ? `chown it recursively to ${uid}` : `create it owned by ${uid}`;
    throw new ConfigError(`${prefix} (${cause}): ${fix}, use a named volume, or set fsGroup`);
  }
}

/**
 * Orders keys as their UTF-8 bytes (S3's listing order). JavaScript compares UTF-16 code units, which
 * agrees except that a surrogate (an astral character, above U+FFFF) sorts before U+E000–U+FFFF; the
 * rank below moves surrogates after them.
 */
export function compareKeys(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i += 1) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return utf8Rank(x) - utf8Rank(y);
  }
  return a.length - b.length;
}

function utf8Rank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit <= 0xdfff ? unit + 0x2000 : unit - 0x800;
}

type Listed = { readonly kind: "key"; readonly key: string; readonly stat: BigIntStats } | { readonly kind: "prefix"; readonly prefix: string };

/** Whether every key below `subtree` (a directory's key prefix, ending in '/') sorts at or before `after`. */
function subtreeBefore(subtree: string, after: string | undefined): boolean {
  return after !== undefined && compareKeys(subtree, after) < 0 && !after.startsWith(subtree);
}

/**
 * The entries of a listing in order, after `after`: keys, and with the delimiter one common prefix per
 * subtree below the prefix. A common prefix is listed when a key below it sorts after `after` and it is
 * not `after` itself (the previous page ended with it) — S3's rule, where a StartAfter inside a common
 * prefix still lists the prefix when keys follow in it.
 */
async function* listedEntries(
  directory: HeldDirectory,
  keyPrefix: string,
  request: Pick<ListRequest, "prefix" | "delimiter" | "after">,
): AsyncGenerator<Listed> {
  const { prefix, delimiter, after } = request;
  for (const entry of await readSortedEntries(directory)) {
    const key = keyPrefix + entry.name;
    if (!entry.isDirectory) {
      if (!key.startsWith(prefix) || (after !== undefined && compareKeys(key, after) <= 0)) continue;
      // lstat, not stat: a file swapped for a symlink since the readdir is not followed (its target's
      // size and date are not ours to tell).
      const stat = await directory.lstatBigInt(entry.name);
      if (stat?.isFile()) yield { kind: "key", key, stat };
      continue;
    }
    const subtree = `${key}/`;
    // Entirely outside the prefix (entries are sorted, but a prefix can end mid-name), or before the cursor.
    if (!subtree.startsWith(prefix) && !prefix.startsWith(subtree)) continue;
    if (subtreeBefore(subtree, after)) continue;
    const rollUp = delimiter === "/" && subtree.startsWith(prefix) && subtree !== prefix;
    if (rollUp && subtree === after) continue;
    const child = await directory.child(entry.name);
    if (child === undefined) continue; // no longer a directory (gone, or swapped for a symlink)
    try {
      if (rollUp) {
        // The walk starts in the prefix's own directory, so the first '/' after the prefix is the one that
        // ends this directory's name: the whole subtree is one common prefix. One that holds no key (left
        // empty by a failed write) is not listed, as S3 would not.
        if (await hasKeyAfter(child, subtree, after)) yield { kind: "prefix", prefix: subtree };
        continue;
      }
      yield* listedEntries(child, subtree, request);
    } finally {
      await child.close();
    }
  }
}

/** Whether some regular file below `directory` has a key after `after` (any file when it is undefined). */
async function hasKeyAfter(directory: HeldDirectory, keyPrefix: string, after: string | undefined): Promise<boolean> {
  const entries = await readSortedEntries(directory);
  // Files of this directory first: most have one, so this usually costs a single readdir.
  for (const entry of entries) {
    if (!entry.isDirectory && (after === undefined || compareKeys(keyPrefix + entry.name, after) > 0)) return true;
  }
  for (const entry of entries) {
    if (!entry.isDirectory || subtreeBefore(`${keyPrefix}${entry.name}/`, after)) continue;
    const child = await directory.child(entry.name);
    if (child === undefined) continue;
    try {
      if (await hasKeyAfter(child, `${keyPrefix}${entry.name}/`, after)) return true;
    } finally {
      await child.close();
    }
  }
  return false;
}
