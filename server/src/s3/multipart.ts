// S3 multipart uploads on the volume. Each upload is a directory under the internal directory, where no
// key can reach it: `upload.json` (namespace, key, when it began) and one file per part with a JSON
// sidecar (size, MD5). Parts are staged like any upload (temporary file, digests in the upload
// worker) and renamed into place, so a part is either absent or complete; with FSYNC=true the part,
// its sidecar and their names are on disk before UploadPart answers. Completing has the upload
// worker read the parts, in order, into the store's ordinary atomic PUT (quota, reserve, SHA-256,
// fsync, rename): the object appears whole or not at all, and only then is the upload directory
// removed — a crash at any step leaves either the upload (retry the completion) or the object.
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { ArtifactKey } from "../storage/names.js";
import type { ArtifactStore, PutResult } from "../storage/store.js";
import { stageUpload, syncDirectory, writeNewFile } from "../storage/upload.js";
import { SOURCE_CHANGED } from "../storage/upload-protocol.js";
import { S3Error, invalidArgument, noSuchUpload } from "./errors.js";

export const MAX_PARTS = 10_000;
/** S3's minimum size of every part but the last. */
export const MIN_PART_BYTES = 5 << 20;
const UPLOAD_ID = /^[0-9a-f]{32}$/;

export interface UploadRecord {
  readonly namespace: string;
  readonly key: string;
  /** The object key as the client named it (bucket-relative), for ListMultipartUploads. */
  readonly objectKey: string;
  readonly bucket: string;
  readonly initiated: string;
}

export interface PartRecord {
  readonly partNumber: number;
  readonly size: number;
  readonly md5: string;
  readonly modified: string;
  /**
   * The inode of the part file the record describes. Two servers storing the same part number at once
   * may leave one's file with the other's record: such a part does not count as uploaded.
   */
  readonly ino?: number;
}

export interface CompletedPart {
  readonly partNumber: number;
  readonly etag: string;
}

export class MultipartUploads {
  readonly dir: string;

  constructor(
    private readonly store: ArtifactStore,
    internalDir: string,
  ) {
    this.dir = path.join(internalDir, "multipart");
  }

  async init(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
  }

  #uploadDir(uploadId: string): string {
    if (!UPLOAD_ID.test(uploadId)) throw noSuchUpload();
    return path.join(this.dir, uploadId);
  }

  async create(record: Omit<UploadRecord, "initiated">): Promise<string> {
    const uploadId = randomBytes(16).toString("hex");
    const dir = this.#uploadDir(uploadId);
    await fs.mkdir(dir);
    const full: UploadRecord = { ...record, initiated: new Date().toISOString() };
    const temp = path.join(dir, "upload.json.tmp");
    const { fsync } = this.store.options;
    await writeNewFile(temp, JSON.stringify(full), fsync);
    await fs.rename(temp, path.join(dir, "upload.json"));
    // Durable (FSYNC=true) once answered: the record's name in the upload's directory, and that
    // directory's in the one of all uploads.
    if (fsync) await Promise.all([syncDirectory(dir), syncDirectory(this.dir)]);
    return uploadId;
  }

  /** The upload's record; NoSuchUpload when it does not exist (or was completed or aborted). */
  async get(uploadId: string): Promise<UploadRecord> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.#uploadDir(uploadId), "upload.json"), "utf8")) as UploadRecord;
    } catch (error) {
      if (error instanceof S3Error) throw error;
      throw noSuchUpload();
    }
  }

  /** Stores one part (replacing an earlier one of the same number); resolves its MD5 (the part's ETag). */
  async putPart(
    uploadId: string,
    partNumber: number,
    body: AsyncIterable<Uint8Array>,
    checks: { expectedSha256?: string | undefined; expectedMd5?: string | undefined },
  ): Promise<PartRecord> {
    const dir = this.#uploadDir(uploadId);
    await this.get(uploadId);
    const { options } = this.store;
    const staged = await stageUpload(body, this.store.uploadContext, {
      maxBytes: Math.min(options.maxUploadBytes, 5 * 2 ** 30),
      writableBytes: () => this.store.writableBytes(),
      fsync: options.fsync,
      md5: true,
    });
    try {
      if (checks.expectedSha256 !== undefined && checks.expectedSha256 !== staged.sha256) {
        throw new S3Error(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.");
      }
      if (checks.expectedMd5 !== undefined && checks.expectedMd5 !== staged.md5) {
        throw new S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
      }
      const { ino } = await fs.stat(staged.tempFile);
      const part: PartRecord = { partNumber, size: staged.size, md5: staged.md5 ?? "", modified: new Date().toISOString(), ino };
      const name = partName(partNumber);
      // The sidecar first: a part file without its sidecar is never used, a sidecar without a file neither.
      // Its temporary name is this request's own: another server may store the same part at once.
      const sidecarTemp = path.join(dir, `${name}.json.${randomBytes(8).toString("hex")}.tmp`);
      try {
        await writeNewFile(sidecarTemp, JSON.stringify(part), options.fsync);
        await fs.rename(staged.tempFile, path.join(dir, name));
        await fs.rename(sidecarTemp, path.join(dir, `${name}.json`));
        // With FSYNC=true a part answered is a part kept: its file and sidecar are flushed (above), and
        // now their names.
        if (options.fsync) await syncDirectory(dir);
      } finally {
        await fs.rm(sidecarTemp, { force: true });
      }
      return part;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") throw noSuchUpload(); // aborted meanwhile
      throw error;
    } finally {
      await fs.rm(staged.tempFile, { force: true });
    }
  }

  /** Every complete part, by part number. */
  async parts(uploadId: string): Promise<PartRecord[]> {
    const dir = this.#uploadDir(uploadId);
    const names = await fs.readdir(dir).catch(() => {
      throw noSuchUpload();
    });
    const parts: PartRecord[] = [];
    for (const name of names) {
      if (!/^part-\d{5}\.json$/.test(name)) continue;
      const part = await readPart(path.join(dir, name));
      if (part === undefined || !names.includes(name.slice(0, -".json".length))) continue;
      const file = await fs.stat(path.join(dir, name.slice(0, -".json".length))).catch(() => undefined);
      if (file !== undefined && (part.ino === undefined || part.ino === file.ino)) parts.push(part);
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  /**
   * Assembles the listed parts into the object through the store's atomic PUT. The ETag is S3's:
   * the MD5 of the parts' binary MD5s, then "-" and the number of parts.
   */
  async complete(
    uploadId: string,
    target: { namespace: string; key: ArtifactKey },
    requested: readonly CompletedPart[],
    precondition: Parameters<ArtifactStore["put"]>[0]["precondition"],
  ): Promise<PutResult> {
    const dir = this.#uploadDir(uploadId);
    if (requested.length === 0) throw new S3Error(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.");
    if (requested.length > MAX_PARTS) throw invalidArgument(`A multipart upload has at most ${MAX_PARTS} parts.`);
    const stored = new Map((await this.parts(uploadId)).map((part) => [part.partNumber, part]));
    const chosen: PartRecord[] = [];
    let previous = 0;
    for (const [index, request] of requested.entries()) {
      if (request.partNumber <= previous) {
        throw new S3Error(400, "InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be specified in order by part number.");
      }
      previous = request.partNumber;
      const part = stored.get(request.partNumber);
      if (part === undefined || normalizeETag(request.etag) !== part.md5) throw invalidPart();
      if (index < requested.length - 1 && part.size < MIN_PART_BYTES) {
        throw new S3Error(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.");
      }
      chosen.push(part);
    }
    const combined = createHash("md5");
    for (const part of chosen) combined.update(Buffer.from(part.md5, "hex"));
    const s3ETag = `${combined.digest("hex")}-${chosen.length}`;
    const declaredSize = chosen.reduce((total, part) => total + part.size, 0);
    const result = await this.store
      .put({
        namespace: target.namespace,
        key: target.key,
        body: { kind: "volume files", files: chosen.map((part) => ({ path: path.join(dir, partName(part.partNumber)), size: part.size, ino: part.ino })) },
        declaredSize,
        s3ETag,
        precondition,
      })
      .catch(async (error: unknown) => {
        const { code } = error as NodeJS.ErrnoException;
        // Completed or aborted meanwhile through another server on the volume: its parts are gone.
        if (code === "ENOENT" && (await fs.stat(dir).catch(() => undefined)) === undefined) throw noSuchUpload();
        // A part listed was replaced (or is gone) since its record was read: not the part the client named.
        if (code === "ENOENT" || code === SOURCE_CHANGED) throw invalidPart();
        throw error;
      });
    await fs.rm(dir, { recursive: true, force: true });
    return result;
  }

  async abort(uploadId: string): Promise<void> {
    const dir = this.#uploadDir(uploadId);
    await this.get(uploadId);
    await fs.rm(dir, { recursive: true, force: true });
  }

  /** Uploads in progress (bounded), for ListMultipartUploads. */
  async list(limit: number): Promise<Array<UploadRecord & { uploadId: string }>> {
    const uploads: Array<UploadRecord & { uploadId: string }> = [];
    for (const uploadId of (await fs.readdir(this.dir).catch(() => [])).sort()) {
      if (uploads.length >= limit) break;
      if (!UPLOAD_ID.test(uploadId)) continue;
      const record = await this.get(uploadId).catch(() => undefined);
      if (record !== undefined) uploads.push({ ...record, uploadId });
    }
    return uploads;
  }

  /** Removes uploads begun longer ago than `maxAgeMs` (abandoned by their clients); resolves how many. */
  async sweep(maxAgeMs: number, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const uploadId of await fs.readdir(this.dir).catch(() => [])) {
      const dir = path.join(this.dir, uploadId);
      const record = await this.get(uploadId).catch(() => undefined);
      const began = record === undefined ? (await fs.stat(dir).catch(() => undefined))?.mtimeMs : Date.parse(record.initiated);
      if (began !== undefined && now - began > maxAgeMs) {
        await fs.rm(dir, { recursive: true, force: true });
        removed += 1;
      }
    }
    return removed;
  }
}

function partName(partNumber: number): string {
  return `part-${String(partNumber).padStart(5, "0")}`;
}

async function readPart(file: string): Promise<PartRecord | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, "utf8")) as PartRecord;
  } catch {
    return undefined;
  }
}

/** An ETag as clients send it back: quoted or not. */
export function normalizeETag(etag: string): string {
  return etag.trim().replace(/^"(.*)"$/, "$1");
}

function invalidPart(): S3Error {
  return new S3Error(
    400,
    "InvalidPart",
    "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.",
  );
}
