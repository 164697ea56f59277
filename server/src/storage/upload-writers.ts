// The event loop's side of the upload workers (upload-worker.ts): one small pool per runtime
// (runtime.ts), like libuv's thread pool, started on the first upload. The event loop receives a
// body's chunks, copies each 512 KiB of them into a slot of memory shared with the workers and posts
// a few numbers; a worker hashes and writes the slot, then gives it back. An S3 upload's MD5 is
// computed by a second worker reading the same slot at the same time.
//
// Why slots and not transferred buffers: memory. Transferred chunks are freed only when the worker's
// garbage collector gets round to them, which on a busy upload it does late (a 1 GiB upload peaked at
// 225 MB RSS, 64 concurrent ones at 447 MB). The slots are allocated once (8 MiB), whatever the
// number of uploads; an upload that finds none free simply stops reading its request until one is.
import { existsSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type {
  AppendRange,
  Digest,
  FinishRequest,
  PlaceAfterFinish,
  PlaceOutcome,
  PlaceRequest,
  SidecarRequest,
  WorkerSetup,
  WriterReply,
  WriterRequest,
  WrittenFile,
} from "./upload-protocol.js";

/**
 * One hand-over: amortizes the message cost (≈ 20 µs) over 8 socket reads. It is also what each upload
 * collects before it needs a slot, so with 64 uploads at once 64 × 512 KiB wait in memory (1 MiB made
 * that 64 MiB and brought 64 concurrent uploads within 1 MB of the 250 MB target).
 */
export const SLOT_BYTES = 512 << 10;
/** All uploads' bytes waiting in the workers, together; 8 MiB of memory, allocated once. */
const SLOT_COUNT = 16;
/** One upload's share of the slots (4 MiB): keeps a worker busy, and leaves slots for the others. */
const MAX_SLOTS_PER_UPLOAD = 8;
/**
 * How often an upload that ends in an fsync is flushed behind its writes (upload-worker.ts): the disk
 * then writes the file while it is still arriving and hashed, instead of all of it at the finish.
 */
export const FLUSH_BEHIND_BYTES = 32 << 20;

/**
 * The worker script: built next to the server bundle (scripts/build.mjs). The tests run the server
 * from its TypeScript sources, where the built worker (made by their global setup) is used instead.
 */
function workerScript(): URL {
  const sibling = new URL("./upload-worker.mjs", import.meta.url);
  if (existsSync(fileURLToPath(sibling))) return sibling;
  const built = new URL("../../dist/upload-worker.mjs", import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new Error("upload-worker.mjs is missing beside server.mjs: ship both files of server/dist (make build makes them)");
}

/** An Error carrying the worker's errno code, so ENOSPC and EDQUOT keep their meaning. */
export function workerError(code: string | undefined, message: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(message);
  if (code !== undefined) error.code = code;
  return error;
}

/** The shared memory, and the uploads waiting for a free slot in the order they asked. */
class Slots {
  readonly memory: SharedArrayBuffer;
  readonly #free: number[];
  readonly #waiting: Array<(slot: number) => void> = [];

  constructor(
    readonly count: number,
    readonly slotBytes: number,
  ) {
    this.memory = new SharedArrayBuffer(count * slotBytes);
    this.#free = Array.from({ length: count }, (_, slot) => slot);
  }

  view(slot: number): Uint8Array {
    return new Uint8Array(this.memory, slot * this.slotBytes, this.slotBytes);
  }

  /** A free slot now, or undefined when the caller must wait(). */
  take(): number | undefined {
    return this.#waiting.length === 0 ? this.#free.pop() : undefined;
  }

  wait(): Promise<number> {
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  give(slot: number): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next(slot);
    else this.#free.push(slot);
  }
}

/**
 * Up to this many bytes in all, an upload's MD5 is computed by the worker that writes it: a second
 * worker's round trip (tens of µs) costs more than hashing them (MD5 runs at ≈ 600 MB/s).
 */
const MD5_BESIDE_WRITE_BYTES = 64 << 10;

export interface UploadOptions {
  /** Also compute the MD5. */
  readonly md5?: boolean;
  /** The upload will finish with an fsync: have the file flushed as it grows. */
  readonly flushBehind?: boolean;
  /** Write into the existing file at `path` from this offset, instead of creating it. */
  readonly at?: number;
  /**
   * Write nothing: only hash what is appended (appendRange() of files on the volume); finish() then
   * resolves the SHA-256 and the upload has no `file`.
   */
  readonly hashOnly?: boolean;
}

/** Picks the workers of an upload when it opens: the one that writes, and one for an MD5 beside it. */
type LanePicker = (separateMd5: boolean) => { readonly writer: WorkerLane; readonly md5: WorkerLane | undefined };

/** What the upload is waiting for, and from which of its workers a reply is still due. */
type Waiting = { readonly what: "slot back" } | { readonly what: "appended" | "finished" | "aborted"; readonly from: Set<WorkerLane> };

/**
 * One upload's bytes on their way to its temporary file. The worker that writes the file computes the
 * SHA-256; an S3 upload's MD5 runs on a second worker that reads the same slots at the same time (one
 * thread doing both took SHA-256 + MD5 ≈ 0.75 + 1.7 s per GiB one after the other). A slot is free again
 * once every worker it was posted to has answered.
 */
export class UploadWriter {
  /** Received chunks not yet copied to a slot (less than a slot's worth, except while waiting). */
  #batch: Uint8Array[] = [];
  #batchBytes = 0;
  /** Slots posted and not yet given back, with how many workers still read each. */
  readonly #held = new Map<number, number>();
  /** The workers of this upload, once it is open (the writer first). */
  #lanes: readonly WorkerLane[] = [];
  #failure: Error | undefined;
  /** The one reply this upload waits for: a slot of its own given back, the digest, or the abort. */
  #pending: { resolve: (value: string | undefined) => void; reject: (error: Error) => void } | undefined;
  #waiting: Waiting | undefined;
  #done = false;
  #sha256: string | undefined;
  #md5: string | undefined;
  #file: WrittenFile | undefined;
  #sidecarWritten = false;
  #placement: PlaceOutcome | undefined;
  /** The slot a write that also finishes the upload holds: its finish's reply gives it back. */
  #finishingSlot: number | undefined;

  constructor(
    readonly id: number,
    private readonly pickLanes: LanePicker,
    private readonly slots: Slots,
    private readonly path: string,
    private readonly mode: number,
    private readonly options: UploadOptions,
    private readonly ended: () => void,
  ) {}

  get #wantsMd5(): boolean {
    return this.options.md5 === true;
  }

  /** The MD5 of every byte written, once finish() has resolved, when the upload began with `md5`. */
  get md5(): string | undefined {
    return this.#md5;
  }

  /** Whether the sidecar finish() was asked for was written by the worker (false: the caller writes it). */
  get sidecarWritten(): boolean {
    return this.#sidecarWritten;
  }

  /** What the worker did with the commit finish() was given; undefined when it did not make it. */
  get placement(): PlaceOutcome | undefined {
    return this.#placement;
  }

  /** The written file's inode, size and modification time, once finish() has resolved. */
  get file(): WrittenFile {
    if (this.#file === undefined) throw new Error("the upload has not finished");
    return this.#file;
  }

  /**
   * Takes `chunk`, which is kept by reference until it is copied into a slot (at the latest by
   * finish()): the caller must not change it meanwhile (request body chunks are never reused).
   * Returns a promise only when the caller has to wait before handing over more.
   */
  write(chunk: Uint8Array): Promise<void> | undefined {
    this.#throwIfFailed();
    if (chunk.byteLength === 0) return undefined;
    this.#batch.push(chunk);
    this.#batchBytes += chunk.byteLength;
    return this.#handOver(false);
  }

  /**
   * Appends a range of a file already on the volume, which the writing worker reads, hashes and writes
   * itself (every digest of this upload then on that worker): for bodies assembled from files, whose
   * bytes need not cross the event loop. Not after write(): the two would race for the file's order.
   * Rejects with code SOURCE_CHANGED when the file is not the size (or inode) given.
   */
  async appendRange(range: AppendRange): Promise<void> {
    this.#throwIfFailed();
    // Bytes written and not yet handed over would land after the range; an MD5 on another lane would miss it.
    if (this.#batchBytes > 0 || this.#held.size > 0 || this.#lanes.length > 1) throw new Error("appendRange() after write(): the bytes would be out of order");
    this.#open(false, false);
    const appended = this.#wait("appended");
    this.#lanes[0]!.send({ op: "append", id: this.id, ...range });
    await appended;
  }

  /** Whether finish() can hand the whole body over in one request: nothing handed over yet, one slot's worth. */
  get wholeInOneSlot(): boolean {
    return this.#lanes.length === 0 && this.#batchBytes > 0 && this.#batchBytes <= SLOT_BYTES;
  }

  /**
   * Writes what is left, writes `sidecar` when given and it can, fsyncs when asked and closes; resolves
   * the SHA-256 of every byte written. With `place`, a whole body in one slot whose writing worker
   * carries nothing else is also committed in that request (`placement` tells what came of it): on a
   * busy worker a commit waits behind the other uploads' writes, where the thread pool runs it beside them.
   */
  async finish(fsync: boolean, sidecar?: SidecarRequest, place?: PlaceAfterFinish): Promise<string> {
    this.#throwIfFailed();
    const wholeInOneSlot = this.wholeInOneSlot;
    this.#open(true);
    const slot = wholeInOneSlot && this.#lanes.length === 1 ? this.slots.take() : undefined;
    if (slot !== undefined) {
      // The whole body, written and finished in one request with one reply.
      const finishing = this.#wait("finished");
      this.#finishingSlot = slot;
      const idle = this.#lanes[0]!.uploads.size === 1;
      this.#post(slot, { fsync, sidecar, place: idle && !fsync ? place : undefined });
      await finishing;
    } else {
      const handingOver = this.#handOver(true);
      if (handingOver !== undefined) await handingOver;
      // Read afresh: a failure may have arrived while waiting (TypeScript would keep the earlier narrowing).
      this.#throwIfFailed();
      const finishing = this.#wait("finished");
      // Only the writing worker (the first lane) has the file, and so the identity the sidecar names.
      this.#lanes.forEach((lane, index) => lane.send({ op: "finish", id: this.id, fsync, sidecar: index === 0 ? sidecar : undefined }));
      await finishing;
    }
    this.#close();
    if (this.#sha256 === undefined || (this.#file === undefined && this.options.hashOnly !== true)) {
      throw new Error("the upload worker finished without the file's digest and identity");
    }
    return this.#sha256;
  }

  /** Closes the file without a digest. Never rejects: it is called on the way out of a failure. */
  async abort(): Promise<void> {
    if (this.#done) return;
    this.#batch = [];
    this.#batchBytes = 0;
    // The flow that aborts is the flow that waited: nothing should be pending, but never leave a hang.
    this.#settle(new Error("upload aborted"));
    if (this.#lanes.length > 0) {
      const aborting = this.#wait("aborted").catch(() => {});
      for (const lane of this.#lanes) lane.send({ op: "abort", id: this.id });
      await aborting;
    }
    this.#close();
  }

  /** Called by `lane` for each reply about this upload, and with an error if its worker ends. */
  receive(reply: WriterReply | Error, lane: WorkerLane): void {
    if (reply instanceof Error) {
      // That worker is gone and will answer nothing: the upload fails, and its slots are free again
      // (another worker may still be reading one, for this failed upload only, whose file is removed).
      for (const slot of this.#held.keys()) this.slots.give(slot);
      this.#held.clear();
      this.#failure ??= reply;
      if (this.#waiting?.what === "aborted") this.#answered(lane);
      else this.#settle(this.#failure);
      return;
    }
    // Whatever ends the upload on its worker also gives back the slot its finishing write held.
    if (reply.op !== "written") this.#giveBackFinishingSlot();
    switch (reply.op) {
      case "failed":
        this.#failure ??= workerError(reply.code, reply.message);
        if (this.#waiting?.what === "finished" || this.#waiting?.what === "appended") this.#settle(this.#failure);
        return;
      case "appended":
        if (this.#waiting?.what === "appended") this.#answered(lane);
        return;
      case "written": {
        const readers = this.#held.get(reply.slot);
        if (readers === undefined) return;
        if (readers > 1) {
          this.#held.set(reply.slot, readers - 1);
          return;
        }
        this.#held.delete(reply.slot);
        this.slots.give(reply.slot);
        if (this.#waiting?.what === "slot back") this.#settle(undefined);
        return;
      }
      case "finished":
        this.#sha256 ??= reply.digests.sha256;
        this.#md5 ??= reply.digests.md5;
        this.#file ??= reply.file;
        if (reply.sidecar) this.#sidecarWritten = true;
        this.#placement ??= reply.placement;
        if (this.#waiting?.what === "finished") this.#answered(lane);
        return;
      case "aborted":
        if (this.#waiting?.what === "aborted") this.#answered(lane);
        return;
    }
  }

  /** Records `lane`'s answer to a finish or abort; the last one settles the wait. */
  #answered(lane: WorkerLane): void {
    if (this.#waiting === undefined || this.#waiting.what === "slot back") return;
    this.#waiting.from.delete(lane);
    if (this.#waiting.from.size === 0) this.#settle(undefined);
  }

  /**
   * Opens the upload on its workers, at its first slot: by then it is known whether the whole body is
   * small enough (`final`: nothing more will come) for its MD5 to be computed by the worker that writes it.
   * Without `md5Apart` it always is (appended ranges reach only the writing worker).
   */
  #open(final: boolean, md5Apart = true): void {
    if (this.#lanes.length > 0) return;
    const separateMd5 = this.#wantsMd5 && md5Apart && !(final && this.#batchBytes <= MD5_BESIDE_WRITE_BYTES);
    const { writer, md5 } = this.pickLanes(separateMd5);
    const beside: Digest[] = this.#wantsMd5 && md5 === undefined ? ["md5"] : [];
    writer.adopt(this);
    writer.send({
      op: "open",
      id: this.id,
      file: this.options.hashOnly === true ? undefined : { path: this.path, mode: this.mode, at: this.options.at },
      digests: ["sha256", ...beside],
      flushBehindBytes: this.options.flushBehind === true ? FLUSH_BEHIND_BYTES : undefined,
    });
    this.#lanes = [writer];
    if (md5 !== undefined) {
      md5.adopt(this);
      md5.send({ op: "open", id: this.id, file: undefined, digests: ["md5"] });
      this.#lanes = [writer, md5];
    }
  }

  /**
   * Copies each full slot's worth of the batch (with `final`, the rest too) into free slots and posts
   * them. Synchronous while slots are at hand; otherwise returns a promise for the rest.
   */
  #handOver(final: boolean): Promise<void> | undefined {
    while (this.#batchBytes >= SLOT_BYTES || (final && this.#batchBytes > 0)) {
      const slot = this.#held.size < MAX_SLOTS_PER_UPLOAD ? this.slots.take() : undefined;
      if (slot === undefined) return this.#handOverLater(final);
      this.#post(slot);
    }
    return undefined;
  }

  async #handOverLater(final: boolean): Promise<void> {
    while (this.#batchBytes >= SLOT_BYTES || (final && this.#batchBytes > 0)) {
      this.#throwIfFailed();
      if (this.#held.size >= MAX_SLOTS_PER_UPLOAD) {
        await this.#wait("slot back");
        continue;
      }
      const slot = this.slots.take() ?? (await this.slots.wait());
      if (this.#failure !== undefined) {
        this.slots.give(slot);
        this.#throwIfFailed();
      }
      this.#post(slot);
    }
  }

  /** The slot of a write that finished the upload (written and finished in one request), until its reply. */
  #giveBackFinishingSlot(): void {
    const slot = this.#finishingSlot;
    this.#finishingSlot = undefined;
    // Not held any more when "written" freed it (the write failed): never given back twice.
    if (slot !== undefined && this.#held.delete(slot)) this.slots.give(slot);
  }

  #post(slot: number, finish?: FinishRequest): void {
    this.#open(false);
    const view = this.slots.view(slot);
    let length = 0;
    while (length < SLOT_BYTES && this.#batch.length > 0) {
      const chunk = this.#batch[0]!;
      const take = Math.min(chunk.byteLength, SLOT_BYTES - length);
      view.set(take === chunk.byteLength ? chunk : chunk.subarray(0, take), length);
      length += take;
      if (take === chunk.byteLength) this.#batch.shift();
      else this.#batch[0] = chunk.subarray(take);
    }
    this.#batchBytes -= length;
    this.#held.set(slot, this.#lanes.length);
    for (const lane of this.#lanes) lane.send({ op: "write", id: this.id, slot, length, finish });
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  #wait(what: Waiting["what"]): Promise<string | undefined> {
    if (this.#failure !== undefined && what !== "aborted") return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#waiting = what === "slot back" ? { what } : { what, from: new Set(this.#lanes) };
    });
  }

  #settle(error: Error | undefined, value?: string): void {
    const pending = this.#pending;
    this.#pending = undefined;
    this.#waiting = undefined;
    if (pending === undefined) return;
    if (error !== undefined) pending.reject(error);
    else pending.resolve(value);
  }

  #close(): void {
    if (!this.#done) this.ended();
    this.#done = true;
    for (const lane of this.#lanes) lane.release(this);
  }
}

/** What a worker's replies are for: an upload, or a commit (Placing). */
interface LaneClient {
  readonly id: number;
  /** Each reply about it, and an error if the worker ends. */
  receive(reply: WriterReply | Error, lane: WorkerLane): void;
}

/** A staged file's commit (PlaceRequest) on a worker, until its one reply. */
class Placing implements LaneClient {
  constructor(
    readonly id: number,
    private readonly resolve: (outcome: PlaceOutcome) => void,
    private readonly reject: (error: Error) => void,
  ) {}

  receive(reply: WriterReply | Error, lane: WorkerLane): void {
    if (reply instanceof Error) this.reject(reply);
    else if (reply.op === "placed") this.resolve(reply.outcome);
    else return;
    lane.release(this);
  }
}

/** One worker thread and the uploads (and commits) assigned to it. */
class WorkerLane {
  readonly uploads = new Map<number, LaneClient>();
  #worker: Worker | undefined;

  constructor(private readonly setup: WorkerSetup) {}

  send(message: WriterRequest): void {
    this.#start().postMessage(message);
  }

  /** Whether this lane's worker thread is running. */
  get running(): boolean {
    return this.#worker !== undefined;
  }

  adopt(upload: LaneClient): void {
    this.uploads.set(upload.id, upload);
    this.#worker?.ref();
  }

  release(upload: LaneClient): void {
    this.uploads.delete(upload.id);
    // An idle worker must not keep the process alive; a busy one must (its replies are awaited).
    if (this.uploads.size === 0) this.#worker?.unref();
  }

  /** Terminates the worker; uploads it was carrying fail (their callers remove their files). */
  async stop(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker === undefined) return;
    await worker.terminate();
    this.#lose(worker, "stopped");
  }

  #lose(worker: Worker, reason: string): void {
    if (this.#worker === worker) this.#worker = undefined;
    const error = new Error(`the upload worker stopped: ${reason}`);
    for (const upload of [...this.uploads.values()]) upload.receive(error, this);
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(workerScript(), {
      workerData: this.setup,
      // The worker keeps no state beyond open files and hashes: a small heap keeps its memory small.
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 },
    });
    worker.on("message", (reply: WriterReply) => this.uploads.get(reply.id)?.receive(reply, this));
    // An unexpected end (a crash, running out of its heap) fails the uploads it carried; the next
    // upload starts a new worker. After stop() they have already failed.
    const lost = (reason: string) => {
      if (this.#worker === worker) this.#lose(worker, reason);
    };
    worker.on("error", (error) => lost(error.message));
    worker.on("exit", (code) => lost(`exit code ${code}`));
    this.#worker = worker;
    return worker;
  }
}

/** The process's upload workers; uploads are spread over them by how many each is carrying. */
export class UploadWriterPool {
  readonly #slots: Slots;
  /** The first `#writerLanes` write files; every lane may compute an MD5 beside another's write. */
  readonly #lanes: WorkerLane[];
  readonly #writerLanes: number;
  #nextId = 1;
  #uploads = 0;

  /**
   * `workers` write uploads; with only one, a second lane exists for S3's MD5s alone, and its thread
   * starts at the first upload that needs it (the native API never does).
   */
  constructor(workers: number, slotCount = SLOT_COUNT) {
    this.#slots = new Slots(slotCount, SLOT_BYTES);
    const setup: WorkerSetup = { slots: this.#slots.memory, slotBytes: SLOT_BYTES };
    this.#writerLanes = Math.max(1, workers);
    this.#lanes = Array.from({ length: Math.max(2, this.#writerLanes) }, () => new WorkerLane(setup));
  }

  /** Starts an upload into a new file at `path`, created exclusively with `mode` (UploadOptions for the others). */
  begin(path: string, mode: number, options: UploadOptions = {}): UploadWriter {
    this.#uploads += 1;
    const ended = () => (this.#uploads -= 1);
    const pick: LanePicker = (separateMd5) => this.#pick(separateMd5);
    return new UploadWriter(this.#nextId++, pick, this.#slots, path, mode, options, ended);
  }

  /** Uploads begun and not yet finished or aborted, the process's writes in flight. */
  get uploads(): number {
    return this.#uploads;
  }

  /**
   * Commits a staged file on a writing worker that carries nothing else now (PlaceRequest): the lookup
   * of the key's entry and both renames in one hand-off. Undefined when every writing worker is busy:
   * the commit's steps then go to the thread pool, whose threads run many commits side by side where
   * one worker would run them one after another (32 PUTs at once were 13 % slower that way). The
   * promise rejects only when the worker ends before answering.
   */
  placeIfIdle(request: PlaceRequest): Promise<PlaceOutcome> | undefined {
    const idle = this.#lanes.slice(0, this.#writerLanes).find((lane) => lane.uploads.size === 0);
    if (idle === undefined) return undefined;
    return new Promise((resolve, reject) => {
      const placing = new Placing(this.#nextId++, resolve, reject);
      idle.adopt(placing);
      idle.send({ op: "place", id: placing.id, ...request });
    });
  }

  /** The least busy writer lane, and with `separateMd5` the least busy other lane. */
  #pick(separateMd5: boolean): { writer: WorkerLane; md5: WorkerLane | undefined } {
    const leastBusy = (lanes: readonly WorkerLane[]) => lanes.reduce((best, lane) => (lane.uploads.size < best.uploads.size ? lane : best));
    const writer = leastBusy(this.#lanes.slice(0, this.#writerLanes));
    return { writer, md5: separateMd5 ? leastBusy(this.#lanes.filter((lane) => lane !== writer)) : undefined };
  }

  /** How many worker threads are running now (each costs a V8 isolate's memory). */
  get runningWorkers(): number {
    return this.#lanes.filter((lane) => lane.running).length;
  }

  /**
   * Throws now, rather than at the first upload, when the worker script is missing (a server.mjs
   * copied without the upload-worker.mjs beside it).
   */
  checkWorkerScript(): void {
    workerScript();
  }

  /** Stops the workers; uploads still running fail. The next upload starts them again. */
  async stop(): Promise<void> {
    await Promise.all(this.#lanes.map((lane) => lane.stop()));
  }
}

/**
 * One writing worker per spare core, at most 4: with one or two cores one, so the event loop keeps a
 * core; SHA-256 at ≈ 1.7 GB/s per worker keeps up with 10 Gbit/s of uploads. S3's MD5 (≈ 600 MB/s) is
 * the slower digest: on its own worker it no longer adds its time to the SHA-256's.
 */
export const DEFAULT_UPLOAD_WORKERS = Math.min(4, os.availableParallelism() - 1);
