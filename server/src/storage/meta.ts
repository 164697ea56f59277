// Content metadata kept beside the volume's files. A sidecar names the exact file version it describes
// (inode, size, modification time in ns), so a stale sidecar — left by a crash between the sidecar's
// rename and the content's, or by racing writers — is detected and the digest recomputed from the bytes.
// ETag and checksum therefore always describe the bytes on disk.
import { createHash } from "node:crypto";
import type { BigIntStats } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { randomUUID } from "node:crypto";

export interface ContentMeta {
  readonly sha256: string;
  readonly size: number;
  readonly ino: string;
  readonly mtimeNs: string;
}

export function metaFor(sha256: string, stat: BigIntStats): ContentMeta {
  return { sha256, size: Number(stat.size), ino: String(stat.ino), mtimeNs: String(stat.mtimeNs) };
}

export function describes(meta: ContentMeta | undefined, stat: BigIntStats): meta is ContentMeta {
  return (
    meta !== undefined &&
    meta.ino === String(stat.ino) &&
    meta.size === Number(stat.size) &&
    meta.mtimeNs === String(stat.mtimeNs)
  );
}

export async function readMeta(metaPath: string): Promise<ContentMeta | undefined> {
  try {
    const parsed = JSON.parse(await fs.readFile(metaPath, "utf8")) as Partial<ContentMeta>;
    if (typeof parsed.sha256 !== "string" || typeof parsed.ino !== "string" || typeof parsed.mtimeNs !== "string") {
      return undefined;
    }
    return parsed as ContentMeta;
  } catch {
    // Missing or torn (a crash before the data reached the disk): the digest is recomputed.
    return undefined;
  }
}

/** Replaces the sidecar atomically (temporary file + rename); no fsync, a lost sidecar is recomputed. */
export async function writeMeta(metaPath: string, tmpDir: string, meta: ContentMeta): Promise<void> {
  await fs.mkdir(path.dirname(metaPath), { recursive: true });
  const tmp = path.join(tmpDir, `meta.${randomUUID()}.tmp`);
  await fs.writeFile(tmp, JSON.stringify(meta), { mode: 0o640 });
  try {
    await fs.rename(tmp, metaPath);
  } catch (error) {
    await fs.rm(tmp, { force: true });
    throw error;
  }
}

export async function removeMeta(metaPath: string): Promise<void> {
  await fs.rm(metaPath, { force: true });
}

/** SHA-256 of an open file, read in large chunks with bounded memory. */
export async function digestOpenFile(handle: fs.FileHandle): Promise<string> {
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(1 << 20);
  let position = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return hash.digest("hex");
}
