// Listings: keys in UTF-8 byte order (S3's ListObjectsV2 semantics), pages after a cursor, common
// prefixes with the '/' delimiter; walked through held directories (contained.ts), never a symlink.
import type { BigIntStats } from "node:fs";
import fs from "node:fs/promises";
import type { HeldDirectory } from "./contained.js";
import { describes } from "./meta.js";
import { parseKey } from "./names.js";
import type { Volume } from "./volume.js";

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

/**
 * Lists keys in UTF-8 byte order, S3's ListObjectsV2 semantics: with the delimiter, every key with a '/'
 * after the prefix is rolled up into the common prefix that ends at that '/', listed once; a page
 * holds the first `limit` entries (keys and common prefixes) after `after`. Directories are walked with
 * their entries sorted as the keys they contain would sort ("name/" for a directory), so a depth-first
 * walk yields keys in order and a page can skip whole subtrees before the cursor.
 */
export async function list(volume: Volume, request: ListRequest): Promise<ListResult> {
  const { namespace, prefix } = request;
  const empty: ListResult = { items: [], prefixes: [], lastReturned: undefined };
  // Start at the deepest directory the prefix fixes.
  const fixedDir = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/") + 1) : "";
  if (fixedDir !== "") {
    for (const segment of fixedDir.slice(0, -1).split("/")) {
      if (segment === "" || segment === "." || segment === ".." || segment.includes("\\") || segment.includes("\0")) return empty;
    }
  }
  const startDir = await volume.root.openDirectory([namespace, ...fixedDir.split("/").filter(Boolean)]);
  if (startDir === undefined) return empty;
  try {
    return await listFrom(volume, startDir, fixedDir, request);
  } finally {
    await startDir.close();
  }
}

async function listFrom(volume: Volume, startDir: HeldDirectory, fixedDir: string, request: ListRequest): Promise<ListResult> {
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
    const meta = await volume.sidecars.read(volume.layout.metaPath(request.namespace, entry.key));
    const described = describes(meta, entry.stat);
    items.push({
      key: entry.key,
      size: Number(entry.stat.size),
      sha256: described ? meta.sha256 : null,
      modified: entry.stat.mtime.toISOString(),
      type: "file",
      s3ETag: described ? meta.s3ETag : undefined,
    });
    lastReturned = entry.key;
  }
  return { items, prefixes, lastReturned: truncated ? lastReturned : undefined };
}

/** Names of the real directories (never symlinks) directly below `relative` in a namespace; [] if none. */
export async function childDirectories(volume: Volume, namespace: string, relative: string): Promise<string[]> {
  const directory = await volume.root.openDirectory([namespace, ...parseKey(relative).segments]);
  if (directory === undefined) return [];
  try {
    return (await directory.entries()).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  } finally {
    await directory.close();
  }
}

/** Namespaces present on the volume (for usage metrics). */
export async function namespaces(volume: Volume): Promise<string[]> {
  const entries = await fs.readdir(volume.options.root, { withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isDirectory() && !entry.name.startsWith(".")).map((entry) => entry.name);
}

async function readSortedEntries(directory: HeldDirectory): Promise<Entry[]> {
  const entries = (await directory.entries())
    .filter((dirent) => dirent.isDirectory() || dirent.isFile())
    .map((dirent) => ({ name: dirent.name, isDirectory: dirent.isDirectory() }));
  const sortKey = (entry: Entry) => (entry.isDirectory ? `${entry.name}/` : entry.name);
  return entries.sort((a, b) => compareKeys(sortKey(a), sortKey(b)));
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
