// What every part of the store shares (store.ts is the facade, one module per concern beside this one):
// the volume's root held open, its layout, the commit lock, usage and quotas, and the steps every write
// and delete takes to reach a key's entry — its parents made or opened through held directories
// (contained.ts), the entry put in place there.
import type { Stats } from "node:fs";
import nodeFs, { constants as fsConstants, openSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { ConfigError } from "../config.js";
import { badRequest, conflict, insufficientStorage, notFound } from "../errors.js";
import type { Runtime } from "../runtime.js";
import { sizeOfFiles, VolumeRoot, type HeldDirectory } from "./contained.js";
import { GroupedDirectorySyncs } from "./directory-sync.js";
import { VolumeLayout } from "./layout.js";
import { Sidecars } from "./meta.js";
import { NamespaceLock } from "./mutex.js";
import type { ArtifactKey } from "./names.js";
import { Replacements } from "./replacement.js";
import { SharedUsage } from "./shared-usage.js";
import { isNoSpace, volumeFull, type UploadContext } from "./upload.js";
import { NamespaceUsage } from "./usage.js";
import type { RootIdentity } from "./volume-health.js";

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

/** How many times a commit makes its key's parents again after a peer removed them, before it answers 409. */
const PARENT_ATTEMPTS = 8;

export class Volume {
  readonly layout: VolumeLayout;
  readonly usage: NamespaceUsage;
  readonly commitLock = new NamespaceLock();
  readonly sidecars: Sidecars;
  readonly replacements: Replacements;
  /** With FSYNC: the directory fsyncs that commits into one directory at once share (directory-sync.ts). */
  readonly directorySyncs = new GroupedDirectorySyncs();
  /** With a quota: usage kept on the volume, under a lock every server on it honours (shared-usage.ts). */
  readonly sharedUsage: SharedUsage | undefined;
  #rootIdentity: RootIdentity = -1;
  /** The root's device when its file system is local: the small-file cache's lstat and the free-space statfs run on the event loop there. */
  #localDevice: bigint | undefined;
  /** The root held open: every artifact path is resolved from it (contained.ts). */
  #root: VolumeRoot | undefined;

  constructor(readonly options: StoreOptions) {
    const { runtime } = options;
    this.layout = new VolumeLayout(options.root, runtime.tempNames);
    this.sidecars = new Sidecars(this.layout.scratch, runtime.sidecarCache);
    this.replacements = new Replacements(this.layout.scratch, options.fsync);
    this.usage = new NamespaceUsage((namespace) => this.measureNamespace(namespace), this.commitLock);
    this.sharedUsage =
      options.namespaceQuotaBytes > 0
        ? new SharedUsage(this.layout.internalDir, this.layout.scratch, runtime.tempNames.ownPrefix, this.usage, (namespace) => this.measureNamespace(namespace), runtime.logger)
        : undefined;
  }

  /** Creates the internal directories and holds the root open. */
  async open(): Promise<void> {
    this.options.runtime.uploadWriters.checkWorkerScript();
    await writableDirectory(this.options.root, this.options.root);
    // A plain descriptor, never closed: a FileHandle would be closed (with a warning) when collected.
    this.#rootIdentity = openSync(this.options.root, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    this.#root = await VolumeRoot.hold(this.#rootIdentity, (segments) =>
      // Someone changed the volume directly (a symlink, or a directory moved while it was opened).
      this.options.runtime.logger.warn("refused a path that passes through a symlink or was moved while it was opened", { namespace: segments[0] }),
    );
    // Of the directory held open, not of the path again (through /proc/self/fd, as every file call here).
    const held = this.#root.path;
    const [rootStat, rootFileSystem] = await Promise.all([fs.stat(held, { bigint: true }), fs.statfs(held)]);
    this.#localDevice = localFileSystem(rootFileSystem.type) === undefined ? undefined : rootStat.dev;
    for (const directory of [this.layout.internalDir, this.layout.tmpDir, this.layout.metaDir, this.layout.runsDir]) {
      await writableDirectory(directory, this.options.root);
    }
    await this.sharedUsage?.init();
  }

  /** The root directory's descriptor, held since open(): readiness checks the root is still that directory. */
  get rootIdentity(): RootIdentity {
    return this.#rootIdentity;
  }

  /** Whether `dev` is the root's device and its file system is local: stat there never waits on a network. */
  isLocalDevice(dev: bigint): boolean {
    return dev === this.#localDevice;
  }

  /** Lets go of the directories held below the root, once nothing is served any more (shutdown). */
  async close(): Promise<void> {
    await this.#root?.close();
  }

  /** The volume's root, held; open() sets it before anything is served. */
  get root(): VolumeRoot {
    if (this.#root === undefined) throw new Error("ArtifactStore.init() has not run");
    return this.#root;
  }

  /** What staging an upload into this volume's temporary directory uses (upload.ts). */
  get uploadContext(): UploadContext {
    const { uploadWriters, youngGc } = this.options.runtime;
    return { scratch: this.layout.scratch, uploadWriters, youngGc };
  }

  /** Bytes that may still be written before the free-space reserve is reached. */
  async writableBytes(): Promise<number> {
    return (await this.freeBytes()) - this.options.minFreeBytes;
  }

  /**
   * Bytes available on the volume. Every write asks (small ones before their body, large ones also
   * during and after it): on a local file system statfs(2) reads the superblock's counters in memory and
   * runs on the event loop, cheaper than the thread pool's hand-off; anywhere else (NFS asks its server)
   * it goes to the pool.
   */
  async freeBytes(): Promise<number> {
    // Through the module object, as fs.statfs is: tests stand in for the volume's free space there.
    const stats = this.#localDevice === undefined ? await fs.statfs(this.options.root) : nodeFs.statfsSync(this.options.root);
    return stats.bavail * stats.bsize;
  }

  /** Sum of file sizes below a namespace; the slow path, run once per namespace per process. */
  async measureNamespace(namespace: string): Promise<number> {
    return sizeOfFiles(await this.root.openDirectory([namespace]));
  }

  /** Runs a commit or delete of `namespace` under the lock its usage on the volume needs, when a quota is set. */
  withSharedUsage<T>(namespace: string, change: () => Promise<T>): Promise<T> {
    return this.sharedUsage === undefined ? change() : this.sharedUsage.hold(namespace, change);
  }

  /** mkdir -p of the key's parent directories, through held directories; resolves the parent, held. */
  async makeParents(namespace: string, key: ArtifactKey): Promise<HeldDirectory> {
    let parent: HeldDirectory | undefined;
    for (let attempt = 1; ; attempt += 1) {
      try {
        parent = await this.root.makeDirectories([namespace, ...key.segments.slice(0, -1)]);
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
  openParent(namespace: string, key: ArtifactKey): Promise<HeldDirectory | undefined> {
    return this.root.openDirectory([namespace, ...key.segments.slice(0, -1)]);
  }

  /** What the key's entry is (a symlink reported as one), or undefined when nothing is there. */
  async entryAt(namespace: string, key: ArtifactKey): Promise<Stats | undefined> {
    const parent = await this.openParent(namespace, key);
    if (parent === undefined) return undefined;
    try {
      return await parent.lstat(leafOf(key));
    } finally {
      await parent.close();
    }
  }

  /**
   * Puts `source` at the key with `place` (a rename or a link to the entry's path), then fsyncs the
   * parent (one fsync shared with the commits that landed in it meanwhile). A peer process on the same volume may have removed the parent meanwhile (its delete prunes
   * the directories it leaves empty, ours among them while the new entry was not there yet): then the
   * parents are made again and the step retried, a bounded number of times.
   */
  async placeAtKey(namespace: string, key: ArtifactKey, parent: HeldDirectory, place: (target: string) => Promise<void>): Promise<void> {
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
        current = await this.makeParents(namespace, key);
      }
      if (this.options.fsync) await this.directorySyncs.sync(current.handle);
    } finally {
      if (current !== parent) await current.close();
    }
  }
}

/** Whether `error` (from a call naming an entry of `directory`) is ENOENT because `directory` itself was removed. */
async function wasRemoved(error: unknown, directory: HeldDirectory): Promise<boolean> {
  if ((error as NodeJS.ErrnoException).code !== "ENOENT") return false;
  const stat = await directory.handle.stat();
  return stat.nlink === 0;
}

/** What is left of a failed rename or link into place, as a client is told it. */
export function placingFailed(error: unknown): unknown {
  if (isNoSpace(error)) return volumeFull();
  // The parents kept being removed under it (PARENT_ATTEMPTS times), or the staged entry is gone.
  if ((error as NodeJS.ErrnoException).code === "ENOENT") return conflict("the key's parent directory was removed by a concurrent delete; try again");
  return error;
}

export function quotaExceeded(quota: number) {
  return insufficientStorage(`the namespace's artifact quota of ${quota} bytes would be exceeded`);
}

/** The last segment of a key: its entry's name in its parent directory. */
export function leafOf(key: ArtifactKey): string {
  const name = key.segments.at(-1);
  if (name === undefined) throw badRequest("key must not be empty");
  return name;
}

/**
 * A rename or unlink that lost a race with a change made to the volume directly (the entry removed,
 * or swapped for a directory or a symlink since it was looked at): a clean answer, never a 500.
 */
export function changedMeanwhile(error: unknown): never {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "ENOTDIR") throw notFound("artifact not found");
  if (code === "EISDIR" || code === "EPERM" || code === "ENOTEMPTY" || code === "EEXIST") throw conflict("the artifact changed while it was being removed; try again");
  throw error;
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
 * File systems, by statfs(2) f_type, whose lstat of a recently read inode never waits on anything but
 * this machine's memory: block-device and memory file systems, and overlayfs over them (a container's
 * own layers). Network, cluster and FUSE file systems are absent on purpose.
 */
const LOCAL_FILE_SYSTEMS: ReadonlyMap<number, string> = new Map([
  [0xef53, "ext4"],
  [0x58465342, "xfs"],
  [0x9123683e, "btrfs"],
  [0xf2f52010, "f2fs"],
  [0x2fc12fc1, "zfs"],
  [0x01021994, "tmpfs"],
  [0x858458f6, "ramfs"],
  [0x794c7630, "overlayfs"],
]);

/** The name of a local file system type (statfs f_type), or undefined for any other (NFS, CephFS, FUSE...). */
export function localFileSystem(type: number): string | undefined {
  return LOCAL_FILE_SYSTEMS.get(type);
}
