// What a digest sidecar holds (meta.ts reads and places them): shared with the upload worker, which
// writes a small upload's sidecar beside its body so that the commit only renames it into place.
import type { BigIntStats } from "node:fs";

export interface ContentMeta {
  readonly sha256: string;
  readonly size: number;
  readonly ino: string;
  readonly mtimeNs: string;
  /**
   * S3's ETag of this content (without quotes), when it was written through S3: the MD5 of a single-part
   * object, `<md5 of the parts' MD5s>-<parts>` of a multipart one. Clients such as rclone compare it.
   */
  readonly s3ETag?: string;
}

/** The sidecar of content `sha256` in the file version `stat` names (a stat, or what the upload worker took). */
export function metaFor(sha256: string, stat: Pick<BigIntStats, "ino" | "size" | "mtimeNs">, s3ETag?: string): ContentMeta {
  const meta = { sha256, size: Number(stat.size), ino: String(stat.ino), mtimeNs: String(stat.mtimeNs) };
  return s3ETag === undefined ? meta : { ...meta, s3ETag };
}
