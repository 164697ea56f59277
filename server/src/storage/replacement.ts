// Replacing an artifact in two renames, recoverably. rename(2) cannot put a directory where a non-empty
// directory or a file is, so a directory replacement moves the old version aside and then the new one
// in. Between the two, neither is at the key: a crash there lost both while the old version was set
// aside as an ordinary temporary file, which the start-up sweep removes with the staged new one.
//
// So before anything moves, a record on the volume says where the old version belongs and where the
// new one is staged; it is removed once the new version is in place. Reading a record left by a crash
// settles the replacement: the new version is still staged — it never landed — so the old one goes
// back; or it is gone from staging — it landed — so the old one is discarded. The sweep of a crash's
// leftovers (leftovers.ts) settles records first, whether the crash was this host's or a peer's on a
// shared volume.
import fs from "node:fs/promises";
import path from "node:path";
import { crashPoint } from "./crash-points.js";
import type { Scratch } from "./temp-names.js";
import { syncDirectory, writeNewFile } from "./upload.js";

/** A directory held open (contained.ts): `entry(name)` looks `name` up in it, wherever it is now. */
export interface ParentDirectory {
  entry(name: string): string;
}

/** Where a replaced artifact belongs: its namespace and its key's segments. */
export interface ArtifactPlace {
  readonly namespace: string;
  readonly segments: readonly string[];
}

interface ReplacementRecord extends ArtifactPlace {
  /** Names in the temporary directory: the staged new version, and the old one set aside. */
  readonly staged: string;
  readonly aside: string;
}

/** The old version of a replacement in progress, set aside in the temporary directory. */
export interface Aside {
  readonly path: string;
  readonly record: string;
}

const RECORD_SUFFIX = ".record";

export class Replacements {
  constructor(
    private readonly scratch: Scratch,
    private readonly fsync: boolean,
  ) {}

  /**
   * Records the replacement, then moves the entry `name` of `parent` aside. Undefined when nothing is
   * there any more (a peer deleted it meanwhile): then there is nothing to replace.
   */
  async moveAside(parent: ParentDirectory, name: string, place: ArtifactPlace, staged: string): Promise<Aside | undefined> {
    const aside = this.scratch.path("replaced");
    const record = `${aside}${RECORD_SUFFIX}`;
    const content: ReplacementRecord = { namespace: place.namespace, segments: place.segments, staged: path.basename(staged), aside: path.basename(aside) };
    await writeNewFile(record, JSON.stringify(content), this.fsync);
    if (this.fsync) await syncDirectory(this.scratch.dir);
    try {
      await fs.rename(parent.entry(name), aside);
    } catch (error) {
      await fs.rm(record, { force: true });
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    crashPoint("replacement-moved-aside");
    return { path: aside, record };
  }

  /** The new version is in place: the old one, still aside, is now only a temporary entry to remove. */
  async landed(aside: Aside): Promise<void> {
    crashPoint("replacement-moved-in");
    await fs.rm(aside.record, { force: true });
  }

  /**
   * The new version did not land: the old one goes back to `parent`, unless something else took its
   * place meanwhile (a peer's write, which is newer). Resolves whether it went back; if not, the caller
   * removes `aside.path`.
   */
  async putBack(aside: Aside, parent: ParentDirectory | undefined, name: string): Promise<boolean> {
    const restored = parent !== undefined && (await moveBackUnlessTaken(aside.path, parent.entry(name)));
    await fs.rm(aside.record, { force: true });
    return restored;
  }

  /**
   * Settles the replacements a crash interrupted: those whose record `isLeftover` (by its name in the
   * temporary directory) says is no live process's work. `parentOf` makes and holds the directory an
   * old version goes back to (undefined when the key's parents cannot be directories any more). Resolves
   * how many old versions went back; what is discarded is left to the sweep.
   */
  async recover<Held extends ParentDirectory & { close(): Promise<void> }>(
    isLeftover: (name: string) => Promise<boolean>,
    parentOf: (place: ArtifactPlace) => Promise<Held | undefined>,
  ): Promise<number> {
    let restored = 0;
    for (const name of await fs.readdir(this.scratch.dir)) {
      if (!name.endsWith(RECORD_SUFFIX) || !(await isLeftover(name))) continue;
      const recordPath = path.join(this.scratch.dir, name);
      const record = await readRecord(recordPath);
      if (record !== undefined && (await present(path.join(this.scratch.dir, record.staged)))) {
        // The new version is still staged: it never landed, and the old one is the artifact.
        const aside = path.join(this.scratch.dir, record.aside);
        const parent = (await present(aside)) ? await parentOf(record) : undefined;
        if (parent !== undefined) {
          try {
            if (await moveBackUnlessTaken(aside, parent.entry(record.segments.at(-1) ?? ""))) restored += 1;
          } finally {
            await parent.close();
          }
        }
      }
      await fs.rm(recordPath, { force: true });
    }
    return restored;
  }
}

/**
 * Moves `from` to `to` unless something is at `to`. A file goes back by link(2), which refuses an
 * existing name, then loses its temporary name; a directory by rename(2), which refuses a file or a
 * non-empty directory there (an empty one is only a peer's parent directory being made, and gives way).
 */
async function moveBackUnlessTaken(from: string, to: string): Promise<boolean> {
  const stat = await fs.lstat(from);
  try {
    if (stat.isDirectory()) {
      await fs.rename(from, to);
    } else {
      await fs.link(from, to);
      await fs.unlink(from);
    }
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST" || code === "ENOTEMPTY" || code === "ENOTDIR" || code === "EISDIR") return false;
    throw error;
  }
}

/** A record as written, or undefined when it is unreadable or names anything outside the temporary directory. */
async function readRecord(file: string): Promise<ReplacementRecord | undefined> {
  try {
    const parsed = JSON.parse(await fs.readFile(file, "utf8")) as Partial<ReplacementRecord>;
    const { namespace, segments, staged, aside } = parsed;
    const plainName = (value: unknown): value is string => typeof value === "string" && value !== "" && !value.includes("/") && value !== "." && value !== "..";
    if (!plainName(namespace) || !plainName(staged) || !plainName(aside)) return undefined;
    if (!Array.isArray(segments) || segments.length === 0 || !segments.every(plainName)) return undefined;
    return { namespace, segments, staged, aside };
  } catch {
    return undefined;
  }
}

async function present(entry: string): Promise<boolean> {
  return (await fs.lstat(entry).catch(() => undefined)) !== undefined;
}
