// What is at a key as a digest describes it: the sidecar's digests when the sidecar describes the
// bytes on disk, recomputed otherwise; and the versions that conditional requests (If-Match and
// similar) and the retention sweep compare, read under the commit lock.
import type { BigIntStats } from "node:fs";
import type fs from "node:fs/promises";
import { conflict } from "../errors.js";
import { isNotThere, type HeldDirectory } from "./contained.js";
import { describes, digestOpenFile, metaFor } from "./meta.js";
import type { ArtifactKey } from "./names.js";
import { leafOf, type Volume } from "./volume.js";

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

/** The digests of an open file: from its sidecar, or recomputed when the sidecar does not describe these bytes. */
export async function digestFor(
  volume: Volume,
  namespace: string,
  key: string,
  handle: fs.FileHandle,
  stat: BigIntStats,
): Promise<{ sha256: string; s3ETag: string | undefined }> {
  const metaPath = volume.layout.metaPath(namespace, key);
  const meta = await volume.sidecars.read(metaPath);
  if (describes(meta, stat)) return { sha256: meta.sha256, s3ETag: meta.s3ETag };
  // Rare: a crash or a race left the sidecar describing other bytes. Recompute from what is on disk.
  const sha256 = await digestOpenFile(handle);
  const after = await handle.stat({ bigint: true });
  if (after.mtimeNs === stat.mtimeNs && after.size === stat.size) {
    await volume.sidecars.write(metaPath, metaFor(sha256, stat)).catch(() => {});
  }
  return { sha256, s3ETag: undefined };
}

/** What is at the key as a precondition compares it, or undefined when nothing (or no artifact) is. */
export async function versionAt(volume: Volume, namespace: string, key: ArtifactKey): Promise<CurrentVersion | DirectoryVersion | undefined> {
  const parent = await volume.openParent(namespace, key);
  if (parent === undefined) return undefined;
  try {
    const stat = await parent.lstat(leafOf(key));
    if (stat === undefined || (!stat.isFile() && !stat.isDirectory())) return undefined;
    return await versionOf(volume, namespace, key, parent, stat);
  } finally {
    await parent.close();
  }
}

export async function versionOf(
  volume: Volume,
  namespace: string,
  key: ArtifactKey,
  parent: HeldDirectory,
  stat: { isDirectory(): boolean; mtime: Date },
): Promise<CurrentVersion | DirectoryVersion> {
  return stat.isDirectory() ? { directory: true, modified: stat.mtime } : currentVersion(volume, namespace, key, parent);
}

/** The digests of the key's file in its held parent, for a precondition checked under the commit lock. */
export async function currentVersion(volume: Volume, namespace: string, key: ArtifactKey, parent: HeldDirectory): Promise<CurrentVersion> {
  const handle = await parent.openFile(leafOf(key)).catch((error: unknown) => {
    if (isNotThere(error)) throw conflict("the artifact changed while its version was being read; try again");
    throw error;
  });
  try {
    const stat = await handle.stat({ bigint: true });
    if (!stat.isFile()) throw conflict("the artifact changed while its version was being read; try again");
    return { ...(await digestFor(volume, namespace, key.key, handle, stat)), modified: stat.mtime };
  } finally {
    await handle.close();
  }
}
