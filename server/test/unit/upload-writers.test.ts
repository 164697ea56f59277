// The upload workers on their own: bytes and digest exact whatever the chunks look like, bounded
// hand-over, errors with their errno codes, and a worker that ends mid-upload.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { SOURCE_CHANGED } from "../../src/storage/upload-protocol.js";
import { FLUSH_BEHIND_BYTES, SLOT_BYTES, UploadWriterPool } from "../../src/storage/upload-writers.js";
import { within } from "../support/harness.js";

let dir: string;
const pool = new UploadWriterPool(2);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "upload-writers-"));
});
afterAll(async () => {
  await pool.stop();
  await rm(dir, { recursive: true, force: true });
});

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex");

/** `body` uploaded through `on` in 100 kB chunks, with an MD5 when `withMd5`; resolves the digests. */
async function uploadOn(on: UploadWriterPool, file: string, body: Uint8Array, withMd5 = true): Promise<{ sha256: string; md5: string | undefined }> {
  const writer = on.begin(file, 0o640, { md5: withMd5 });
  for (let offset = 0; offset < body.byteLength; offset += 100_000) await writer.write(body.subarray(offset, offset + 100_000));
  const digest = await writer.finish(false);
  return { sha256: digest, md5: writer.md5 };
}

async function writeAllOf(file: string, chunks: Uint8Array[], fsync = false): Promise<string> {
  const writer = pool.begin(file, 0o640);
  for (const chunk of chunks) await writer.write(chunk);
  return writer.finish(fsync);
}

describe("UploadWriterPool", () => {
  it("writes every byte and answers their SHA-256, for whole buffers, views and pooled buffers alike", async () => {
    const expected = randomBytes(3 * 1024 * 1024 + 17);
    const shared = Buffer.from(expected); // the views below share this one buffer
    const chunks: Uint8Array[] = [
      new Uint8Array(shared.subarray(0, 1000)), // owns its buffer
      shared.subarray(1000, 2_000_000), // views into one buffer, across a slot boundary
      shared.subarray(2_000_000, 2_000_010),
      Buffer.from(shared.subarray(2_000_010, 2_000_020)), // small: from Node's shared allocation pool
      new Uint8Array(0),
      shared.subarray(2_000_020),
    ];
    const file = path.join(dir, "mixed");
    const digest = await writeAllOf(file, chunks, true);
    expect(digest).toBe(sha256(expected));
    expect((await readFile(file)).equals(expected)).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o640);
  });

  it("answers the written file's inode, size and modification time, as a stat after the close gives them", async () => {
    for (const fsync of [false, true]) {
      const file = path.join(dir, `identity-${fsync}`);
      const writer = pool.begin(file, 0o640);
      await writer.write(randomBytes(5000));
      await writer.finish(fsync);
      const after = await stat(file, { bigint: true });
      expect(writer.file).toEqual({ ino: after.ino, size: 5000n, mtimeNs: after.mtimeNs });
    }
  });

  it("writes the sidecar asked for beside a small body: its digest, identity and S3 ETag", async () => {
    const body = randomBytes(3000);
    const file = path.join(dir, "with-sidecar");
    const sidecarPath = path.join(dir, "with-sidecar.meta");
    const writer = pool.begin(file, 0o640, { md5: true });
    await writer.write(body);
    await writer.finish(false, { path: sidecarPath, s3ETag: undefined, md5AsETag: true });
    const after = await stat(file, { bigint: true });
    expect(writer.sidecarWritten).toBe(true);
    expect(JSON.parse(await readFile(sidecarPath, "utf8"))).toEqual({
      sha256: sha256(body),
      size: 3000,
      ino: String(after.ino),
      mtimeNs: String(after.mtimeNs),
      s3ETag: md5(body),
    });
    expect((await stat(sidecarPath)).mode & 0o777).toBe(0o640);
  });

  it("leaves the sidecar to the caller when the MD5 it needs is computed by another worker, or it cannot be created", async () => {
    const large = pool.begin(path.join(dir, "large-with-sidecar"), 0o640, { md5: true });
    await large.write(randomBytes(2 * SLOT_BYTES));
    await large.finish(false, { path: path.join(dir, "large.meta"), s3ETag: undefined, md5AsETag: true });
    expect(large.sidecarWritten).toBe(false);
    await expect(stat(path.join(dir, "large.meta"))).rejects.toMatchObject({ code: "ENOENT" });
    // A multipart upload's given ETag needs no MD5: written whatever the size.
    const given = pool.begin(path.join(dir, "given-etag"), 0o640);
    await given.write(randomBytes(2 * SLOT_BYTES));
    await given.finish(false, { path: path.join(dir, "given.meta"), s3ETag: "abc-2", md5AsETag: false });
    expect(given.sidecarWritten).toBe(true);
    expect(JSON.parse(await readFile(path.join(dir, "given.meta"), "utf8"))).toMatchObject({ s3ETag: "abc-2", size: 2 * SLOT_BYTES });
    const unwritable = pool.begin(path.join(dir, "no-sidecar-dir"), 0o640);
    await unwritable.write(randomBytes(10));
    await unwritable.finish(false, { path: path.join(dir, "missing", "x.meta"), s3ETag: undefined, md5AsETag: false });
    expect(unwritable.sidecarWritten).toBe(false);
  });

  it("copies: the caller's chunk is untouched and may be reused", async () => {
    const chunk = new Uint8Array(randomBytes(64 * 1024));
    const expected = sha256(chunk);
    const writer = pool.begin(path.join(dir, "copied"), 0o600);
    void writer.write(chunk);
    const finishing = writer.finish(false); // hands the last partial slot over
    expect(chunk.byteLength).toBe(64 * 1024);
    chunk.fill(0); // reused by its owner: the upload has its own copy already
    expect(await finishing).toBe(expected);
  });

  it("makes an upload wait once 4 MiB of it are handed over and unwritten", async () => {
    const writer = pool.begin(path.join(dir, "bounded"), 0o600);
    const returned: boolean[] = [];
    // Synchronously, so no reply of the worker can arrive in between.
    for (let i = 0; i < 6; i += 1) returned.push(writer.write(new Uint8Array(1 << 20)) !== undefined);
    expect(returned).toEqual([false, false, false, false, true, true]);
    await writer.finish(false);
    expect((await stat(path.join(dir, "bounded"))).size).toBe(6 << 20);
  });

  it("shares a fixed set of slots: a third upload waits until the first two give theirs back", async () => {
    const small = new UploadWriterPool(1, 2);
    try {
      const first = small.begin(path.join(dir, "slot-1"), 0o600);
      const second = small.begin(path.join(dir, "slot-2"), 0o600);
      const third = small.begin(path.join(dir, "slot-3"), 0o600);
      expect(first.write(new Uint8Array(SLOT_BYTES).fill(1))).toBeUndefined();
      expect(second.write(new Uint8Array(SLOT_BYTES).fill(2))).toBeUndefined();
      const waiting = third.write(new Uint8Array(SLOT_BYTES).fill(3));
      expect(waiting).toBeInstanceOf(Promise);
      await waiting; // a slot came back once the worker had written one of the first two
      const digests = await Promise.all([first.finish(false), second.finish(false), third.finish(false)]);
      for (const [i, digest] of digests.entries()) {
        const content = await readFile(path.join(dir, `slot-${i + 1}`));
        expect(content.equals(Buffer.alloc(SLOT_BYTES, i + 1))).toBe(true);
        expect(digest).toBe(sha256(content));
      }
    } finally {
      await small.stop();
    }
  });

  it("writes and finishes a body that fits one slot with one reply from the worker, which gives the slot back", async () => {
    const single = new UploadWriterPool(1, 1);
    try {
      for (const fsync of [false, true]) {
        const body = randomBytes(4096);
        const file = path.join(dir, `one-reply-${fsync}`);
        const writer = single.begin(file, 0o600, { md5: true });
        const receive = vi.spyOn(Object.getPrototypeOf(writer) as { receive: (reply: unknown) => void }, "receive");
        expect(writer.write(body)).toBeUndefined();
        expect(await writer.finish(fsync)).toBe(sha256(body));
        const replies = receive.mock.calls.map(([reply]) => reply as { op: string; id: number }).filter((reply) => reply.id === writer.id);
        receive.mockRestore();
        expect(replies.map((reply) => reply.op)).toEqual(["finished"]);
        expect(writer.md5).toBe(md5(body));
        expect((await readFile(file)).equals(body)).toBe(true);
        // The pool's only slot is free again: a whole slot is handed over at once.
        const next = single.begin(path.join(dir, `after-one-reply-${fsync}`), 0o600);
        expect(next.write(new Uint8Array(SLOT_BYTES))).toBeUndefined();
        await next.finish(false);
      }
    } finally {
      await single.stop();
    }
  });

  it("gives a one-slot body's slot back when its write fails (an existing file), and its abort is answered", async () => {
    const single = new UploadWriterPool(1, 1);
    try {
      const existing = path.join(dir, "one-slot-existing");
      await writeFile(existing, "keep me");
      const writer = single.begin(existing, 0o600);
      expect(writer.write(new Uint8Array(10))).toBeUndefined();
      await expect(writer.finish(true)).rejects.toMatchObject({ code: "EEXIST" });
      await writer.abort();
      expect(await readFile(existing, "utf8")).toBe("keep me");
      const next = single.begin(path.join(dir, "after-one-slot-failure"), 0o600);
      expect(next.write(new Uint8Array(SLOT_BYTES))).toBeUndefined();
      await next.finish(false);
    } finally {
      await single.stop();
    }
  });

  it("keeps uploads apart when many run at once on the same workers", async () => {
    const bodies = Array.from({ length: 12 }, (_, i) => randomBytes(200_000 + i * 65_537));
    const digests = await Promise.all(
      bodies.map((body, i) => {
        const pieces = [body.subarray(0, 70_000), body.subarray(70_000, 140_000), body.subarray(140_000)].map((piece) => new Uint8Array(piece));
        return writeAllOf(path.join(dir, `parallel-${i}`), pieces);
      }),
    );
    expect(digests).toEqual(bodies.map(sha256));
    for (const [i, body] of bodies.entries()) expect((await readFile(path.join(dir, `parallel-${i}`))).equals(body)).toBe(true);
  });

  it("computes an S3 upload's MD5 on a second worker beside the writing one, and a small body's in the writing worker", async () => {
    const own = new UploadWriterPool(1);
    try {
      const small = randomBytes(1000);
      expect(await uploadOn(own, path.join(dir, "md5-small"), small)).toEqual({ sha256: sha256(small), md5: md5(small) });
      expect(await uploadOn(own, path.join(dir, "md5-empty"), new Uint8Array(0))).toEqual({ sha256: sha256(new Uint8Array(0)), md5: md5(new Uint8Array(0)) });
      expect(own.runningWorkers).toBe(1);

      const large = randomBytes(3 * SLOT_BYTES + 12_345);
      expect(await uploadOn(own, path.join(dir, "md5-large"), large)).toEqual({ sha256: sha256(large), md5: md5(large) });
      expect(own.runningWorkers).toBe(2);
      expect((await readFile(path.join(dir, "md5-large"))).equals(large)).toBe(true);

      // Several at once, with and without an MD5, share both workers and the slots without mixing bytes.
      const bodies = Array.from({ length: 6 }, (_, i) => randomBytes(SLOT_BYTES + i * 77_777));
      const results = await Promise.all(
        bodies.map((body, i) =>
          uploadOn(own, path.join(dir, `md5-parallel-${i}`), body, i % 2 === 0),
        ),
      );
      for (const [i, body] of bodies.entries()) {
        expect(results[i]).toEqual({ sha256: sha256(body), md5: i % 2 === 0 ? md5(body) : undefined });
        expect((await readFile(path.join(dir, `md5-parallel-${i}`))).equals(body)).toBe(true);
      }
    } finally {
      await own.stop();
    }
  });

  it("an MD5 upload whose file cannot be created fails with the errno code, and its abort is answered by both workers", async () => {
    const existing = path.join(dir, "existing-md5");
    await writeFile(existing, "keep me");
    const writer = pool.begin(existing, 0o600, { md5: true });
    void writer.write(new Uint8Array(2 * SLOT_BYTES));
    await expect(writer.finish(false)).rejects.toMatchObject({ code: "EEXIST" });
    await writer.abort();
    expect(await readFile(existing, "utf8")).toBe("keep me");
  });

  it("fails with the errno code: EEXIST for an existing file (never overwritten), ENOENT for a missing directory", async () => {
    const existing = path.join(dir, "existing");
    await writeFile(existing, "keep me");
    const onExisting = pool.begin(existing, 0o600);
    void onExisting.write(new Uint8Array(10));
    await expect(onExisting.finish(false)).rejects.toMatchObject({ code: "EEXIST" });
    await onExisting.abort();
    expect(await readFile(existing, "utf8")).toBe("keep me");

    const missing = pool.begin(path.join(dir, "no-such-directory", "file"), 0o600);
    await expect(missing.finish(false)).rejects.toMatchObject({ code: "ENOENT" });
    await missing.abort();
  });

  it("a write after a failure throws that failure at once", async () => {
    const writer = pool.begin(path.join(dir, "no-such-directory", "again"), 0o600);
    await expect(writer.finish(false)).rejects.toMatchObject({ code: "ENOENT" });
    expect(() => writer.write(new Uint8Array(1))).toThrow(/ENOENT|no such file/);
    await writer.abort();
  });

  it("fsyncs without holding up other uploads, and an abort during the fsync is answered once the file is closed", async () => {
    const openDescriptors = async () => (await readdir("/proc/self/fd")).length;
    const own = new UploadWriterPool(1);
    try {
      // Durable uploads finishing together, and one that is not: all complete, each with its bytes.
      const bodies = Array.from({ length: 8 }, () => randomBytes(50_000));
      const writers = bodies.map((body, i) => {
        const writer = own.begin(path.join(dir, `synced-${i}`), 0o600);
        void writer.write(new Uint8Array(body));
        return writer;
      });
      expect(await Promise.all(writers.map((writer, i) => writer.finish(i !== 3)))).toEqual(bodies.map(sha256));
      for (const [i, body] of bodies.entries()) expect((await readFile(path.join(dir, `synced-${i}`))).equals(body)).toBe(true);

      const before = await openDescriptors();
      const writer = own.begin(path.join(dir, "aborted-while-syncing"), 0o600);
      void writer.write(new Uint8Array(randomBytes(SLOT_BYTES)));
      const finishing = writer.finish(true); // posted in this turn: the worker starts its fsync
      const aborting = writer.abort(); // arrives while the fsync runs, or after it
      await expect(finishing).rejects.toThrow(/upload aborted/);
      await aborting;
      expect(await openDescriptors()).toBe(before);
      await rm(path.join(dir, "aborted-while-syncing"));
    } finally {
      await own.stop();
    }
  });

  it("abort closes the file and leaves its removal to the caller; a later abort is a no-op", async () => {
    const file = path.join(dir, "aborted");
    const writer = pool.begin(file, 0o600);
    void writer.write(new Uint8Array(1 << 20));
    await writer.abort();
    await writer.abort();
    // Closed without a digest, with what had been written; the caller removes it.
    expect((await stat(file)).size).toBeLessThanOrEqual(1 << 20);
    await rm(file);
  });

  it("workers that end mid-way through an MD5 upload fail it; the next one starts them again", async () => {
    const own = new UploadWriterPool(1);
    const writer = own.begin(path.join(dir, "interrupted-md5"), 0o600, { md5: true });
    const chunk = new Uint8Array(SLOT_BYTES);
    for (let i = 0; i < 8; i += 1) expect(writer.write(chunk)).toBeUndefined();
    const blocked = writer.write(chunk);
    expect(blocked).toBeInstanceOf(Promise);
    // Awaited before the second worker has stopped: the first one's end already fails the upload.
    const failed = expect(blocked).rejects.toThrow(/upload worker stopped/);
    await own.stop();
    await failed;
    await writer.abort();

    const body = randomBytes(2 * SLOT_BYTES);
    expect(await uploadOn(own, path.join(dir, "after-restart-md5"), body)).toEqual({ sha256: sha256(body), md5: md5(body) });
    await own.stop();
  });

  it("a worker that ends mid-upload fails the uploads it carried; the next upload starts a new worker", async () => {
    const own = new UploadWriterPool(1);
    const writer = own.begin(path.join(dir, "interrupted"), 0o600);
    // 4 MiB posted and more waiting: milliseconds of hashing and writing, while the worker is stopped
    // within the same turn of the event loop (it has not even started yet).
    const chunk = new Uint8Array(1 << 20);
    for (let i = 0; i < 3; i += 1) expect(writer.write(chunk)).toBeUndefined();
    expect(writer.write(chunk)).toBeUndefined(); // the fourth and last slot this upload may hold
    const blocked = writer.write(chunk);
    expect(blocked).toBeInstanceOf(Promise);
    await own.stop();
    await expect(blocked).rejects.toThrow(/upload worker stopped/);
    const finishing = writer.finish(false);
    await own.stop();
    await expect(finishing).rejects.toThrow(/upload worker stopped/);
    await writer.abort(); // answers at once: the worker that would have replied is gone

    const body = randomBytes(100_000);
    const next = own.begin(path.join(dir, "after-restart"), 0o600);
    void next.write(new Uint8Array(body));
    expect(await next.finish(false)).toBe(sha256(body));
    await own.stop();
  });
});

describe("UploadWriterPool.placeIfIdle: a staged file's commit in one hand-off", () => {
  const own = new UploadWriterPool(1);
  afterAll(() => own.stop());

  /** A staged file and sidecar in `scratch`, and where they go: `target/name`, `meta/<name>`. */
  async function staged(name: string, body: string): Promise<{ file: string; sidecar: { from: string; to: string }; entry: string }> {
    const scratch = path.join(dir, "place-scratch");
    await mkdir(scratch, { recursive: true });
    await mkdir(path.join(dir, "place-target"), { recursive: true });
    const file = path.join(scratch, `${name}.upload`);
    await writeFile(file, body);
    await writeFile(path.join(scratch, `${name}.meta`), `{"for":"${name}"}`);
    return { file, sidecar: { from: path.join(scratch, `${name}.meta`), to: path.join(dir, "place-meta", "ab", name) }, entry: path.join(dir, "place-target", name) };
  }

  it("renames the sidecar (making its directory) and the file into place, and answers the size it replaced", async () => {
    const first = await staged("k", "first");
    expect(await own.placeIfIdle(first)).toEqual({ placed: true, previousSize: undefined });
    const second = await staged("k", "second!");
    expect(await own.placeIfIdle(second)).toEqual({ placed: true, previousSize: 5 });
    expect(await readFile(second.entry, "utf8")).toBe("second!");
    expect(await readFile(second.sidecar.to, "utf8")).toBe('{"for":"k"}');
    expect(await readdir(path.join(dir, "place-scratch"))).toEqual([]);
  });

  it("refuses a directory or a symlink at the entry, moving nothing", async () => {
    await mkdir(path.join(dir, "place-target", "a-dir"), { recursive: true });
    await symlink("/etc", path.join(dir, "place-target", "a-link"));
    for (const [name, refused] of [["a-dir", "directory"], ["a-link", "not a file"]] as const) {
      const request = await staged(name, "x");
      expect(await own.placeIfIdle(request)).toEqual({ placed: false, refused });
      expect(await readFile(request.file, "utf8")).toBe("x");
      await expect(stat(request.sidecar.to)).rejects.toMatchObject({ code: "ENOENT" });
      await rm(request.file);
      await rm(request.sidecar.from);
    }
  });

  it("answers the step that failed, with its errno code: the sidecar (nothing moved) or the file (the sidecar moved)", async () => {
    const noSidecar = await staged("no-sidecar", "x");
    await rm(noSidecar.sidecar.from);
    expect(await own.placeIfIdle(noSidecar)).toMatchObject({ placed: false, failedAt: "sidecar", code: "ENOENT" });
    expect(await readFile(noSidecar.file, "utf8")).toBe("x");
    await rm(noSidecar.file);

    const noFile = await staged("no-file", "x");
    await rm(noFile.file);
    expect(await own.placeIfIdle(noFile)).toMatchObject({ placed: false, failedAt: "file", code: "ENOENT" });
    expect(await readFile(noFile.sidecar.to, "utf8")).toBe('{"for":"no-file"}');
    await expect(stat(noFile.entry)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("is undefined while the only writing worker carries an upload, and rejects when the worker ends before answering", async () => {
    const writer = own.begin(path.join(dir, "place-busy"), 0o600);
    expect(writer.write(new Uint8Array(SLOT_BYTES))).toBeUndefined();
    expect(own.placeIfIdle(await staged("busy", "x"))).toBeUndefined();
    await writer.finish(false);

    const fresh = new UploadWriterPool(1);
    const request = await staged("ended", "x");
    const pending = fresh.placeIfIdle(request);
    expect(pending).toBeInstanceOf(Promise);
    // Stopped within the same turn: the worker has not answered (it has not even started).
    await fresh.stop();
    await expect(pending).rejects.toThrow(/upload worker stopped/);
    expect(await readFile(request.file, "utf8")).toBe("x");
    // The next one starts a worker again.
    expect(await fresh.placeIfIdle(await staged("after", "x"))).toEqual({ placed: true, previousSize: undefined });
    await fresh.stop();
  });
});

describe("UploadWriter.finish with a commit: a whole small body written and placed in one request", () => {
  const own = new UploadWriterPool(1);
  afterAll(() => own.stop());

  /** An upload of `body` into scratch, with its sidecar, and a commit of both to `finish-target/name`, `finish-meta/<name>`. */
  async function upload(name: string, body: string) {
    const scratch = path.join(dir, "finish-scratch");
    await mkdir(scratch, { recursive: true });
    await mkdir(path.join(dir, "finish-target"), { recursive: true });
    const file = path.join(scratch, `${name}.upload`);
    const sidecar = { path: path.join(scratch, `${name}.meta`), s3ETag: undefined, md5AsETag: true };
    const writer = own.begin(file, 0o640, { md5: true });
    expect(writer.write(Buffer.from(body))).toBeUndefined();
    const entry = path.join(dir, "finish-target", name);
    const place = { entry, file, sidecar: { from: sidecar.path, to: path.join(dir, "finish-meta", "cd", name) }, expected: {} };
    return { writer, file, sidecar, place, entry };
  }

  it("places them when the worker carries nothing else, in the one request that writes and finishes the body", async () => {
    const posted = vi.spyOn(Worker.prototype, "postMessage");
    const { writer, sidecar, place, entry } = await upload("k", "hello");
    expect(await writer.finish(false, sidecar, { ...place, expected: { sha256: sha256(Buffer.from("hello")), md5: md5(Buffer.from("hello")) } })).toBe(sha256(Buffer.from("hello")));
    expect(writer.placement).toEqual({ placed: true, previousSize: undefined });
    expect(posted.mock.calls.map(([message]) => (message as { op: string }).op)).toEqual(["open", "write"]);
    posted.mockRestore();
    expect(await readFile(entry, "utf8")).toBe("hello");
    expect(JSON.parse(await readFile(place.sidecar.to, "utf8"))).toMatchObject({ s3ETag: md5(Buffer.from("hello")), size: 5 });
    expect(await readdir(path.join(dir, "finish-scratch"))).toEqual([]);

    const again = await upload("k", "second");
    await again.writer.finish(false, again.sidecar, again.place);
    expect(again.writer.placement).toEqual({ placed: true, previousSize: 5 });
    expect(await readFile(entry, "utf8")).toBe("second");
  });

  it("places nothing when a digest is not the one the client gave: both stay in scratch, for the caller's refusal", async () => {
    for (const expected of [{ sha256: "0".repeat(64) }, { md5: "0".repeat(32) }]) {
      const { writer, file, sidecar, place, entry } = await upload("mismatch", "body");
      await writer.finish(false, sidecar, { ...place, expected });
      expect(writer.placement).toBeUndefined();
      expect(writer.sidecarWritten).toBe(true);
      expect(await readFile(file, "utf8")).toBe("body");
      await expect(stat(entry)).rejects.toMatchObject({ code: "ENOENT" });
      await expect(stat(place.sidecar.to)).rejects.toMatchObject({ code: "ENOENT" });
      await rm(file);
      await rm(sidecar.path);
    }
  });

  it("answers what it found at the entry when it refuses (a directory), moving nothing", async () => {
    await mkdir(path.join(dir, "finish-target", "a-dir"), { recursive: true });
    const { writer, file, sidecar, place } = await upload("a-dir", "x");
    await writer.finish(false, sidecar, place);
    expect(writer.placement).toEqual({ placed: false, refused: "directory" });
    expect(await readFile(file, "utf8")).toBe("x");
    await rm(file);
    await rm(sidecar.path);
  });

  it("asks for no commit while the worker carries another upload, nor with an fsync", async () => {
    const other = own.begin(path.join(dir, "finish-other"), 0o600);
    expect(other.write(new Uint8Array(SLOT_BYTES + 1))).toBeUndefined();
    const busy = await upload("busy", "x");
    await busy.writer.finish(false, busy.sidecar, busy.place);
    expect(busy.writer.placement).toBeUndefined();
    expect(await readFile(busy.file, "utf8")).toBe("x");
    await other.finish(false);

    const durable = await upload("durable", "y");
    await durable.writer.finish(true, durable.sidecar, durable.place);
    expect(durable.writer.placement).toBeUndefined();
    expect(await readFile(durable.file, "utf8")).toBe("y");
  });

  it("counts the uploads in flight: begun and not yet finished or aborted, each once", async () => {
    const counted = new UploadWriterPool(1);
    try {
      const finished = counted.begin(path.join(dir, "count-finished"), 0o600);
      const aborted = counted.begin(path.join(dir, "count-aborted"), 0o600);
      expect(counted.uploads).toBe(2);
      expect(finished.write(Buffer.from("x"))).toBeUndefined();
      await finished.finish(false);
      expect(counted.uploads).toBe(1);
      await aborted.abort();
      await aborted.abort();
      expect(counted.uploads).toBe(0);
    } finally {
      await counted.stop();
    }
  });
});

describe("UploadWriter.appendRange: files on the volume assembled by the worker", () => {
  it("appends ranges of files in order, each digest of the whole exact, the MD5 beside the write whatever the size", async () => {
    const files = [randomBytes(3 * SLOT_BYTES + 11), new Uint8Array(0), randomBytes(700_001), randomBytes(5)].map((bytes, index) => ({
      bytes,
      path: path.join(dir, `source-${index}`),
    }));
    for (const file of files) await writeFile(file.path, file.bytes);
    const writer = pool.begin(path.join(dir, "assembled"), 0o640, { md5: true });
    for (const file of files) {
      const { ino, size } = await stat(file.path);
      // Uneven ranges, so that one file takes several appends and their offsets count.
      for (let offset = 0; offset < size; offset += 1_000_003) {
        await writer.appendRange({ source: file.path, offset, length: Math.min(1_000_003, size - offset), sourceSize: size, sourceIno: ino });
      }
    }
    const whole = Buffer.concat(files.map((file) => file.bytes));
    expect(await writer.finish(true)).toBe(sha256(whole));
    expect(writer.md5).toBe(md5(whole));
    expect((await readFile(path.join(dir, "assembled"))).equals(whole)).toBe(true);
    expect(writer.file.size).toBe(BigInt(whole.byteLength));
  });

  it("fails with SOURCE_CHANGED when a source is not the size or the inode recorded, and the upload then aborts cleanly", async () => {
    const source = path.join(dir, "changing-source");
    await writeFile(source, randomBytes(4096));
    const { ino } = await stat(source);
    const cases = [
      { sourceSize: 4097, sourceIno: ino }, // cut short since it was recorded
      { sourceSize: 4096, sourceIno: ino + 1 }, // another file at its name
    ];
    for (const [index, recorded] of cases.entries()) {
      const target = path.join(dir, `changed-${index}`);
      const writer = pool.begin(target, 0o640);
      await expect(writer.appendRange({ source, offset: 0, length: 4096, ...recorded })).rejects.toMatchObject({ code: SOURCE_CHANGED });
      await expect(writer.finish(false)).rejects.toMatchObject({ code: SOURCE_CHANGED });
      await writer.abort();
      expect((await stat(target)).size).toBe(0); // nothing of the source was written
    }
    const missing = pool.begin(path.join(dir, "missing-source"), 0o640);
    await expect(missing.appendRange({ source: path.join(dir, "no-such-source"), offset: 0, length: 1, sourceSize: 1, sourceIno: undefined })).rejects.toMatchObject({
      code: "ENOENT",
    });
    await missing.abort();
    expect(pool.uploads).toBe(0);
  });

  it("refuses a symlink as a source, and an append after streamed bytes", async () => {
    const target = path.join(dir, "symlink-target");
    await writeFile(target, randomBytes(100));
    await symlink(target, path.join(dir, "symlink-source"));
    const linked = pool.begin(path.join(dir, "via-symlink"), 0o640);
    await expect(linked.appendRange({ source: path.join(dir, "symlink-source"), offset: 0, length: 100, sourceSize: 100, sourceIno: undefined })).rejects.toMatchObject({
      code: "ELOOP",
    });
    await linked.abort();
    const mixed = pool.begin(path.join(dir, "mixed-append"), 0o640);
    void mixed.write(new Uint8Array(10));
    await expect(mixed.appendRange({ source: target, offset: 0, length: 100, sourceSize: 100, sourceIno: undefined })).rejects.toThrow(/out of order/);
    await mixed.abort();
    // Streamed bytes whose MD5 runs on a second worker, all handed over and written: that worker would miss the range.
    const apart = pool.begin(path.join(dir, "md5-apart-append"), 0o640, { md5: true });
    await apart.write(new Uint8Array(SLOT_BYTES));
    await new Promise((resolve) => setTimeout(resolve, 200)); // both workers give the slot back
    await expect(apart.appendRange({ source: target, offset: 0, length: 100, sourceSize: 100, sourceIno: undefined })).rejects.toThrow(/out of order/);
    await apart.abort();
  });
});

describe("UploadWriter at an offset of an existing file, and hashing only", () => {
  it("writes streamed bytes and appended ranges into an existing file from the offset, leaving the bytes around them", async () => {
    const file = path.join(dir, "staged-object");
    await writeFile(file, Buffer.alloc(4 * SLOT_BYTES, 0x2d));
    const streamed = randomBytes(SLOT_BYTES + 17);
    const writer = pool.begin(file, 0o640, { md5: true, at: 1000 });
    await writer.write(streamed);
    expect(await writer.finish(false)).toBe(sha256(streamed));
    expect(writer.md5).toBe(md5(streamed));
    const source = path.join(dir, "range-source");
    const appended = randomBytes(50_000);
    await writeFile(source, appended);
    const appending = pool.begin(file, 0o640, { at: 3 * SLOT_BYTES });
    await appending.appendRange({ source, offset: 0, length: appended.byteLength, sourceSize: undefined, sourceIno: (await stat(source)).ino });
    await appending.finish(true);
    const expected = Buffer.alloc(4 * SLOT_BYTES, 0x2d);
    streamed.copy(expected, 1000);
    appended.copy(expected, 3 * SLOT_BYTES);
    expect((await readFile(file)).equals(expected)).toBe(true);
    // Never creates: at an offset of a file that is not there, the upload fails with ENOENT.
    const missing = pool.begin(path.join(dir, "no-such-object"), 0o640, { at: 0 });
    await expect(missing.write(new Uint8Array(SLOT_BYTES)) ?? missing.finish(false)).rejects.toMatchObject({ code: "ENOENT" });
    await missing.abort();
  });

  it("hashes appended ranges without writing a byte, and fails with SOURCE_CHANGED for a range the file no longer holds", async () => {
    const file = path.join(dir, "hashed-only");
    const bytes = randomBytes(2 * SLOT_BYTES + 5);
    await writeFile(file, bytes);
    const { ino, mtimeMs } = await stat(file);
    const hashing = pool.begin(file, 0o640, { hashOnly: true });
    await hashing.appendRange({ source: file, offset: 0, length: SLOT_BYTES, sourceSize: undefined, sourceIno: ino });
    await hashing.appendRange({ source: file, offset: SLOT_BYTES, length: SLOT_BYTES + 5, sourceSize: undefined, sourceIno: ino });
    expect(await hashing.finish(false)).toBe(sha256(bytes));
    expect((await stat(file)).mtimeMs).toBe(mtimeMs);
    expect((await readFile(file)).equals(bytes)).toBe(true);
    const beyond = pool.begin(file, 0o640, { hashOnly: true });
    await expect(beyond.appendRange({ source: file, offset: bytes.byteLength - 10, length: 20, sourceSize: undefined, sourceIno: ino })).rejects.toMatchObject({ code: SOURCE_CHANGED });
    await beyond.abort();
  });
});

describe("flushing behind the writes (an upload that ends in an fsync)", () => {
  const flushing = new UploadWriterPool(1);
  afterAll(() => flushing.stop());

  it("writes every byte of a body several flushes long, streamed or appended, with a finish and an abort arriving mid-flush", async () => {
    const body = randomBytes(FLUSH_BEHIND_BYTES * 2 + 12_345);
    for (const fsync of [true, false]) {
      const streamed = flushing.begin(path.join(dir, `flushed-${fsync}`), 0o640, { flushBehind: true });
      for (let offset = 0; offset < body.byteLength; offset += 1 << 20) await streamed.write(body.subarray(offset, offset + (1 << 20)));
      // Posted right behind the last write, so it reaches the worker while that write's flush runs.
      expect(await streamed.finish(fsync)).toBe(sha256(body));
      expect((await readFile(path.join(dir, `flushed-${fsync}`))).equals(body)).toBe(true);
    }
    const source = path.join(dir, "flush-source");
    await writeFile(source, body);
    const appended = flushing.begin(path.join(dir, "flushed-appended"), 0o640, { md5: true, flushBehind: true });
    const { ino } = await stat(source);
    for (let offset = 0; offset < body.byteLength; offset += FLUSH_BEHIND_BYTES) {
      const length = Math.min(FLUSH_BEHIND_BYTES, body.byteLength - offset);
      await appended.appendRange({ source, offset, length, sourceSize: body.byteLength, sourceIno: ino });
    }
    expect(await appended.finish(true)).toBe(sha256(body));
    expect(appended.md5).toBe(md5(body));

    const aborted = flushing.begin(path.join(dir, "flush-aborted"), 0o640, { flushBehind: true });
    await aborted.appendRange({ source, offset: 0, length: FLUSH_BEHIND_BYTES, sourceSize: body.byteLength, sourceIno: ino });
    await within(10_000, aborted.abort()); // answered once the flush is done, never lost
    expect(flushing.uploads).toBe(0);
    // The worker goes on: the next upload is written whole.
    const next = flushing.begin(path.join(dir, "after-flush-abort"), 0o640, { flushBehind: true });
    await next.write(body.subarray(0, 1000));
    expect(await next.finish(true)).toBe(sha256(body.subarray(0, 1000)));
  });
});
