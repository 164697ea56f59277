// ArtifactStore: the volume as the APIs see it, one object over one module per concern — writes
// (commit.ts), reads returning bodies (read.ts), deletes (remove.ts), listings (list.ts), digests and
// versions (versions.ts), the sweep of crash leftovers (leftovers.ts) — sharing the held root, layout,
// commit lock and usage (volume.ts). Containment is contained.ts; sidecars meta.ts; uploads upload.ts.
import { commitFile, putArchive, put, type FileOnVolume, type PutArchiveRequest, type PutArchiveResult, type PutRequest, type PutResult } from "./commit.js";
import type { VolumePath } from "./contained.js";
import type { VolumeLayout } from "./layout.js";
import { childDirectories, list, namespaces, type ListRequest, type ListResult } from "./list.js";
import type { Sidecars } from "./meta.js";
import type { ArtifactKey } from "./names.js";
import { Reads, type DirectoryRead, type FileRead } from "./read.js";
import { remove, type DeleteCondition, type DeleteOptions } from "./remove.js";
import { sweepTemporaryFiles } from "./leftovers.js";
import type { UploadContext } from "./upload.js";
import type { NamespaceUsage } from "./usage.js";
import { checkVolume, type VolumeHealth } from "./volume-health.js";
import { Volume, type StoreOptions } from "./volume.js";

export type { ArtifactBody } from "./body.js";
export type { FileOnVolume, PutArchiveRequest, PutArchiveResult, PutRequest, PutResult } from "./commit.js";
export { compareKeys, type ListItem, type ListRequest, type ListResult } from "./list.js";
export type { ArtifactInfo, DirectoryRead, FileRead } from "./read.js";
export type { CurrentVersion, DirectoryVersion, VersionPrecondition } from "./versions.js";
export type { StoreOptions } from "./volume.js";

export class ArtifactStore {
  readonly #volume: Volume;
  readonly #reads: Reads;

  constructor(readonly options: StoreOptions) {
    this.#volume = new Volume(options);
    this.#reads = new Reads(this.#volume);
  }

  get layout(): VolumeLayout {
    return this.#volume.layout;
  }

  get usage(): NamespaceUsage {
    return this.#volume.usage;
  }

  /** Digest sidecars of the artifacts (meta.ts). */
  get sidecars(): Sidecars {
    return this.#volume.sidecars;
  }

  /** What staging an upload into this store's temporary directory uses (upload.ts). */
  get uploadContext(): UploadContext {
    return this.#volume.uploadContext;
  }

  /** Creates the internal directories and sweeps crash leftovers. Call once before serving. */
  async init(): Promise<void> {
    await this.#volume.open();
    await this.sweepTemporaryFiles(this.#volume.options.runtime.sweepsEarlierStartsOnHost);
  }

  /** Closes what the store keeps open between requests; for shutdown, once the listeners have drained. */
  close(): Promise<void> {
    return this.#volume.close();
  }

  /** Removes temporary files left by a crash (leftovers.ts); `includeOwnHost` at start-up only. */
  sweepTemporaryFiles(includeOwnHost: boolean): Promise<number> {
    return sweepTemporaryFiles(this.#volume, includeOwnHost);
  }

  /** Whether the volume can take writes, and what is wrong with it if anything (readiness, error answers). */
  checkVolume(): Promise<VolumeHealth> {
    return checkVolume(this.layout, this.#volume.rootIdentity, () => this.writableBytes());
  }

  /** Bytes that may still be written before the free-space reserve is reached. */
  writableBytes(): Promise<number> {
    return this.#volume.writableBytes();
  }

  freeBytes(): Promise<number> {
    return this.#volume.freeBytes();
  }

  put(request: PutRequest): Promise<PutResult> {
    return put(this.#volume, request);
  }

  /** Puts a file already written on the volume at a key (commit.ts); a refused commit leaves it in place. */
  commitFile(request: Parameters<typeof commitFile>[1], source: FileOnVolume): Promise<PutResult> {
    return commitFile(this.#volume, request, source);
  }

  /** Stores a tar.gz body as a directory at its key, all or nothing. */
  putArchive(request: PutArchiveRequest): Promise<PutArchiveResult> {
    return putArchive(this.#volume, request);
  }

  /** The artifact at `key`: a file with its digests and a body to take, or a directory (404 when nothing is there). */
  read(namespace: string, key: ArtifactKey): Promise<FileRead | DirectoryRead> {
    return this.#reads.read(namespace, key);
  }

  /** A file or directory artifact, by its place, for streaming it as an archive (packArchive()). */
  resolveForArchive(namespace: string, key: ArtifactKey): Promise<{ directory: VolumePath } | { file: VolumePath }> {
    return this.#reads.resolveForArchive(namespace, key);
  }

  /** Removes the artifact at `key` if `condition` holds under the commit lock (remove.ts). */
  delete(namespace: string, key: ArtifactKey, recursive: boolean, condition?: DeleteCondition, options: DeleteOptions = {}): Promise<void> {
    return remove(this.#volume, namespace, key, recursive, condition, options);
  }

  list(request: ListRequest): Promise<ListResult> {
    return list(this.#volume, request);
  }

  /** Names of the real directories (never symlinks) directly below `relative` in a namespace; [] if none. */
  childDirectories(namespace: string, relative: string): Promise<string[]> {
    return childDirectories(this.#volume, namespace, relative);
  }

  /** Namespaces present on the volume (for usage metrics). */
  namespaces(): Promise<string[]> {
    return namespaces(this.#volume);
  }
}
