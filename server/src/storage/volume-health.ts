// The artifact volume's health, as readiness reports it and as an unexpected filesystem error is
// explained to a client: a volume that is full, read-only or gone is the operator's problem to fix, and
// a client must be told which (507, 503) instead of a bare 500. Messages never contain a path.
import { fstat } from "node:fs";
import fs from "node:fs/promises";
import { promisify } from "node:util";
import { serviceUnavailable, type HttpError } from "../errors.js";
import type { VolumeLayout } from "./layout.js";
import { isNoSpace, volumeFull } from "./upload.js";

export interface VolumeHealth {
  /** Writes can succeed (a full volume is writable: deletes free space, and reads still work). */
  readonly writable: boolean;
  /** What is wrong, for a person reading /readyz or an error body; undefined when nothing is. */
  readonly problem: string | undefined;
}

const READ_ONLY = "the artifact volume is read-only: writes are refused until it is writable again";
const GONE = "ARTIFACTS_ROOT no longer exists: the artifact volume is gone (unmounted or removed)";
const FULL = "the artifact volume is full: writes get 507 until space is freed";

/**
 * The directory ARTIFACTS_ROOT named at start, held open for the process's life: a directory created
 * there since is not the volume, and while it is held its inode number cannot be reused by one.
 */
export type RootIdentity = number;

const fstatAsync = promisify(fstat);

/**
 * Probes the volume: the root is still the directory it was at start (a `mkdir -p` of some path below
 * it may have recreated a removed root on the container's own filesystem), the internal directories are
 * there (recreated when removed, which would otherwise fail every write for good), and an empty file can
 * be created and removed. An empty file needs no data block, so a full volume passes, reported as full.
 */
export async function checkVolume(layout: VolumeLayout, identity: RootIdentity, writableBytes: () => Promise<number>): Promise<VolumeHealth> {
  const root = await fs.stat(layout.root).catch((error: unknown) => error as NodeJS.ErrnoException);
  if (root instanceof Error) return { writable: false, problem: root.code === "ENOENT" || root.code === "ENOTDIR" ? GONE : describe(root) };
  const held = await fstatAsync(identity);
  if (!root.isDirectory() || root.dev !== held.dev || root.ino !== held.ino) return { writable: false, problem: GONE };
  const probe = layout.scratch.path("ready");
  try {
    for (const directory of [layout.tmpDir, layout.metaDir, layout.runsDir]) await fs.mkdir(directory, { recursive: true });
    await (await fs.open(probe, "wx", 0o640)).close();
  } catch (error) {
    if (isNoSpace(error)) return { writable: true, problem: FULL };
    return { writable: false, problem: describe(error as NodeJS.ErrnoException) };
  } finally {
    // Whatever happened, no probe file stays behind (readiness runs every few seconds).
    await fs.rm(probe, { force: true }).catch(() => {});
  }
  const left = await writableBytes().catch(() => 1);
  return { writable: true, problem: left <= 0 ? FULL : undefined };
}

function describe(error: NodeJS.ErrnoException): string {
  if (error.code === "EROFS") return READ_ONLY;
  if (error.code === "EACCES" || error.code === "EPERM") return "the artifact volume is not writable by this server";
  return `the artifact volume failed a write (${error.code ?? "unknown error"})`;
}

/**
 * The answer for an error no code path mapped, when the volume explains it: 507 for no space, 503 for a
 * read-only or missing volume (with what is wrong). Undefined when the volume is fine: a real bug (500).
 */
export async function volumeFault(error: unknown, check: () => Promise<VolumeHealth>): Promise<HttpError | undefined> {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== "string" || !code.startsWith("E")) return undefined;
  if (isNoSpace(error)) return volumeFull();
  if (code === "EROFS") return serviceUnavailable(READ_ONLY);
  const health = await check().catch(() => undefined);
  if (health === undefined || health.writable) return undefined;
  return serviceUnavailable(health.problem ?? "the artifact volume is unavailable");
}
