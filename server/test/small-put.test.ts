// The file calls of one small write (commit.ts): each is a round trip through libuv's thread pool, so
// the commit makes none it does not need, and still leaves no temporary file behind whatever the
// outcome, and still refuses a write that ate into the free-space reserve.
import nodeFs from "node:fs";
import fs from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { HttpError } from "../src/errors.js";
import { silentLogger } from "../src/log.js";
import { createRuntime, type Runtime } from "../src/runtime.js";
import { parseKey } from "../src/storage/names.js";
import { ArtifactStore } from "../src/storage/store.js";
import { tempDir } from "./support/harness.js";

let runtime: Runtime;
let store: ArtifactStore;

async function storeWith(minFreeBytes: number): Promise<ArtifactStore> {
  const made = new ArtifactStore({
    root: await tempDir("small-put"),
    maxUploadBytes: 1 << 20,
    maxArchiveExpandedBytes: 1 << 20,
    minFreeBytes,
    namespaceQuotaBytes: 0,
    fsync: true,
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
