// Walks of the volume's trees for the background sweeps: in key order, for a sweep that records how far
// it got and resumes after that point, or all at once, for one that must know every file. Symlinks are
// never followed: only real directories are entered and only regular files yielded.
import type { Dirent } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";

/** Key order is byte order (UTF-8), as listings and S3 sort. */
export function byteLess(a: string, b: string): boolean {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) < 0;
}

/**
 * Regular files below `dir` in key order (a directory sorts as "name/"), skipping everything up to and
 * including `after`. Not a stat per entry: readdir's types decide, and symlinks are neither. A
 * directory that cannot be read is passed over: what it holds is judged at a later sweep.
 */
export async function* sortedFiles(dir: string, prefix: string, after: string | undefined): AsyncGenerator<{ key: string; path: string }> {
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  const sortKey = (entry: { name: string; isDirectory(): boolean }) => (entry.isDirectory() ? `${entry.name}/` : entry.name);
  entries.sort((a, b) => Buffer.compare(Buffer.from(sortKey(a)), Buffer.from(sortKey(b))));
  for (const entry of entries) {
    const key = prefix + entry.name;
    if (entry.isDirectory()) {
      const subtree = `${key}/`;
      // Entirely before the cursor: skip the whole subtree.
      if (after !== undefined && byteLess(subtree, after) && !after.startsWith(subtree)) continue;
      yield* sortedFiles(path.join(dir, entry.name), subtree, after);
    } else if (entry.isFile()) {
      if (after !== undefined && !byteLess(after, key)) continue;
      yield { key, path: path.join(dir, entry.name) };
    }
  }
}

/**
 * Every regular file's key below `dir`, in no particular order, for a sweep that must know all of them:
 * a directory that cannot be read fails the walk (ENOENT aside: it was removed, and so were its files),
 * so nothing is judged absent that was only unreadable.
 */
export async function* everyFileKey(dir: string, prefix = ""): AsyncGenerator<string> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  for (const entry of entries) {
    if (entry.isDirectory()) yield* everyFileKey(path.join(dir, entry.name), `${prefix}${entry.name}/`);
    else if (entry.isFile()) yield prefix + entry.name;
  }
}
