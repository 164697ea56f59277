// The file calls of one small write (commit.ts): each is a round trip through libuv's thread pool, so
// the commit makes none it does not need, and still leaves no temporary file behind whatever the
// outcome, and still refuses a write that ate into the free-space reserve.
import { createHash } from "node:crypto";
import nodeFs, { rmdirSync, rmSync } from "node:fs";
import fs from "node:fs/promises";
import { Worker } from "node:worker_threads";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { HttpError } from "../src/errors.js";
import { silentLogger } from "../src/log.js";
import { createRuntime, type Runtime } from "../src/runtime.js";
import { parseKey } from "../src/storage/names.js";
import { ArtifactStore } from "../src/storage/store.js";
import { UploadWriter } from "../src/storage/upload-writers.js";
import { tempDir } from "./support/harness.js";

let runtime: Runtime;
let store: ArtifactStore;

async function storeWith(minFreeBytes: number, fsync = true): Promise<ArtifactStore> {
  const made = new ArtifactStore({
    root: await tempDir("small-put"),
    maxUploadBytes: 1 << 20,
    maxArchiveExpandedBytes: 1 << 20,
    minFreeBytes,
    namespaceQuotaBytes: 0,
    fsync,
    staleTempMs: 60_000,
    runtime,
  });
  await made.init();
  return made;
}

beforeAll(async () => {
  runtime = createRuntime({ logger: silentLogger, uploadWorkers: 1 });
  store = await storeWith(0);
});

afterAll(() => runtime.stop());

afterEach(() => {
  vi.restoreAllMocks();
});

async function* bodyOf(text: string): AsyncGenerator<Uint8Array> {
  yield await Promise.resolve(Buffer.from(text));
}

/** The calls of fs.promises made with a path in the volume's temporary directory, by name. */
function tempFileCalls(): string[] {
  const calls: string[] = [];
  for (const name of ["stat", "lstat", "rm", "unlink", "writeFile", "open"] as const) {
    const original = fs[name] as (...args: unknown[]) => Promise<unknown>;
    vi.spyOn(fs, name).mockImplementation(((...args: unknown[]) => {
      if (typeof args[0] === "string" && args[0].startsWith(store.layout.tmpDir)) calls.push(name);
      return original(...args);
    }) as never);
  }
  return calls;
}

describe("a small PUT", () => {
  it("neither stats nor removes its temporary file once it is renamed into place, nor writes its sidecar itself", async () => {
    await store.put({ namespace: "team-a", key: parseKey("warm/k"), body: bodyOf("warm") });
    const calls = tempFileCalls();
    await store.put({ namespace: "team-a", key: parseKey("warm/k2"), body: bodyOf("hello") });
    expect(calls).toEqual([]);
    // The sidecar names the file as it is on disk: its digest is served without reading the bytes again.
    const metaPath = store.layout.metaPath("team-a", "warm/k2");
    const sidecar = await store.sidecars.read(metaPath);
    const onDisk = await fs.stat(`${store.options.root}/team-a/warm/k2`, { bigint: true });
    expect(sidecar).toMatchObject({ size: 5, ino: String(onDisk.ino), mtimeNs: String(onDisk.mtimeNs) });
  });

  it("records an S3 write's MD5 as its ETag in the sidecar the upload worker wrote", async () => {
    const written = await store.put({ namespace: "team-a", key: parseKey("s3/k"), body: bodyOf("hello"), md5: true });
    expect(written.s3ETag).toBe("5d41402abc4b2a76b9719d911017c592");
    expect((await store.sidecars.read(store.layout.metaPath("team-a", "s3/k")))?.s3ETag).toBe("5d41402abc4b2a76b9719d911017c592");
    expect(await fs.readdir(store.layout.tmpDir)).toEqual([]);
  });

  // The test volumes are on a local file system, where the free-space check's statfs runs on the event loop.
  it("asks the volume for its free space once when it leaves ample room above the reserve", async () => {
    const statfs = vi.spyOn(nodeFs, "statfsSync");
    await store.put({ namespace: "team-a", key: parseKey("room"), body: bodyOf("hello"), declaredSize: 5 });
    expect(statfs).toHaveBeenCalledTimes(1);
  });

  it("asks again after staging when little room was left, and refuses a write that ate into the reserve (507, nothing stored)", async () => {
    const tight = await storeWith(1000);
    const original = nodeFs.statfsSync.bind(nodeFs);
    // 100 bytes above the reserve before the body is staged, 100 below it afterwards (another writer).
    const free = [1100, 900];
    const statfs = vi.spyOn(nodeFs, "statfsSync").mockImplementation(((location: string) => ({ ...original(location), bsize: 1, bavail: free.shift() ?? 0 })) as never);
    const refused = await tight.put({ namespace: "team-a", key: parseKey("tight"), body: bodyOf("hello"), declaredSize: 5 }).catch((error: unknown) => error);
    expect(statfs).toHaveBeenCalledTimes(2);
    expect((refused as HttpError).status).toBe(507);
    vi.restoreAllMocks();
    expect(await fs.readdir(tight.layout.tmpDir)).toEqual([]);
    await expect(fs.stat(`${tight.options.root}/team-a/tight`)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("leaves no temporary file when it is linked into place (create-only), refused, or fails its checksum", async () => {
    await store.put({ namespace: "team-a", key: parseKey("once"), body: bodyOf("first"), createOnly: true });
    const refused = await store.put({ namespace: "team-a", key: parseKey("once"), body: bodyOf("second"), createOnly: true }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(HttpError);
    expect((refused as HttpError).status).toBe(412);
    const mismatch = await store.put({ namespace: "team-a", key: parseKey("sum"), body: bodyOf("x"), expectedSha256: "0".repeat(64) }).catch((error: unknown) => error);
    expect((mismatch as HttpError).status).toBe(400);
    expect(await fs.readFile(`${store.options.root}/team-a/once`, "utf8")).toBe("first");
    expect(await fs.readdir(store.layout.tmpDir)).toEqual([]);
  });
});

/** The calls of fs.promises.lstat and rename made with a path ending in `suffix`. */
function callsEndingIn(suffix: string): string[] {
  const calls: string[] = [];
  for (const name of ["lstat", "rename"] as const) {
    const original = fs[name] as (...args: unknown[]) => Promise<unknown>;
    vi.spyOn(fs, name).mockImplementation(((...args: unknown[]) => {
      if (args.slice(0, 2).some((arg) => typeof arg === "string" && arg.endsWith(suffix))) calls.push(name);
      return original(...args);
    }) as never);
  }
  return calls;
}

/** Whether the sidecar at `key` describes the file at `key` now (its inode, size and time). */
async function sidecarDescribesFileOn(key: string, on: ArtifactStore): Promise<boolean> {
  const sidecar = await on.sidecars.read(on.layout.metaPath("team-a", key));
  const file = await fs.stat(`${on.options.root}/team-a/${key}`, { bigint: true });
  return sidecar?.ino === String(file.ino) && sidecar.size === Number(file.size) && sidecar.mtimeNs === String(file.mtimeNs);
}

/**
 * The two ways a plain small PUT's commit reaches the upload worker (FSYNC off): in the request that
 * writes its body, when it is the only upload in flight; or in one request after its body's write,
 * when another upload began meanwhile and the worker is idle again by its commit. `beforeCommit`
 * runs `hook` with the commit's request just before it is sent, and `commitFails` makes that send fail.
 */
const ways = [
  {
    name: "in the request that writes its body (the only upload in flight)",
    alone: () => {},
    beforeCommit: (hook: (request: { file: string; entry: string }) => void) => {
      // eslint-disable-next-line @typescript-eslint/unbound-method -- called with its `this` below
      const original = UploadWriter.prototype.finish;
      vi.spyOn(UploadWriter.prototype, "finish").mockImplementation(function (this: UploadWriter, fsync, sidecar, place) {
        if (place !== undefined) hook(place);
        return original.call(this, fsync, sidecar, place);
      });
    },
    commitFails: () => {
      // eslint-disable-next-line @typescript-eslint/unbound-method -- called with its `this` below
      const original = UploadWriter.prototype.finish;
      vi.spyOn(UploadWriter.prototype, "finish").mockImplementation(function (this: UploadWriter, fsync, sidecar, place) {
        // A worker that ends after writing the file and its sidecar, before the commit: the upload fails
        // (UploadWriter.receive), with both in scratch.
        if (place !== undefined) return original.call(this, fsync, sidecar).then(() => Promise.reject(new Error("the upload worker stopped: exit code 1")));
        return original.call(this, fsync, sidecar, place);
      });
    },
  },
  {
    name: "in one request after its body's write (another upload began meanwhile)",
    alone: () => vi.spyOn(runtime.uploadWriters, "uploads", "get").mockReturnValue(2),
    beforeCommit: (hook: (request: { file: string; entry: string }) => void) => {
      const original = runtime.uploadWriters.placeIfIdle.bind(runtime.uploadWriters);
      vi.spyOn(runtime.uploadWriters, "placeIfIdle").mockImplementation((request) => {
        hook(request);
        return original(request);
      });
    },
    commitFails: () => vi.spyOn(runtime.uploadWriters, "placeIfIdle").mockImplementation(() => Promise.reject(new Error("the upload worker stopped: exit code 1"))),
  },
];

describe.each(ways)("a plain small PUT's commit, made by the idle upload worker $name (FSYNC off)", (way) => {
  let store: ArtifactStore;
  beforeAll(async () => {
    store = await storeWith(0, false);
  });
  beforeEach(() => {
    way.alone();
  });
  const sidecarDescribesFile = (key: string) => sidecarDescribesFileOn(key, store);

  it("looks up, renames the sidecar and the file there: none of them through the thread pool", async () => {
    const usedBefore = await store.usage.get("team-a");
    const calls = callsEndingIn("/handoff-k");
    const first = await store.put({ namespace: "team-a", key: parseKey("handoff/handoff-k"), body: bodyOf("first!") });
    const second = await store.put({ namespace: "team-a", key: parseKey("handoff/handoff-k"), body: bodyOf("second") });
    expect(calls).toEqual([]);
    expect([first.created, second.created]).toEqual([true, false]);
    expect(await fs.readFile(`${store.options.root}/team-a/handoff/handoff-k`, "utf8")).toBe("second");
    expect(await sidecarDescribesFile("handoff/handoff-k")).toBe(true);
    // The replaced file's 6 bytes were given back: 6 more in all, not 12.
    expect(await store.usage.get("team-a")).toBe(usedBefore + 6);
    expect(await fs.readdir(store.layout.tmpDir)).toEqual([]);
  });

  it("refuses a directory artifact or a symlink at the key (409), placing no sidecar and changing nothing there", async () => {
    await store.put({ namespace: "team-a", key: parseKey("taken/dir/inner"), body: bodyOf("inner") });
    await fs.symlink("/etc", `${store.options.root}/team-a/taken/link`);
    for (const key of ["taken/dir", "taken/link"]) {
      const refused = await store.put({ namespace: "team-a", key: parseKey(key), body: bodyOf("file") }).catch((error: unknown) => error);
      expect((refused as HttpError).status).toBe(409);
      await expect(fs.stat(store.layout.metaPath("team-a", key))).rejects.toMatchObject({ code: "ENOENT" });
    }
    expect(await fs.readFile(`${store.options.root}/team-a/taken/dir/inner`, "utf8")).toBe("inner");
    expect(await fs.readlink(`${store.options.root}/team-a/taken/link`)).toBe("/etc");
    expect(await fs.readdir(store.layout.tmpDir)).toEqual([]);
    await fs.rm(`${store.options.root}/team-a/taken`, { recursive: true });
  });

  it("refuses a body whose digest is not the client's (400), leaving the artifact at the key as it was", async () => {
    await store.put({ namespace: "team-a", key: parseKey("digest/k"), body: bodyOf("kept") });
    for (const expected of [{ expectedSha256: "0".repeat(64) }, { expectedMd5: "0".repeat(32) }]) {
      const refused = await store.put({ namespace: "team-a", key: parseKey("digest/k"), body: bodyOf("other"), ...expected }).catch((error: unknown) => error);
      expect((refused as HttpError).status).toBe(400);
    }
    expect(await fs.readFile(`${store.options.root}/team-a/digest/k`, "utf8")).toBe("kept");
    expect(await sidecarDescribesFile("digest/k")).toBe(true);
    expect(await fs.readdir(store.layout.tmpDir)).toEqual([]);
    // With the digests it has, the same body is stored.
    const digestOf = (algorithm: string) => createHash(algorithm).update("other").digest("hex");
    await store.put({ namespace: "team-a", key: parseKey("digest/k"), body: bodyOf("other"), expectedSha256: digestOf("sha256"), expectedMd5: digestOf("md5") });
    expect(await fs.readFile(`${store.options.root}/team-a/digest/k`, "utf8")).toBe("other");
    expect(await sidecarDescribesFile("digest/k")).toBe(true);
  });

  it("makes the parent again when a peer's delete removed it before the rename, and stores the file there", async () => {
    await store.put({ namespace: "team-a", key: parseKey("pruned/sub/first"), body: bodyOf("first") });
    await fs.rm(`${store.options.root}/team-a/pruned/sub/first`);
    let removed = false;
    way.beforeCommit(() => {
      // The parent is held open; a peer removes it (empty) just before the worker renames into it.
      rmdirSync(`${store.options.root}/team-a/pruned/sub`);
      removed = true;
    });
    const written = await store.put({ namespace: "team-a", key: parseKey("pruned/sub/k"), body: bodyOf("again") });
    expect(removed).toBe(true);
    expect(written.created).toBe(true);
    expect(await fs.readFile(`${store.options.root}/team-a/pruned/sub/k`, "utf8")).toBe("again");
    expect(await sidecarDescribesFile("pruned/sub/k")).toBe(true);
    expect(await fs.readdir(store.layout.tmpDir)).toEqual([]);
  });

  it("fails, storing nothing and leaving no temporary file, when the worker ends before it answers", async () => {
    way.commitFails();
    const failed = await store.put({ namespace: "team-a", key: parseKey("ended/k"), body: bodyOf("lost") }).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(Error);
    expect(failed).not.toBeInstanceOf(HttpError);
    await expect(fs.stat(`${store.options.root}/team-a/ended/k`)).rejects.toMatchObject({ code: "ENOENT" });
    expect(await fs.readdir(store.layout.tmpDir)).toEqual([]);
  });
});

describe("a plain small PUT's commit on the upload worker (FSYNC off)", () => {
  let store: ArtifactStore;
  beforeAll(async () => {
    store = await storeWith(0, false);
  });

  it("is in the request that writes its body when it is the only upload in flight: one request for the body and the commit", async () => {
    await store.put({ namespace: "team-a", key: parseKey("one/warm"), body: bodyOf("warm") });
    const posted = vi.spyOn(Worker.prototype, "postMessage");
    await store.put({ namespace: "team-a", key: parseKey("one/k"), body: bodyOf("hello"), md5: true });
    const requests = posted.mock.calls.map(([message]) => message as { op: string; finish?: { place?: unknown } });
    expect(requests.map((request) => request.op)).toEqual(["open", "write"]);
    expect(requests[1]?.finish?.place).toBeDefined();
    expect(await fs.readFile(`${store.options.root}/team-a/one/k`, "utf8")).toBe("hello");
    expect((await store.sidecars.read(store.layout.metaPath("team-a", "one/k")))?.s3ETag).toBe("5d41402abc4b2a76b9719d911017c592");
    expect(runtime.uploadWriters.uploads).toBe(0);
  });

  it("writers to one key, each committing with its body's write: one created, the stored body one writer's whole, its sidecar true", async () => {
    // Every writer sees itself alone, so each takes the key's lock before its finish.
    vi.spyOn(runtime.uploadWriters, "uploads", "get").mockReturnValue(1);
    const bodies = Array.from({ length: 8 }, (_, index) => `writer ${index} `.repeat(100 + index));
    const written = await Promise.all(bodies.map((body) => store.put({ namespace: "team-a", key: parseKey("contended/k"), body: bodyOf(body) })));
    expect(written.filter((one) => one.created)).toHaveLength(1);
    const stored = await fs.readFile(`${store.options.root}/team-a/contended/k`, "utf8");
    expect(bodies).toContain(stored);
    expect(await sidecarDescribesFileOn("contended/k", store)).toBe(true);
    expect((await store.sidecars.read(store.layout.metaPath("team-a", "contended/k")))?.sha256).toBe(createHash("sha256").update(stored).digest("hex"));
    expect(await fs.readdir(store.layout.tmpDir)).toEqual([]);
  });

  it("waits for the key's commit lock before its body's write: a commit of the key already under way lands first, whole", async () => {
    const entry = `${store.options.root}/team-a/locked/k`;
    // The first writer commits through the thread pool, and its file's rename is held back.
    const uploads = vi.spyOn(runtime.uploadWriters, "uploads", "get").mockReturnValue(2);
    vi.spyOn(runtime.uploadWriters, "placeIfIdle").mockReturnValue(undefined);
    let releaseRename!: () => void;
    const renameHeld = new Promise<void>((resolve) => (releaseRename = resolve));
    let renameStarted!: () => void;
    const renameReached = new Promise<void>((resolve) => (renameStarted = resolve));
    const rename = fs.rename.bind(fs);
    let renamesThroughThePool = 0;
    vi.spyOn(fs, "rename").mockImplementation(async (from, to) => {
      if (String(to).endsWith("/k") && String(from).startsWith(store.layout.tmpDir)) {
        renamesThroughThePool += 1;
        renameStarted();
        await renameHeld;
      }
      return rename(from, to);
    });
    const first = store.put({ namespace: "team-a", key: parseKey("locked/k"), body: bodyOf("first writer") });
    await renameReached;
    // The second one is alone: it would commit with its body's write, were it not for the lock.
    uploads.mockReturnValue(1);
    const second = store.put({ namespace: "team-a", key: parseKey("locked/k"), body: bodyOf("second writer") });
    await new Promise((resolve) => setTimeout(resolve, 50));
    releaseRename();
    await Promise.all([first, second]);
    expect(await fs.readFile(entry, "utf8")).toBe("second writer");
    expect(await sidecarDescribesFileOn("locked/k", store)).toBe(true);
    // The second one's file was renamed by the upload worker, after the first one's.
    expect(renamesThroughThePool).toBe(1);
  });

  it("drops the body, leaving nothing and no upload in flight, when its parent cannot be made before the commit", async () => {
    await store.put({ namespace: "team-a", key: parseKey("blocked"), body: bodyOf("a file where a directory goes") });
    const refused = await store.put({ namespace: "team-a", key: parseKey("blocked/k"), body: bodyOf("x") }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(HttpError);
    expect(runtime.uploadWriters.uploads).toBe(0);
    expect(await fs.readdir(store.layout.tmpDir)).toEqual([]);
    expect(await fs.readFile(`${store.options.root}/team-a/blocked`, "utf8")).toBe("a file where a directory goes");
  });

  it("answers 409 and stores nothing when the staged file is gone before its rename (the commit after the body's write)", async () => {
    vi.spyOn(runtime.uploadWriters, "uploads", "get").mockReturnValue(2);
    const original = runtime.uploadWriters.placeIfIdle.bind(runtime.uploadWriters);
    vi.spyOn(runtime.uploadWriters, "placeIfIdle").mockImplementation((request) => {
      rmSync(request.file);
      return original(request);
    });
    const failed = await store.put({ namespace: "team-a", key: parseKey("vanished/k"), body: bodyOf("lost") }).catch((error: unknown) => error);
    expect((failed as HttpError).status).toBe(409);
    await expect(fs.stat(`${store.options.root}/team-a/vanished/k`)).rejects.toMatchObject({ code: "ENOENT" });
    expect(await fs.readdir(store.layout.tmpDir)).toEqual([]);
  });

  it("goes through the thread pool while the worker carries another upload", async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    async function* slowBody(): AsyncGenerator<Uint8Array> {
      // More than one slot, so the upload opens on the worker before its end.
      yield Buffer.alloc(600 << 10, 1);
      await held;
      yield Buffer.from("end");
    }
    const slow = store.put({ namespace: "team-a", key: parseKey("busy/slow"), body: slowBody() });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const calls = callsEndingIn("/busy-k");
    try {
      await store.put({ namespace: "team-a", key: parseKey("busy/busy-k"), body: bodyOf("beside") });
    } finally {
      release();
      await slow;
    }
    expect(calls).toContain("rename");
    expect(await fs.readFile(`${store.options.root}/team-a/busy/busy-k`, "utf8")).toBe("beside");
    expect(await sidecarDescribesFileOn("busy/busy-k", store)).toBe(true);
  });

  it("with FSYNC, leaves the steps to the thread pool: a rename there may wait on the journal, which must not hold up the worker", async () => {
    const durable = await storeWith(0);
    const calls = callsEndingIn("/durable-k");
    await durable.put({ namespace: "team-a", key: parseKey("durable/durable-k"), body: bodyOf("kept") });
    expect(calls).toEqual(["lstat", "rename"]);
    expect(await sidecarDescribesFileOn("durable/durable-k", durable)).toBe(true);
  });
});

/** FileHandle's prototype, to count the directory fsyncs the commits make (the file's is the upload worker's). */
async function fileHandlePrototype(): Promise<{ sync: () => Promise<void> }> {
  const handle = await fs.open(store.options.root, "r");
  await handle.close();
  return Object.getPrototypeOf(handle) as { sync: () => Promise<void> };
}

describe("durable small PUTs into one directory at once", () => {
  it("share its fsyncs: the commits that land while the first one's flush runs are made durable by one more flush, each answered after a flush that began after its rename", async () => {
    // The second write opens the directory its first made and keeps it open: the commits share that descriptor.
    for (const name of ["warm", "warm2"]) await store.put({ namespace: "team-a", key: parseKey(`group/${name}`), body: bodyOf(name) });
    const prototype = await fileHandlePrototype();
    const original = prototype.sync;
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    /** For each directory fsync, the entries of the directory when it began. */
    const flushedEntries: string[][] = [];
    vi.spyOn(prototype, "sync").mockImplementation(async function (this: fs.FileHandle) {
      flushedEntries.push((await fs.readdir(`${store.options.root}/team-a/group`)).sort());
      if (flushedEntries.length === 1) await gate;
      return original.call(this);
    });
    const answered: string[] = [];
    const keys = Array.from({ length: 9 }, (_, index) => `k${index}`);
    const puts = keys.map((name) => store.put({ namespace: "team-a", key: parseKey(`group/${name}`), body: bodyOf(name) }).then(() => answered.push(name)));
    // Every rename has happened while the first flush is held: all nine entries are in the directory.
    await vi.waitFor(async () => expect((await fs.readdir(`${store.options.root}/team-a/group`)).length).toBe(11), { timeout: 10_000 });
    expect(flushedEntries).toHaveLength(1);
    expect(answered).toEqual([]);
    openGate();
    await Promise.all(puts);
    expect(flushedEntries).toHaveLength(2);
    // The second flush began with every entry in place: it covers each commit the first did not.
    expect(flushedEntries[1]).toEqual(["warm", "warm2", ...keys].sort());
  });
});
