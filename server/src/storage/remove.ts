// Deletes: a file unlinked in its held parent, a directory renamed away at once and removed outside
// the commit lock, usage given back, and the directories a delete leaves empty pruned.
import fs from "node:fs/promises";
import { conflict, notFound, preconditionFailed } from "../errors.js";
import { HeldDirectory, removeTree, walkFiles } from "./contained.js";
import type { ArtifactKey } from "./names.js";
import { versionOf, type VersionPrecondition } from "./versions.js";
import { changedMeanwhile, leafOf, type Volume } from "./volume.js";

/** The file version the retention sweep judged (no digest needed), or a client's precondition. */
export type DeleteCondition = { ino: number; mtimeMs: number } | VersionPrecondition;

export interface DeleteOptions {
  /**
   * The caller fsyncs the file's parent directory itself, once for many removals (the retention sweep,
   * where one fsync per removal was most of its cost).
   */
  readonly deferDirectorySync?: boolean;
}

/**
 * Removes the artifact at `key`, if `condition` holds under the commit lock (412 otherwise): either the
 * file version the retention sweep judged (its inode and mtime), so a write that replaced it meanwhile
 * is never lost, or a client's precondition (If-Match and similar).
 */
export async function remove(
  volume: Volume,
  namespace: string,
  key: ArtifactKey,
  recursive: boolean,
  condition: DeleteCondition | undefined,
  options: DeleteOptions,
): Promise<void> {
  const trash = await volume.commitLock.run(namespace, () =>
    volume.withSharedUsage(namespace, async () => {
      const parent = await volume.openParent(namespace, key);
      if (parent === undefined) throw notFound("artifact not found");
      try {
        return await removeIn(volume, parent, namespace, key, recursive, condition, options);
      } finally {
        await parent.close();
      }
    }),
  );
  if (trash === undefined) return;
  let freed = 0;
  const removed = await HeldDirectory.open(trash);
  if (removed !== undefined) {
    try {
      for await (const file of walkFiles(removed)) {
        freed += file.size;
        await volume.sidecars.remove(volume.layout.metaPath(namespace, `${key.key}/${file.relative}`));
      }
    } finally {
      await removed.close();
    }
  }
  await removeTree(trash);
  const free = () => volume.usage.add(namespace, -freed);
  // With a quota the volume's record of the namespace's usage gives the bytes back too.
  if (volume.sharedUsage === undefined) free();
  else await volume.commitLock.run(namespace, () => volume.withSharedUsage(namespace, () => Promise.resolve(free())));
}

/** remove() under the commit lock, in the key's held parent directory; resolves what to remove afterwards. */
async function removeIn(
  volume: Volume,
  parent: HeldDirectory,
  namespace: string,
  key: ArtifactKey,
  recursive: boolean,
  condition: DeleteCondition | undefined,
  options: DeleteOptions,
): Promise<string | undefined> {
  const name = leafOf(key);
  const stat = await parent.lstat(name);
  // Symlinks, sockets, devices: not artifacts, and never removed through the API.
  if (stat === undefined || (!stat.isFile() && !stat.isDirectory())) throw notFound("artifact not found");
  if (typeof condition === "function") {
    condition(await versionOf(volume, namespace, key, parent, stat));
  } else if (condition !== undefined && (!stat.isFile() || stat.ino !== condition.ino || stat.mtimeMs !== condition.mtimeMs)) {
    throw preconditionFailed("the artifact changed since it was judged");
  }
  const { fsync } = volume.options;
  if (stat.isDirectory()) {
    if (!recursive) throw conflict("this key is a directory; add ?recursive=true to delete it and everything below it");
    // Rename first so the whole directory disappears at once; the slow removal happens outside the lock.
    const moved = volume.layout.scratch.path("trash");
    await fs.rename(parent.entry(name), moved).catch(changedMeanwhile);
    if (fsync) await parent.sync();
    await pruneEmptyParents(volume, namespace, key);
    return moved;
  }
  // unlink(2) of the entry in the held parent: if a symlink was swapped in since the lstat, it is the
  // symlink that goes, never what it points to.
  await fs.unlink(parent.entry(name)).catch(changedMeanwhile);
  await volume.sidecars.remove(volume.layout.metaPath(namespace, key.key));
  if (fsync && options.deferDirectorySync !== true) await parent.sync();
  volume.usage.add(namespace, -stat.size);
  await pruneEmptyParents(volume, namespace, key);
  return undefined;
}

/**
 * Removes directories left empty by a delete of `key`, up to (not including) the namespace directory:
 * each rmdir(2) in the directory held above it, which was opened in the one above that.
 */
async function pruneEmptyParents(volume: Volume, namespace: string, key: ArtifactKey): Promise<void> {
  const parents = key.segments.slice(0, -1);
  if (parents.length === 0) return;
  const namespaceDir = await volume.root.openDirectory([namespace]);
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
