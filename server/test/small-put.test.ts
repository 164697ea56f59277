// The file calls of one small write (commit.ts): each is a round trip through libuv's thread pool, so
// the commit makes none it does not need, and still leaves no temporary file behind whatever the
// outcome, and still refuses a write that ate into the free-space reserve.
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

  it("asks the volume for its free space once when it leaves ample room above the reserve", async () => {
    const statfs = vi.spyOn(fs, "statfs");
    await store.put({ namespace: "team-a", key: parseKey("room"), body: bodyOf("hello"), declaredSize: 5 });
    expect(statfs).toHaveBeenCalledTimes(1);
  });

  it("asks again after staging when little room was left, and refuses a write that ate into the reserve (507, nothing stored)", async () => {
    const tight = await storeWith(1000);
    const original = fs.statfs.bind(fs);
    // 100 bytes above the reserve before the body is staged, 100 below it afterwards (another writer).
    const free = [1100, 900];
    const statfs = vi.spyOn(fs, "statfs").mockImplementation((async (location: string) => ({ ...(await original(location)), bsize: 1, bavail: free.shift() ?? 0 })) as never);
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
