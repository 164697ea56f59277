// S3 multipart uploads on the volume. Each upload is a directory under the internal directory, where no
// key can reach it: `upload.json` (namespace, key, when it began), the staged object (`object`, empty
// at first) and one JSON record per part (size, MD5, where its bytes are). With FSYNC=true a part, its
// record and their names are on disk before UploadPart answers.
//
// Where a part's bytes go. Clients send parts of one size but the last (KFP's launcher 5 MiB, the aws
// CLI and boto3 8 MiB, minio-go 16 MiB or more), so the first part to arrive fixes the upload's part
// size (`layout.json`), and a part that declares its length and fits is written straight into the
// staged object at (part number − 1) × part size, under a claim of its number (multipart-claims.ts);
// its record, written last, makes it a part. Any other part (a length not declared or larger, its
// number claimed by a writer still at work or already in place, the object fenced off by a completion)
// is staged like any upload into its own file. Completing a list of parts 1..n that all sit at their places commits the
// staged object itself: the last part copied in if it has its own file, the object cut to its size,
// hashed once (SHA-256), flushed and renamed to its key — no part is written twice. Any other list is
// copied, part by part, into the store's ordinary atomic PUT.
//
// A completion first fences the object off (renames it out of the parts' way) and waits for the
// claims of parts still being written into it, so that no late write can change the object once it
// is committed; a completion that fails puts it back. The object appears whole or not at all, and only
// then is the upload directory removed — a crash at any step leaves either the upload (retry the
// completion) or the object.
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { ArtifactKey } from "../storage/names.js";
import type { ArtifactStore, FileOnVolume, PutResult } from "../storage/store.js";
import { hashVolumeFile, stageUpload, syncDirectory, writeNewFile, type VolumeFilesBody } from "../storage/upload.js";
import { SOURCE_CHANGED } from "../storage/upload-protocol.js";
import { S3Error, invalidArgument, noSuchUpload } from "./errors.js";
import { isAbandoned, tryClaim, waitForClaims, type Claim, type Claimant } from "./multipart-claims.js";

export const MAX_PARTS = 10_000;
/** S3's minimum size of every part but the last. */
export const MIN_PART_BYTES = 5 << 20;
const UPLOAD_ID = /^[0-9a-f]{32}$/;
/** The largest part S3 takes. */
const MAX_PART_BYTES = 5 * 2 ** 30;
/** The staged object, which parts are written into in place. */
const STAGED_OBJECT = "object";
/** The staged object while a completion has it fenced off. */
const FENCED_OBJECT = "object.completing";
/** The upload's part size, fixed by the first part written in place: `{ "partBytes": n }`. */
const LAYOUT = "layout.json";
/** The claim a completion holds while it has the object fenced off. */
const COMPLETION_CLAIM = "claim-complete";
/** What the claims of parts being written in place are named with (`claim-part-00001`...). */
const PART_CLAIM_PREFIX = "claim-part-";
/** How long a completion waits for parts still being written into the object before it gives up. */
const PART_CLAIMS_WAIT_MS = 120_000;

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
   * The inode of the part file the record describes (of the staged object, for a part in place). Two
   * servers storing the same part number at once may leave one's file with the other's record: such a
   * part does not count as uploaded.
   */
  readonly ino?: number;
  /** For a part written into the staged object in place, its offset there; else the part is its own file. */
  readonly at?: number;
}

interface Layout {
  readonly partBytes: number;
}

export interface CompletedPart {
  readonly partNumber: number;
  readonly etag: string;
}

export class MultipartUploads {
  readonly dir: string;
  readonly #claimant: Claimant;

  constructor(
    private readonly store: ArtifactStore,
    internalDir: string,
  ) {
    this.dir = path.join(internalDir, "multipart");
    // Claims name this start as temporary files do. The only server process on its host knows that
    // every other start of this host has stopped; one of several cannot tell its siblings' claims
    // from a stopped start's, and waits for them to go stale.
    const tempNames = store.layout?.tempNames;
    const onlyProcess = store.options?.runtime.onlyProcessOnHost === true;
    this.#claimant = {
      holder: tempNames?.ownPrefix ?? "",
      hasStopped: (holder) => tempNames !== undefined && onlyProcess && tempNames.isThisHost(holder) && !tempNames.isOwn(holder),
    };
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
    await writeNewFile(path.join(dir, STAGED_OBJECT), "", fsync);
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

  /**
   * Stores one part (replacing an earlier one of the same number); resolves its MD5 (the part's ETag).
   * `declaredBytes` (the request's declared length) lets it be written into the staged object in place.
   */
  async putPart(
    uploadId: string,
    partNumber: number,
    body: AsyncIterable<Uint8Array>,
    checks: { expectedSha256?: string | undefined; expectedMd5?: string | undefined },
    declaredBytes?: number,
  ): Promise<PartRecord> {
    const dir = this.#uploadDir(uploadId);
    await this.get(uploadId);
    const { options } = this.store;
    const maxBytes = Math.min(options.maxUploadBytes, MAX_PART_BYTES);
    const inPlace = declaredBytes !== undefined && declaredBytes > 0 && declaredBytes <= maxBytes ? await this.#claimPlace(dir, partNumber, declaredBytes) : undefined;
    try {
      const staged = await stageUpload(body, this.store.uploadContext, {
        // In place, a byte more would land on the next part.
        maxBytes: inPlace === undefined ? maxBytes : (declaredBytes ?? 0),
        writableBytes: () => this.store.writableBytes(),
        fsync: options.fsync,
        md5: true,
        into: inPlace,
      });
      try {
        if (inPlace !== undefined && staged.size !== declaredBytes) {
          throw new S3Error(400, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.");
        }
        if (checks.expectedSha256 !== undefined && checks.expectedSha256 !== staged.sha256) {
          throw new S3Error(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.");
        }
        if (checks.expectedMd5 !== undefined && checks.expectedMd5 !== staged.md5) {
          throw new S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
        }
        const part: PartRecord = {
          partNumber,
          size: staged.size,
          md5: staged.md5 ?? "",
          modified: new Date().toISOString(),
          ino: Number(staged.file.ino),
          ...(inPlace === undefined ? {} : { at: inPlace.offset }),
        };
        await this.#recordPart(dir, part, inPlace === undefined ? staged.tempFile : undefined);
        return part;
      } finally {
        if (inPlace === undefined) await fs.rm(staged.tempFile, { force: true });
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") throw noSuchUpload(); // aborted or completed meanwhile
      throw error;
    } finally {
      await inPlace?.claim.release();
    }
  }

  /**
   * Makes a part's record (and, for a part in its own file, that file) the part of its number. The
   * record first: a part file without its record is never used, a record without its file neither.
   */
  async #recordPart(dir: string, part: PartRecord, ownFile: string | undefined): Promise<void> {
    const { fsync } = this.store.options;
    const name = partName(part.partNumber);
    // Its temporary name is this request's own: another server may store the same part at once.
    const recordTemp = path.join(dir, `${name}.json.${randomBytes(8).toString("hex")}.tmp`);
    try {
      await writeNewFile(recordTemp, JSON.stringify(part), fsync);
      if (ownFile !== undefined) await fs.rename(ownFile, path.join(dir, name));
      await fs.rename(recordTemp, path.join(dir, `${name}.json`));
      // With FSYNC=true a part answered is a part kept: its bytes and record are flushed, and now their names.
      if (fsync) await syncDirectory(dir);
    } finally {
      await fs.rm(recordTemp, { force: true });
    }
  }

  /**
   * Where part `partNumber` of `declaredBytes` goes in the staged object, with the claim on that place;
   * undefined when it must be a file of its own: longer than the upload's part size, its number claimed
   * by another writer or already in place, or the object fenced off by a completion.
   */
  async #claimPlace(dir: string, partNumber: number, declaredBytes: number): Promise<{ path: string; offset: number; claim: Claim } | undefined> {
    const object = path.join(dir, STAGED_OBJECT);
    // Uploads begun before parts were written in place have no staged object.
    if ((await fs.lstat(object).catch(() => undefined))?.isFile() !== true) return undefined;
    const { partBytes } = await this.#layout(dir, declaredBytes);
    const offset = (partNumber - 1) * partBytes;
    if (declaredBytes > partBytes || offset + declaredBytes > this.store.options.maxUploadBytes) return undefined;
    const claim = await tryClaim(path.join(dir, `claim-${partName(partNumber)}`), this.#claimant);
    if (claim === undefined) return undefined;
    // A part of this number already in place stays the part until its replacement is whole: the
    // replacement (a retry, usually) goes to a file of its own, as S3 keeps a part whose retry fails.
    const earlier = await readPart(path.join(dir, `${partName(partNumber)}.json`));
    if (earlier?.at !== undefined) {
      await claim.release();
      return undefined;
    }
    return { path: object, offset, claim };
  }

  /** The upload's part size: the one recorded, or `declaredBytes` when this part is the first to fix it. */
  async #layout(dir: string, declaredBytes: number): Promise<Layout> {
    const file = path.join(dir, LAYOUT);
    const recorded = await readLayout(file);
    if (recorded !== undefined) return recorded;
    // Written whole under a name of its own and linked into place, which fails if another part was first.
    const temp = path.join(dir, `${LAYOUT}.${randomBytes(8).toString("hex")}.tmp`);
    const { fsync } = this.store.options;
    try {
      await writeNewFile(temp, JSON.stringify({ partBytes: declaredBytes } satisfies Layout), fsync);
      await fs.link(temp, file);
      if (fsync) await syncDirectory(dir);
      return { partBytes: declaredBytes };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const winner = await readLayout(file);
      if (winner === undefined) throw error;
      return winner;
    } finally {
      await fs.rm(temp, { force: true });
    }
  }

  /** Every complete part, by part number. */
  async parts(uploadId: string): Promise<PartRecord[]> {
    const dir = this.#uploadDir(uploadId);
    const names = await fs.readdir(dir).catch(() => {
      throw noSuchUpload();
    });
    // A part in place belongs to the staged object (fenced off or not) it was written into.
    const staged = names.includes(STAGED_OBJECT) ? STAGED_OBJECT : FENCED_OBJECT;
    const object = await fs.stat(path.join(dir, staged)).catch(() => undefined);
    const parts: PartRecord[] = [];
    for (const name of names) {
      if (!/^part-\d{5}\.json$/.test(name)) continue;
      const part = await readPart(path.join(dir, name));
      if (part === undefined) continue;
      if (part.at !== undefined) {
        if (object !== undefined && part.ino === object.ino) parts.push(part);
        continue;
      }
      if (!names.includes(name.slice(0, -".json".length))) continue;
      const file = await fs.stat(path.join(dir, name.slice(0, -".json".length))).catch(() => undefined);
      if (file !== undefined && (part.ino === undefined || part.ino === file.ino)) parts.push(part);
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  /**
   * Assembles the listed parts into the object, in place when they all sit at their places, else
   * through the store's atomic PUT. The ETag is S3's: the MD5 of the parts' binary MD5s, then "-" and
   * the number of parts.
   */
  async complete(
    uploadId: string,
    target: { namespace: string; key: ArtifactKey },
    requested: readonly CompletedPart[],
    precondition: Parameters<ArtifactStore["put"]>[0]["precondition"],
  ): Promise<PutResult> {
    const dir = this.#uploadDir(uploadId);
    const chosen = chooseParts(requested, await this.parts(uploadId));
    const combined = createHash("md5");
    for (const part of chosen) combined.update(Buffer.from(part.md5, "hex"));
    const s3ETag = `${combined.digest("hex")}-${chosen.length}`;
    const assembly: Assembly = { dir, target, chosen, s3ETag, precondition };
    const result = chosen.some((part) => part.at !== undefined) ? await this.#completeFenced(uploadId, assembly) : await this.#copy(assembly, undefined);
    await fs.rm(dir, { recursive: true, force: true });
    return result;
  }

  /**
   * A completion using parts in place: the staged object fenced off, the parts still being written
   * into it waited for, the list checked again against what they left, then the object committed in
   * place (or copied). Put back for a retry when anything fails.
   */
  async #completeFenced(uploadId: string, assembly: Assembly): Promise<PutResult> {
    const { dir } = assembly;
    const claim = await this.#claimCompletion(dir);
    const object = path.join(dir, STAGED_OBJECT);
    const fenced = path.join(dir, FENCED_OBJECT);
    try {
      try {
        await fs.rename(object, fenced);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        // Fenced off by another completion (that took over a claim it thought abandoned), or committed
        // by one that then stopped before removing the upload.
        throw (await fs.lstat(fenced).catch(() => undefined)) === undefined ? noSuchUpload() : completionUnderWay();
      }
      let committed = false;
      try {
        if (!(await waitForClaims(dir, (name) => name.startsWith(PART_CLAIM_PREFIX), this.#claimant, PART_CLAIMS_WAIT_MS))) {
          throw new S3Error(503, "SlowDown", "A part of this upload is still being written; try completing it again.");
        }
        // A part rewritten meanwhile is not the part the client named.
        const stored = await this.parts(uploadId);
        const chosen = chooseParts(assembly.chosen.map((part) => ({ partNumber: part.partNumber, etag: part.md5 })), stored);
        if (chosen.some((part, index) => part.at !== assembly.chosen[index]?.at || part.ino !== assembly.chosen[index]?.ino)) throw invalidPart();
        const layout = await readLayout(path.join(dir, LAYOUT));
        const result =
          layout !== undefined && fitsInPlace(chosen, stored, layout)
            ? await this.#commitInPlace({ ...assembly, chosen }, fenced)
            : await this.#copy({ ...assembly, chosen }, fenced);
        committed = true;
        return result;
      } finally {
        if (!committed) await fs.rename(fenced, object).catch(() => {});
      }
    } finally {
      await claim.release();
    }
  }

  /**
   * The completion's claim. One held by a live completion refuses this one; one abandoned (its server
   * stopped) is taken over, and the object it had fenced off put back first.
   */
  async #claimCompletion(dir: string): Promise<Claim> {
    const file = path.join(dir, COMPLETION_CLAIM);
    let claim = await tryClaim(file, this.#claimant);
    if (claim === undefined) {
      if (!(await isAbandoned(file, this.#claimant))) throw completionUnderWay();
      await fs.rm(file, { force: true });
      claim = await tryClaim(file, this.#claimant);
      if (claim === undefined) throw completionUnderWay();
      const object = path.join(dir, STAGED_OBJECT);
      const fenced = path.join(dir, FENCED_OBJECT);
      if ((await fs.lstat(object).catch(() => undefined)) === undefined && (await fs.lstat(fenced).catch(() => undefined)) !== undefined) {
        await fs.rename(fenced, object);
      }
    }
    return claim;
  }

  /**
   * The fenced-off object made the object at its key: the last part copied to its place when it has
   * its own file (the only bytes this completion writes), the object cut to its size, hashed, flushed
   * (FSYNC=true) and renamed to the key. Left fenced off when the commit refuses it.
   */
  async #commitInPlace(assembly: Assembly, fenced: string): Promise<PutResult> {
    const { chosen, dir } = assembly;
    const last = chosen.at(-1)!;
    const size = chosen.reduce((total, part) => total + part.size, 0);
    const lastOffset = size - last.size;
    const { options } = this.store;
    // Cut short underneath (the volume changed behind the server): the zeros the cut below would add
    // back are not the parts the client named.
    const placedEnd = Math.max(...chosen.map((part) => (part.at === undefined ? 0 : part.at + part.size)));
    const before = await fs.stat(fenced);
    if (before.size < placedEnd) throw invalidPart();
    const { ino } = before;
    if (last.at === undefined) {
      await stageUpload(volumeFiles(dir, [last], fenced), this.store.uploadContext, {
        maxBytes: last.size,
        writableBytes: () => this.store.writableBytes(),
        fsync: false,
        into: { path: fenced, offset: lastOffset },
      }).catch(completionSourceFailure(dir));
    }
    await fs.truncate(fenced, size);
    const sha256 = await hashVolumeFile(this.store.uploadContext, { path: fenced, size, ino }).catch(completionSourceFailure(dir));
    const handle = await fs.open(fenced, "r+");
    let file: FileOnVolume["file"];
    try {
      // The parts were flushed as they were answered; this flushes the last one's copy and the new size.
      if (options.fsync) await handle.datasync();
      const stat = await handle.stat({ bigint: true });
      file = { ino: stat.ino, size: stat.size, mtimeNs: stat.mtimeNs };
    } finally {
      await handle.close();
    }
    if (Number(file.ino) !== ino || Number(file.size) !== size) throw invalidPart();
    return this.store.commitFile({ ...assembly.target, precondition: assembly.precondition }, { path: fenced, size, sha256, file, s3ETag: assembly.s3ETag });
  }

  /** The listed parts copied, in order, into the store's ordinary atomic PUT; parts in place read from `staged`. */
  async #copy(assembly: Assembly, staged: string | undefined): Promise<PutResult> {
    const { chosen, dir, target } = assembly;
    return this.store
      .put({
        namespace: target.namespace,
        key: target.key,
        body: volumeFiles(dir, chosen, staged),
        declaredSize: chosen.reduce((total, part) => total + part.size, 0),
        s3ETag: assembly.s3ETag,
        precondition: assembly.precondition,
      })
      .catch(completionSourceFailure(dir));
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

/** A completion's parts and what the object becomes. */
interface Assembly {
  readonly dir: string;
  readonly target: { readonly namespace: string; readonly key: ArtifactKey };
  readonly chosen: readonly PartRecord[];
  readonly s3ETag: string;
  readonly precondition: Parameters<ArtifactStore["put"]>[0]["precondition"];
}

/** The stored parts a CompleteMultipartUpload lists, checked as S3 checks them (order, ETags, sizes). */
function chooseParts(requested: readonly CompletedPart[], parts: readonly PartRecord[]): PartRecord[] {
  if (requested.length === 0) throw new S3Error(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.");
  if (requested.length > MAX_PARTS) throw invalidArgument(`A multipart upload has at most ${MAX_PARTS} parts.`);
  const stored = new Map(parts.map((part) => [part.partNumber, part]));
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
  return chosen;
}

/**
 * Whether the staged object, cut to the parts' total, is the object: parts 1..n, each but the last of
 * the upload's part size and in place, the last no longer (in place or its own file, copied in), and no
 * part in place beyond them that the cut would take from the upload.
 */
function fitsInPlace(chosen: readonly PartRecord[], stored: readonly PartRecord[], layout: Layout): boolean {
  const { partBytes } = layout;
  const last = chosen.length - 1;
  const placed = chosen.every((part, index) => {
    if (part.partNumber !== index + 1) return false;
    if (index < last) return part.size === partBytes && part.at === index * partBytes;
    return part.size <= partBytes && (part.at === undefined || part.at === index * partBytes);
  });
  return placed && !stored.some((part) => part.partNumber > chosen.length && part.at !== undefined);
}

/** The parts as files on the volume for the upload worker to read: parts in place as ranges of `staged`. */
function volumeFiles(dir: string, parts: readonly PartRecord[], staged: string | undefined): VolumeFilesBody {
  return {
    kind: "volume files",
    files: parts.map((part) =>
      part.at === undefined || staged === undefined
        ? { path: path.join(dir, partName(part.partNumber)), size: part.size, ino: part.ino }
        : { path: staged, size: part.size, ino: part.ino, offset: part.at },
    ),
  };
}

/** What a completion tells the client when reading its parts failed. */
function completionSourceFailure(dir: string): (error: unknown) => Promise<never> {
  return async (error) => {
    const { code } = error as NodeJS.ErrnoException;
    // Completed or aborted meanwhile through another server on the volume: its parts are gone.
    if (code === "ENOENT" && (await fs.stat(dir).catch(() => undefined)) === undefined) throw noSuchUpload();
    // A part listed was replaced (or is gone) since its record was read: not the part the client named.
    if (code === "ENOENT" || code === SOURCE_CHANGED) throw invalidPart();
    throw error;
  };
}

async function readLayout(file: string): Promise<Layout | undefined> {
  try {
    const layout = JSON.parse(await fs.readFile(file, "utf8")) as Partial<Layout>;
    return typeof layout.partBytes === "number" && Number.isSafeInteger(layout.partBytes) && layout.partBytes > 0 ? { partBytes: layout.partBytes } : undefined;
  } catch {
    return undefined;
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

function completionUnderWay(): S3Error {
  return new S3Error(409, "OperationAborted", "A conflicting conditional operation is currently in progress against this resource. Try again.");
}

function invalidPart(): S3Error {
  return new S3Error(
    400,
    "InvalidPart",
    "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.",
  );
}
