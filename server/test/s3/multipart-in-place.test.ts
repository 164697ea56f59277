// Multipart parts written into the upload's staged object in place, and completions that commit that
// object without writing a part again: what lands where, what a completion waits for, and every way the
// in-place path must step aside (a part that does not fit, a number claimed by another writer, the
// object fenced off, a part beyond the list) or refuse (a body not of its declared length, a part
// sent again meanwhile, a completion already under way), each leaving the upload as it was.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MultipartUploads, type PartRecord } from "../../src/s3/multipart.js";
import { parseKey } from "../../src/storage/names.js";
import type { ArtifactStore } from "../../src/storage/store.js";
import { UploadWriter } from "../../src/storage/upload-writers.js";
import { silentLogger } from "../../src/log.js";
import { createRuntime, type Runtime } from "../../src/runtime.js";
import { testStore } from "../support/store.js";

const MiB = 1 << 20;
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");
const body = (data: Buffer) => Readable.from([data]);

async function setUp(options: { fsync?: boolean; runtime?: Runtime } = {}) {
  const store = await testStore(options);
  const uploads = new MultipartUploads(store, store.layout.internalDir);
  await uploads.init();
  const uploadId = await uploads.create({ namespace: "team-a", key: "model.bin", objectKey: "model.bin", bucket: "team-a" });
  const dir = path.join(uploads.dir, uploadId);
  /** UploadPart, its length declared unless `undeclared`. */
  const put = (partNumber: number, data: Buffer, undeclared?: "undeclared") => uploads.putPart(uploadId, partNumber, body(data), {}, undeclared === undefined ? data.length : undefined);
  const complete = (parts: readonly PartRecord[], precondition?: () => void) =>
    uploads.complete(
      uploadId,
      { namespace: "team-a", key: parseKey("model.bin") },
      parts.map((part) => ({ partNumber: part.partNumber, etag: `"${part.md5}"` })),
      precondition,
    );
  return { store, uploads, uploadId, dir, put, complete };
}

/** The claims another server holds: a host that is not this one. */
const OTHER_SERVER = "other-host.0123456789abcdef.";

/** An upload holding part 1 (5 MiB) and part 2 (10 bytes) in place, ready to complete. */
async function withTwoParts() {
  const setup = await setUp();
  const parts = [await setup.put(1, Buffer.alloc(5 * MiB, 1)), await setup.put(2, Buffer.alloc(10, 2))];
  return { ...setup, parts };
}

async function stored(store: ArtifactStore): Promise<Buffer> {
  return fs.readFile(store.layout.artifactPath("team-a", parseKey("model.bin")));
}

/** Every range the upload workers are asked to read, by file name. */
function watchReads(): string[] {
  const sources: string[] = [];
  const { appendRange } = Object.getOwnPropertyDescriptors(UploadWriter.prototype);
  vi.spyOn(UploadWriter.prototype, "appendRange").mockImplementation(function (this: UploadWriter, range) {
    sources.push(path.basename(range.source));
    return (appendRange?.value as UploadWriter["appendRange"]).call(this, range);
  });
  return sources;
}

const pending = async (promise: Promise<unknown>, ms: number): Promise<boolean> => {
  const outcome = await Promise.race([promise.then(() => "settled", () => "settled"), new Promise((resolve) => setTimeout(() => resolve("pending"), ms))]);
  return outcome === "pending";
};

afterEach(() => {
  vi.restoreAllMocks();
});

describe("multipart parts in place", () => {
  it("parts sent out of order land at their places; the completion commits the staged object itself, writing no part again", async () => {
    const { store, dir, put, complete } = await setUp();
    const data = [Buffer.alloc(5 * MiB, 1), Buffer.alloc(5 * MiB, 2), Buffer.alloc(1000, 3)];
    const parts = [await put(2, data[1]!), await put(1, data[0]!), await put(3, data[2]!)].sort((a, b) => a.partNumber - b.partNumber);
    expect(parts.map((part) => part.at)).toEqual([0, 5 * MiB, 10 * MiB]);
    expect((await fs.readdir(dir)).filter((name) => /^part-\d+$/.test(name))).toEqual([]);
    const { ino } = await fs.stat(path.join(dir, "object"));
    const reads = watchReads();
    const result = await complete(parts);
    const whole = Buffer.concat(data);
    expect(result.sha256).toBe(sha256(whole));
    // Read once, for its SHA-256, and never copied: the object at the key is the staged file.
    expect(new Set(reads)).toEqual(new Set(["object.completing"]));
    expect((await fs.stat(store.layout.artifactPath("team-a", parseKey("model.bin")))).ino).toBe(ino);
    expect((await stored(store)).equals(whole)).toBe(true);
    const read = await store.read("team-a", parseKey("model.bin"));
    expect("sha256" in read ? read.sha256 : undefined).toBe(sha256(whole));
    if ("release" in read) await read.release();
    await expect(fs.stat(dir)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("a last part with a file of its own (no length declared) is the one part the completion copies", async () => {
    const { store, dir, put, complete } = await setUp();
    const data = [Buffer.alloc(5 * MiB, 1), Buffer.alloc(5 * MiB, 2), Buffer.alloc(777, 3)];
    const parts = [await put(1, data[0]!), await put(2, data[1]!), await put(3, data[2]!, "undeclared")];
    expect(parts.map((part) => part.at)).toEqual([0, 5 * MiB, undefined]);
    expect(await fs.readdir(dir)).toContain("part-00003");
    const reads = watchReads();
    await complete(parts);
    expect(reads.filter((name) => name === "part-00003")).toHaveLength(1);
    expect(reads.every((name) => name === "part-00003" || name === "object.completing")).toBe(true);
    expect((await stored(store)).equals(Buffer.concat(data))).toBe(true);
  });

  it("a part longer than the upload's part size, or whose number another writer holds, gets a file of its own; the completion copies them all", async () => {
    const { store, dir, put, complete } = await setUp();
    const data = [Buffer.alloc(5 * MiB, 1), Buffer.alloc(6 * MiB, 2), Buffer.alloc(5 * MiB, 3), Buffer.alloc(10, 4)];
    const first = await put(1, data[0]!);
    const longer = await put(2, data[1]!);
    // Another writer (another server on the volume) is writing part 3 in place at this moment.
    await fs.writeFile(path.join(dir, "claim-part-00003"), OTHER_SERVER);
    const claimed = await put(3, data[2]!);
    await fs.rm(path.join(dir, "claim-part-00003"));
    const last = await put(4, data[3]!);
    expect([first.at, longer.at, claimed.at, last.at]).toEqual([0, undefined, undefined, 15 * MiB]);
    const reads = watchReads();
    await complete([first, longer, claimed, last]);
    expect(reads).toEqual(expect.arrayContaining(["object.completing", "part-00002", "part-00003"]));
    expect((await stored(store)).equals(Buffer.concat(data))).toBe(true);
  });

  it("a part sent again keeps the one in place until it is whole: a failed retry loses nothing, a whole one replaces it", async () => {
    const { store, uploads, uploadId, dir, put, complete } = await setUp();
    const one = await put(1, Buffer.alloc(5 * MiB, 1));
    const oldTwo = await put(2, Buffer.alloc(100, 2));
    // A retry whose bytes are not what the client said: refused, and part 2 is still the first one.
    await expect(uploads.putPart(uploadId, 2, body(Buffer.alloc(100, 9)), { expectedMd5: "0".repeat(32) }, 100)).rejects.toMatchObject({ code: "BadDigest" });
    expect((await uploads.parts(uploadId)).find((part) => part.partNumber === 2)).toEqual(oldTwo);
    expect((await fs.readFile(path.join(dir, "object"))).subarray(5 * MiB).equals(Buffer.alloc(100, 2))).toBe(true);
    const newTwo = await put(2, Buffer.alloc(100, 9));
    expect(newTwo.at).toBeUndefined();
    await expect(complete([one, oldTwo])).rejects.toMatchObject({ code: "InvalidPart" });
    expect(await fs.readdir(dir)).toContain("object");
    await complete([one, newTwo]);
    expect((await stored(store)).equals(Buffer.concat([Buffer.alloc(5 * MiB, 1), Buffer.alloc(100, 9)]))).toBe(true);
  });

  it("a body shorter than its declared length is IncompleteBody, a longer one is refused; neither becomes a part nor touches the next part's bytes", async () => {
    const { uploads, uploadId, dir, put } = await setUp();
    await put(2, Buffer.from("BBBBBBBB"));
    await expect(uploads.putPart(uploadId, 1, body(Buffer.from("AAAA")), {}, 8)).rejects.toMatchObject({ status: 400, code: "IncompleteBody" });
    await expect(uploads.putPart(uploadId, 1, body(Buffer.from("AAAAAAAAAAAA")), {}, 8)).rejects.toMatchObject({ status: 413 });
    expect((await uploads.parts(uploadId)).map((part) => part.partNumber)).toEqual([2]);
    expect((await fs.readFile(path.join(dir, "object"))).subarray(8, 16).toString()).toBe("BBBBBBBB");
    expect((await fs.readdir(dir)).filter((name) => name.startsWith("claim-"))).toEqual([]);
  });

  it("the completion waits for a part still being written into the object, keeps that part out of the object, and answers with the list checked again", async () => {
    const { store, uploads, uploadId, dir, put, complete } = await setUp();
    const data = [Buffer.alloc(5 * MiB, 1), Buffer.alloc(5 * MiB, 2)];
    const parts = [await put(1, data[0]!), await put(2, data[1]!)];
    const { ino } = await fs.stat(path.join(dir, "object"));
    // Part 3 is on its way in place (declared, half sent) when the client completes with parts 1 and 2.
    const slow = new PassThrough();
    const third = uploads.putPart(uploadId, 3, slow, {}, 5 * MiB);
    slow.write(Buffer.alloc(MiB, 3));
    await vi.waitFor(async () => expect(await fs.readdir(dir)).toContain("claim-part-00003"));
    const completing = complete(parts);
    expect(await pending(completing, 300)).toBe(true);
    // Meanwhile the object is fenced off: a part arriving now gets a file of its own.
    expect(await fs.readdir(dir)).toContain("object.completing");
    expect((await put(4, Buffer.alloc(10, 4))).at).toBeUndefined();
    slow.end(Buffer.alloc(4 * MiB, 3));
    expect((await third).at).toBe(10 * MiB);
    // Part 3 sits in the object past the end of the list: the completion copies rather than cut it off.
    await completing;
    expect((await stored(store)).equals(Buffer.concat(data))).toBe(true);
    expect((await fs.stat(store.layout.artifactPath("team-a", parseKey("model.bin")))).ino).not.toBe(ino);
  });

  it("a part rewritten while the completion waits makes it InvalidPart; the object is put back and a retry completes", async () => {
    const { store, uploads, uploadId, dir, put, complete } = await setUp();
    const one = await put(1, Buffer.alloc(5 * MiB, 1));
    const two = await put(2, Buffer.alloc(5 * MiB, 2));
    const slow = new PassThrough();
    const third = uploads.putPart(uploadId, 3, slow, {}, 5 * MiB);
    slow.write(Buffer.alloc(MiB, 3));
    await vi.waitFor(async () => expect(await fs.readdir(dir)).toContain("claim-part-00003"));
    const completing = complete([one, two]);
    await vi.waitFor(async () => expect(await fs.readdir(dir)).toContain("object.completing"));
    // Part 2 sent again with other bytes while the completion waits: a file of its own, a new ETag.
    const twoAgain = await put(2, Buffer.alloc(5 * MiB, 7));
    expect(twoAgain.at).toBeUndefined();
    slow.end(Buffer.alloc(4 * MiB, 3));
    await third;
    await expect(completing).rejects.toMatchObject({ code: "InvalidPart" });
    expect((await fs.readdir(dir)).filter((name) => name.startsWith("object") || name.startsWith("claim-"))).toEqual(["object"]);
    await complete([one, twoAgain]);
    expect((await stored(store)).equals(Buffer.concat([Buffer.alloc(5 * MiB, 1), Buffer.alloc(5 * MiB, 7)]))).toBe(true);
  });

  it("claims that no live server holds do not hold a completion up: one not renewed for 30 s, one of an earlier start on this host", async () => {
    const { store, dir, parts, complete } = await withTwoParts();
    const stale = path.join(dir, "claim-part-00007");
    await fs.writeFile(stale, OTHER_SERVER);
    const longAgo = new Date(Date.now() - 60_000);
    await fs.utimes(stale, longAgo, longAgo);
    // Fresh, but naming a start of this host that is not this one: the server restarted since.
    await fs.writeFile(path.join(dir, "claim-part-00008"), `${store.layout.tempNames.hostPrefix}0123456789abcdef.`);
    const completing = complete(parts);
    expect(await pending(completing, 2_000)).toBe(false);
    await completing;
    expect((await stored(store)).length).toBe(5 * MiB + 10);
  });

  it("one of several server processes on a host takes another start's claim there for a sibling's, live until it goes stale", async () => {
    const sibling = await setUp({ runtime: createRuntime({ logger: silentLogger, onlyProcessOnHost: false }) });
    const parts = [await sibling.put(1, Buffer.alloc(5 * MiB, 1)), await sibling.put(2, Buffer.alloc(10, 2))];
    const claim = path.join(sibling.dir, "claim-part-00003");
    await fs.writeFile(claim, `${sibling.store.layout.tempNames.hostPrefix}0123456789abcdef.`);
    const completing = sibling.complete(parts);
    expect(await pending(completing, 500)).toBe(true);
    const longAgo = new Date(Date.now() - 60_000);
    await fs.utimes(claim, longAgo, longAgo);
    await completing;
    expect((await stored(sibling.store)).length).toBe(5 * MiB + 10);
  });

  it("a live claim of another server holds the completion until it is released", async () => {
    const { store, dir, parts, complete } = await withTwoParts();
    const claim = path.join(dir, "claim-part-00003");
    await fs.writeFile(claim, OTHER_SERVER);
    const completing = complete(parts);
    expect(await pending(completing, 500)).toBe(true);
    await fs.rm(claim);
    await completing;
    expect((await stored(store)).length).toBe(5 * MiB + 10);
  });

  it("a completion while another is under way is OperationAborted; one abandoned by a stopped server is taken over, its fence lifted", async () => {
    const { store, dir, parts, complete } = await withTwoParts();
    const claim = path.join(dir, "claim-complete");
    await fs.writeFile(claim, OTHER_SERVER);
    await expect(complete(parts)).rejects.toMatchObject({ status: 409, code: "OperationAborted" });
    // That server stopped mid-completion, its object fenced off.
    await fs.rename(path.join(dir, "object"), path.join(dir, "object.completing"));
    const longAgo = new Date(Date.now() - 60_000);
    await fs.utimes(claim, longAgo, longAgo);
    await complete(parts);
    expect((await stored(store)).length).toBe(5 * MiB + 10);
  });

  it("a completion its precondition refuses leaves the upload as it was; the retry commits", async () => {
    const { store, uploads, uploadId, dir, put, complete } = await setUp();
    const parts = [await put(1, Buffer.alloc(5 * MiB, 1)), await put(2, Buffer.alloc(10, 2), "undeclared")];
    const refuse = () => {
      throw Object.assign(new Error("precondition"), { status: 412, code: "PreconditionFailed" });
    };
    await expect(complete(parts, refuse)).rejects.toMatchObject({ code: "PreconditionFailed" });
    expect((await fs.readdir(dir)).filter((name) => name.startsWith("object") || name.startsWith("claim-"))).toEqual(["object"]);
    expect((await uploads.parts(uploadId)).map((part) => [part.partNumber, part.at])).toEqual([
      [1, 0],
      [2, undefined],
    ]);
    await expect(fs.stat(store.layout.artifactPath("team-a", parseKey("model.bin")))).rejects.toMatchObject({ code: "ENOENT" });
    await complete(parts);
    expect((await stored(store)).equals(Buffer.concat([Buffer.alloc(5 * MiB, 1), Buffer.alloc(10, 2)]))).toBe(true);
  });

  it("with FSYNC=true the completion flushes the object before committing it", async () => {
    const { store, put, complete } = await setUp({ fsync: true });
    const parts = [await put(1, Buffer.alloc(5 * MiB, 1)), await put(2, Buffer.alloc(10, 2), "undeclared")];
    const probe = await fs.open(path.join(store.layout.internalDir, "probe"), "w");
    const fileHandle = Object.getPrototypeOf(probe) as { datasync(): Promise<void> };
    await probe.close();
    const datasyncs = vi.spyOn(fileHandle, "datasync");
    await complete(parts);
    expect(datasyncs).toHaveBeenCalledTimes(1);
    expect((await stored(store)).length).toBe(5 * MiB + 10);
  });

  it("an upload begun without a staged object (by an earlier version) keeps its parts in files and completes by copying", async () => {
    const { store, dir, put, complete } = await setUp();
    await fs.rm(path.join(dir, "object"));
    const parts = [await put(1, Buffer.alloc(5 * MiB, 1)), await put(2, Buffer.alloc(10, 2))];
    expect(parts.map((part) => part.at)).toEqual([undefined, undefined]);
    await complete(parts);
    expect((await stored(store)).equals(Buffer.concat([Buffer.alloc(5 * MiB, 1), Buffer.alloc(10, 2)]))).toBe(true);
  });
});
