// Containment on the volume: every path below the root is resolved one held directory at a time, and
// no file call ever passes through a symlink.
//
// Why: checking a path and then using the path again (realpath, then rename; lstat, then unlink; readdir
// of a directory, then readdir of an entry in it) acts on whatever the path names by then. Someone with
// access to a namespace's directory can swap a directory for a symlink to anywhere in between
// (renameat2(RENAME_EXCHANGE) in a loop), and writes, deletes, listings and downloads then reached
// outside the volume. Node has no openat(2), but Linux gives its semantics through
// /proc/self/fd/<fd>/<name>: the kernel resolves the held directory itself, wherever it is now, then
// looks up one name in it, and O_NOFOLLOW refuses a symlink there. So a directory is opened (O_DIRECTORY
// | O_NOFOLLOW) and held, and every open, mkdir, rename, link, unlink, rmdir, lstat and readdir names at
// most one component past a held descriptor. A whole path may be opened in one call instead when the
// opened descriptor is then verified: /proc/self/fd/<fd> reads back the real path of what was opened,
// which equals the expected path only if no component on the way was a symlink. Directories opened
// that way are kept open for the next request (held-directories.ts) and read back again at each use.
import { constants as fsConstants, readlinkSync, type BigIntStats, type Dirent, type Stats } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { ConfigError } from "../config.js";
import { HeldDirectoryCache } from "./held-directories.js";

const DIRECTORY_FLAGS = fsConstants.O_RDONLY | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW;
// O_NONBLOCK: a FIFO planted where a file was expected would otherwise block the opening thread for
// ever; on a regular file it changes nothing.
const FILE_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
/**
 * Directories kept open per volume: one descriptor each. The parents of the keys being written at once,
 * with room for many runs' output directories.
 */
const KEPT_DIRECTORIES = 128;

/** Not there as asked: missing, a file where a directory was expected, or a symlink (never followed). */
export function isNotThere(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP";
}

function missingAsUndefined(error: unknown): undefined {
  if (isNotThere(error)) return undefined;
  throw error;
}

/** A place below the volume's root, by its segments (namespace first): opened contained when used. */
export interface VolumePath {
  readonly volume: VolumeRoot;
  readonly segments: readonly string[];
}

/** A directory held open; the names below it are looked up in it, wherever it has been moved since. */
export class HeldDirectory {
  /** Names this very directory (a magic link of the kernel's); `${path}/name` is one lookup in it. */
  readonly path: string;

  private constructor(
    readonly handle: fs.FileHandle,
    /** For a directory kept open by the volume's cache: what close() does instead of closing it. */
    private readonly release?: () => Promise<void>,
  ) {
    this.path = `/proc/self/fd/${handle.fd}`;
  }

  /** A holder of a descriptor someone else keeps open (held-directories.ts): close() calls `release`. */
  static lease(handle: fs.FileHandle, release: () => Promise<void>): HeldDirectory {
    return new HeldDirectory(handle, release);
  }

  /** Opens the directory `location` names, or undefined when it is missing, not a directory or a symlink. */
  static async open(location: string): Promise<HeldDirectory | undefined> {
    try {
      return new HeldDirectory(await fs.open(location, DIRECTORY_FLAGS));
    } catch (error) {
      if (isNotThere(error)) return undefined;
      throw error;
    }
  }

  /** The path of the entry `name` in this directory, for calls that do not follow a final symlink. */
  entry(name: string): string {
    return `${this.path}/${name}`;
  }

  /** The real directory `name` in this one, held; undefined when it is missing, not a directory or a symlink. */
  child(name: string): Promise<HeldDirectory | undefined> {
    return HeldDirectory.open(this.entry(name));
  }

  /** Opens the file `name` for reading, refusing a symlink (ELOOP). */
  openFile(name: string): Promise<fs.FileHandle> {
    return fs.open(this.entry(name), FILE_FLAGS);
  }

  /** What `name` is (a symlink is reported as one, not followed); undefined when it is not there. */
  lstat(name: string): Promise<Stats | undefined> {
    return fs.lstat(this.entry(name)).catch(missingAsUndefined);
  }

  /** lstat() with nanosecond times and exact sizes. */
  lstatBigInt(name: string): Promise<BigIntStats | undefined> {
    return fs.lstat(this.entry(name), { bigint: true }).catch(missingAsUndefined);
  }

  /** The entries of this directory; none once it has been removed. */
  async entries(): Promise<Dirent[]> {
    try {
      return await fs.readdir(this.path, { withFileTypes: true });
    } catch (error) {
      if (isNotThere(error)) return [];
      throw error;
    }
  }

  /** fsync: makes a rename or unlink in this directory survive power loss. */
  sync(): Promise<void> {
    return this.handle.sync();
  }

  close(): Promise<void> {
    return this.release?.() ?? this.handle.close();
  }
}

/** The volume's root, held open for the process's life, and what its real path reads back as. */
export class VolumeRoot {
  /** /proc/self/fd/<fd> of the root: paths below it are resolved from the directory held, not from a name. */
  readonly path: string;
  /** Directories written into before, kept open and verified again at each use (held-directories.ts). */
  readonly #kept: HeldDirectoryCache<HeldDirectory>;

  private constructor(
    readonly fd: number,
    /** The root's real path as the kernel names it; a verified descriptor reads back this plus its segments. */
    readonly real: string,
    private readonly onRefused: (segments: readonly string[]) => void,
  ) {
    this.path = `/proc/self/fd/${fd}`;
    this.#kept = new HeldDirectoryCache<HeldDirectory>(
      {
        open: (segments) => this.#openDirectory(segments),
        handleOf: (held) => held.handle,
        // A kept directory that moved is not a refusal: it is opened again from its path, which may be one.
        stillAt: async (handle, segments) => (await readBack(handle)) === this.realPath(segments),
        lease: (handle, release) => HeldDirectory.lease(handle, release),
      },
      KEPT_DIRECTORIES,
    );
  }

  /**
   * Takes the root's descriptor (opened with O_DIRECTORY). Refuses to start without /proc/self/fd: without
   * it no containment check here can be made race-free, and failing closed beats serving unsafely.
   */
  static async hold(fd: number, onRefused: (segments: readonly string[]) => void = () => {}): Promise<VolumeRoot> {
    const real = await fs.readlink(`/proc/self/fd/${fd}`).catch(() => undefined);
    if (real === undefined || !path.isAbsolute(real)) {
      throw new ConfigError("/proc/self/fd is not available: the server needs Linux's /proc to keep every file call inside ARTIFACTS_ROOT");
    }
    return new VolumeRoot(fd, real, onRefused);
  }

  /**
   * Closes the directories kept open below the root (those in use once let go). The root's own
   * descriptor stays open: its number must never name something else while a late caller may still use it.
   */
  close(): Promise<void> {
    return this.#kept.close();
  }

  /** The real path of `segments` below the root, as a descriptor opened there reads back. */
  realPath(segments: readonly string[]): string {
    return segments.length === 0 ? this.real : `${this.real}/${segments.join("/")}`;
  }

  #through(segments: readonly string[]): string {
    return `${this.path}/${segments.join("/")}`;
  }

  /**
   * The directory at `segments` (at least one), held until close(), or undefined when a component is
   * missing, not a directory or a symlink. The descriptor must read back the expected path, which it
   * does only when nothing on the way was a symlink: one readlink for a directory kept open since an
   * earlier call, one open and one readlink otherwise, whatever the depth.
   */
  openDirectory(segments: readonly string[]): Promise<HeldDirectory | undefined> {
    return this.#kept.acquire(segments);
  }

  /** openDirectory() without the cache: a descriptor of its own, opened now. */
  async #openDirectory(segments: readonly string[]): Promise<HeldDirectory | undefined> {
    const held = await HeldDirectory.open(this.#through(segments));
    if (held === undefined) return undefined;
    if (await this.#reads(held.handle, segments)) return held;
    await held.close();
    return undefined;
  }

  /**
   * Opens the regular file at `segments` for reading, or undefined when it is missing, not a regular
   * file, or reached through a symlink. Returns its stat too (taken from the descriptor).
   */
  async openFile(segments: readonly string[]): Promise<{ handle: fs.FileHandle; stat: BigIntStats } | { directory: true } | undefined> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.#through(segments), FILE_FLAGS);
    } catch (error) {
      if (isNotThere(error)) return undefined;
      throw error;
    }
    try {
      const [stat, contained] = await Promise.all([handle.stat({ bigint: true }), this.#reads(handle, segments)]);
      if (contained && (stat.isFile() || stat.isDirectory())) {
        if (stat.isFile()) return { handle, stat };
        await handle.close();
        return { directory: true };
      }
    } catch (error) {
      await handle.close().catch(() => {});
      throw error;
    }
    await handle.close();
    return undefined;
  }

  /**
   * mkdir -p of `segments` below the root, one component at a time, each created and opened in the
   * directory held before it: a symlink swapped in anywhere is found, never followed. Resolves the
   * deepest directory held, or undefined when a component is a file or a symlink.
   */
  async makeDirectories(segments: readonly string[]): Promise<HeldDirectory | undefined> {
    // Usually everything exists already: one open and one readlink.
    const existing = await this.openDirectory(segments);
    if (existing !== undefined) return existing;
    let current: HeldDirectory | undefined;
    try {
      for (const segment of segments) {
        const entry = current === undefined ? `${this.path}/${segment}` : current.entry(segment);
        await fs.mkdir(entry).catch((error: unknown) => {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        });
        const next = await HeldDirectory.open(entry);
        await current?.close();
        current = next;
        if (current === undefined) return undefined;
      }
      const made = current;
      current = undefined;
      return made;
    } finally {
      await current?.close();
    }
  }

  async #reads(handle: fs.FileHandle, segments: readonly string[]): Promise<boolean> {
    if ((await readBack(handle)) === this.realPath(segments)) return true;
    this.onRefused(segments);
    return false;
  }
}

/**
 * What an open descriptor's path reads back as now (undefined if it cannot be read). On the event loop:
 * the kernel answers a readlink of /proc/self/fd from its own dentries, whatever file system the
 * descriptor is on (an NFS server is not asked), in about a microsecond, less than the hand-off to
 * libuv's thread pool and back.
 */
function readBack(handle: fs.FileHandle): Promise<string | undefined> {
  try {
    return Promise.resolve(readlinkSync(`/proc/self/fd/${handle.fd}`));
  } catch {
    return Promise.resolve(undefined);
  }
}

/**
 * Every regular file below `directory` (symlinks are neither followed nor reported), with its path
 * relative to it and its size. Each subdirectory is opened in its parent, held, so a swapped symlink is
 * never walked into.
 */
export async function* walkFiles(directory: HeldDirectory, relative = ""): AsyncGenerator<{ relative: string; size: number }> {
  for (const entry of await directory.entries()) {
    const childRelative = relative === "" ? entry.name : `${relative}/${entry.name}`;
    if (entry.isDirectory()) {
      const child = await directory.child(entry.name);
      if (child === undefined) continue;
      try {
        yield* walkFiles(child, childRelative);
      } finally {
        await child.close();
      }
    } else if (entry.isFile()) {
      const stat = await directory.lstat(entry.name);
      if (stat?.isFile()) yield { relative: childRelative, size: Number(stat.size) };
    }
  }
}

/** Total size of the regular files below `directory`, which it closes (0 when there is none). */
export async function sizeOfFiles(directory: HeldDirectory | undefined): Promise<number> {
  if (directory === undefined) return 0;
  let total = 0;
  try {
    for await (const file of walkFiles(directory)) total += file.size;
  } finally {
    await directory.close();
  }
  return total;
}

/** How often one entry may change under a removal (a directory swapped for a file and back) before it gives up. */
const REMOVE_ATTEMPTS = 8;

/**
 * rm -rf of the entry `name` in `parent`, through held directories only: a directory swapped for a
 * symlink meanwhile loses the symlink, never what it points to. Nothing there is not an error.
 */
export async function removeEntry(parent: HeldDirectory, name: string, isDirectory?: boolean): Promise<void> {
  let directory = isDirectory;
  for (let attempt = 0; attempt < REMOVE_ATTEMPTS; attempt += 1) {
    if (directory !== true) {
      try {
        // unlink(2) removes a symlink itself, never its target.
        await fs.unlink(parent.entry(name));
        return;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOENT") return;
        if (code !== "EISDIR" && code !== "EPERM") throw error;
      }
    }
    const held = await parent.child(name);
    if (held === undefined) {
      directory = false;
      continue;
    }
    try {
      for (const entry of await held.entries()) await removeEntry(held, entry.name, entry.isDirectory());
    } finally {
      await held.close();
    }
    try {
      await fs.rmdir(parent.entry(name));
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      // Swapped for a symlink or a file (unlinked next round), or refilled meanwhile (emptied again).
      if (code === "ENOTDIR") directory = false;
      else if (code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
    }
  }
  throw new Error("an entry kept changing while it was being removed");
}

/** rm -rf of `location`, whose parent directories are the server's own (the internal directory). */
export async function removeTree(location: string): Promise<void> {
  const parent = await HeldDirectory.open(path.dirname(location));
  if (parent === undefined) return;
  try {
    await removeEntry(parent, path.basename(location));
  } finally {
    await parent.close();
  }
}
