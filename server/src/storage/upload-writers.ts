// The event loop's side of the upload workers (upload-worker.ts): one small pool per process, like
// libuv's thread pool, started on the first upload. The event loop receives a body's chunks, copies
// each 512 KiB of them into a slot of memory shared with the workers and posts a few numbers; a worker
// hashes and writes the slot, then gives it back.
//
// Why slots and not transferred buffers: memory. Transferred chunks are freed only when the worker's
// garbage collector gets round to them, which on a busy upload it does late (a 1 GiB upload peaked at
// 225 MB RSS, 64 concurrent ones at 447 MB). The slots are allocated once (8 MiB), whatever the
// number of uploads; an upload that finds none free simply stops reading its request until one is.
import { existsSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { WorkerSetup, WriterReply, WriterRequest } from "./upload-protocol.js";

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
function workerError(code: string | undefined, message: string): NodeJS.ErrnoException {
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

/** One upload's bytes on their way to its temporary file. */
export class UploadWriter {
  /** Received chunks not yet copied to a slot (less than a slot's worth, except while waiting). */
  #batch: Uint8Array[] = [];
  #batchBytes = 0;
  /** Slots posted to the worker and not yet given back. */
  readonly #held = new Set<number>();
  #failure: Error | undefined;
  /** The one reply this upload waits for: a slot of its own given back, the digest, or the abort. */
  #pending: { resolve: (value: string | undefined) => void; reject: (error: Error) => void } | undefined;
  #waitingFor: "slot back" | "finished" | "aborted" | undefined;
  #done = false;
  #md5: string | undefined;

  constructor(
    readonly id: number,
    private readonly lane: WorkerLane,
    private readonly slots: Slots,
    path: string,
    mode: number,
    md5: boolean,
  ) {
    lane.send({ op: "open", id, path, mode, md5 });
  }

  /** The MD5 of every byte written, once finish() has resolved, when the upload began with `md5`. */
  get md5(): string | undefined {
    return this.#md5;
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

  /** Writes what is left, fsyncs when asked and closes; resolves the SHA-256 of every byte written. */
  async finish(fsync: boolean): Promise<string> {
    this.#throwIfFailed();
    const handingOver = this.#handOver(true);
    if (handingOver !== undefined) await handingOver;
    // Read afresh: a failure may have arrived while waiting (TypeScript would keep the earlier narrowing).
    this.#throwIfFailed();
    this.lane.send({ op: "finish", id: this.id, fsync });
    const sha256 = await this.#wait("finished");
    this.#close();
    return sha256 as string;
  }

  /** Closes the file without a digest. Never rejects: it is called on the way out of a failure. */
  async abort(): Promise<void> {
    if (this.#done) return;
    this.#batch = [];
    this.#batchBytes = 0;
    // The flow that aborts is the flow that waited: nothing should be pending, but never leave a hang.
    this.#settle(new Error("upload aborted"));
    this.lane.send({ op: "abort", id: this.id });
    await this.#wait("aborted").catch(() => {});
    this.#close();
  }

  /** Called by the lane for each reply about this upload, and with an error if the worker ends. */
  receive(reply: WriterReply | Error): void {
    if (reply instanceof Error) {
      // The worker is gone: nothing it held will be answered, so its slots are free again.
      for (const slot of this.#held) this.slots.give(slot);
      this.#held.clear();
      this.#failure ??= reply;
      this.#settle(this.#waitingFor === "aborted" ? undefined : this.#failure);
      return;
    }
    switch (reply.op) {
      case "failed":
        this.#failure ??= workerError(reply.code, reply.message);
        if (this.#waitingFor === "finished") this.#settle(this.#failure);
        return;
      case "written":
        if (!this.#held.delete(reply.slot)) return;
        this.slots.give(reply.slot);
        if (this.#waitingFor === "slot back") this.#settle(undefined);
        return;
      case "finished":
        this.#md5 = reply.md5;
        if (this.#waitingFor === "finished") this.#settle(undefined, reply.sha256);
        return;
      case "aborted":
        if (this.#waitingFor === "aborted") this.#settle(undefined);
        return;
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

  #post(slot: number): void {
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
    this.#held.add(slot);
    this.lane.send({ op: "write", id: this.id, slot, length });
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  #wait(what: "slot back" | "finished" | "aborted"): Promise<string | undefined> {
    if (this.#failure !== undefined && what !== "aborted") return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#waitingFor = what;
    });
  }

  #settle(error: Error | undefined, value?: string): void {
    const pending = this.#pending;
    this.#pending = undefined;
    this.#waitingFor = undefined;
    if (pending === undefined) return;
    if (error !== undefined) pending.reject(error);
    else pending.resolve(value);
  }

  #close(): void {
    this.#done = true;
    this.lane.release(this);
  }
}

/** One worker thread and the uploads assigned to it. */
class WorkerLane {
  readonly uploads = new Map<number, UploadWriter>();
  #worker: Worker | undefined;

  constructor(private readonly setup: WorkerSetup) {}

  send(message: WriterRequest): void {
    this.#start().postMessage(message);
  }

  adopt(upload: UploadWriter): void {
    this.uploads.set(upload.id, upload);
    this.#worker?.ref();
  }

  release(upload: UploadWriter): void {
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
    for (const upload of [...this.uploads.values()]) upload.receive(error);
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(workerScript(), {
      workerData: this.setup,
      // The worker keeps no state beyond open files and hashes: a small heap keeps its memory small.
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 },
    });
    worker.on("message", (reply: WriterReply) => this.uploads.get(reply.id)?.receive(reply));
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
  readonly #lanes: WorkerLane[];
  #nextId = 1;

  constructor(workers: number, slotCount = SLOT_COUNT) {
    this.#slots = new Slots(slotCount, SLOT_BYTES);
    const setup: WorkerSetup = { slots: this.#slots.memory, slotBytes: SLOT_BYTES };
    this.#lanes = Array.from({ length: Math.max(1, workers) }, () => new WorkerLane(setup));
  }

  /** Starts an upload into a new file at `path` (created exclusively with `mode`); `md5` adds that digest. */
  begin(path: string, mode: number, options: { md5?: boolean } = {}): UploadWriter {
    let lane = this.#lanes[0]!;
    for (const candidate of this.#lanes) if (candidate.uploads.size < lane.uploads.size) lane = candidate;
    const upload = new UploadWriter(this.#nextId++, lane, this.#slots, path, mode, options.md5 === true);
    lane.adopt(upload);
    return upload;
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
 * One worker per spare core, at most 4: with one or two cores one worker, so the event loop keeps a
 * core; SHA-256 at ≈ 1.7 GB/s per worker keeps up with 10 Gbit/s of uploads.
 */
export const uploadWriters = new UploadWriterPool(Math.min(4, os.availableParallelism() - 1));
