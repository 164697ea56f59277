// The sweep of temporary files left by a crash: at start-up every file an earlier start on this host
// left, and at any time the stale ones of other starts (peers on a shared volume touch theirs while
// they are live). Which files are whose comes from their names (temp-names.ts).
import fs from "node:fs/promises";
import path from "node:path";
import { removeTree } from "./contained.js";
import { parseKey } from "./names.js";
import type { Volume } from "./volume.js";

/**
 * Removes temporary files left by a crash: with `includeOwnHost` every file an earlier start on this
 * host left (that process is gone), and any file older than the stale threshold by the runtime's clock.
 * Replacements the crash interrupted are settled first (replacement.ts): an old version set aside goes
 * back to its key if the new one never landed, instead of being swept. Resolves how many entries went.
 */
export async function sweepTemporaryFiles(volume: Volume, includeOwnHost: boolean): Promise<number> {
  const { layout, options } = volume;
  const { tempNames, logger } = options.runtime;
  const now = options.runtime.now();
  const isLeftover = async (name: string): Promise<boolean> => {
    // This start's own entries are live work (uploads, extractions, deletions in progress).
    if (tempNames.isOwn(name)) return false;
    if (includeOwnHost && tempNames.isThisHost(name)) return true;
    // A directory (an extraction) is only as old as its newest file: one large entry can take long.
    return now - (await newestModification(path.join(layout.tmpDir, name))) > options.staleTempMs;
  };
  const restored = await volume.replacements.recover(isLeftover, (place) =>
    volume.makeParents(place.namespace, parseKey(place.segments.join("/"))).catch(() => undefined),
  );
  if (restored > 0) logger.warn("put back artifacts whose replacement a crash interrupted", { restored });
  let removed = 0;
  for (const name of await fs.readdir(layout.tmpDir)) {
    if (await isLeftover(name)) {
      // A directory moved here (a deleted or replaced artifact) may still be changed through a descriptor
      // someone kept inside it: removed through held directories, never following a symlink.
      await removeTree(path.join(layout.tmpDir, name));
      removed += 1;
    }
  }
  if (removed > 0) logger.info("swept temporary files left by an earlier crash", { removed });
  return removed;
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
