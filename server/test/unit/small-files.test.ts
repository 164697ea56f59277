// The small-file cache on real files: an entry is served only while lstat finds the very file version
// it was read from, whether that lstat runs on the event loop (a local file system) or in the thread
// pool (any other), and memory stays within its bounds.
import { randomBytes } from "node:crypto";
import { statfsSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { parseKey } from "../../src/storage/names.js";
import { SmallFileCache } from "../../src/storage/small-files.js";
import { localFileSystem } from "../../src/storage/volume.js";
import { tempDir } from "../support/harness.js";
import { testStore } from "../support/store.js";
import { settledWithin, withStalledThreadPool } from "../support/thread-pool.js";

let dir: string;
beforeEach(async () => {
  dir = await tempDir("small-files");
});

/** Writes `body` at `name` and remembers it as the server does after a read. */
async function cached(cache: SmallFileCache, name: string, body: Buffer<ArrayBuffer>): Promise<string> {
  const file = path.join(dir, name);
  await fs.writeFile(file, body);
  const version = await fs.lstat(file, { bigint: true });
  cache.remember(file, version, { size: body.length, body, sha256: "digest-of-" + name, modified: version.mtime });
  return file;
}

const statModes = [
  { where: "in the thread pool", onEventLoop: false },
  { where: "on the event loop", onEventLoop: true },
];

describe.each(statModes)("SmallFileCache, lstat $where", ({ onEventLoop }) => {
  const newCache = (maxFileBytes: number, maxTotalBytes: number) => new SmallFileCache(maxFileBytes, maxTotalBytes, () => onEventLoop);

  it("serves an unchanged file from memory, with the digest it was remembered with", async () => {
    const cache = newCache(64 << 10, 1 << 20);
    const body = randomBytes(4096);
    const file = await cached(cache, "a", body);
    const hit = await cache.get(file);
    expect(hit?.body.equals(body)).toBe(true);
    expect(hit?.sha256).toBe("digest-of-a");
  });

  it("keeps its own copy: the caller's buffer may change afterwards", async () => {
    const cache = newCache(64 << 10, 1 << 20);
    const body = randomBytes(100);
    const expected = Buffer.from(body);
    const file = await cached(cache, "copy", body);
    body.fill(0);
    expect((await cache.get(file))?.body.equals(expected)).toBe(true);
  });

  it("misses once the file is replaced by rename, even with the same size and time", async () => {
    const cache = newCache(64 << 10, 1 << 20);
    const file = await cached(cache, "replaced", randomBytes(4096));
    const before = await fs.stat(file);
    const next = path.join(dir, "next");
    await fs.writeFile(next, randomBytes(4096));
    await fs.utimes(next, before.atime, before.mtime);
    await fs.rename(next, file);
    expect(await cache.get(file)).toBeUndefined();
    expect(cache.bytes).toBe(0);
  });

  it("misses once the file is rewritten in place (its modification time changes)", async () => {
    const cache = newCache(64 << 10, 1 << 20);
    const file = await cached(cache, "rewritten", randomBytes(4096));
    const handle = await fs.open(file, "r+");
    await handle.write(randomBytes(4096), 0, 4096, 0);
    await handle.close();
    await fs.utimes(file, new Date(), new Date(Date.now() + 5000));
    expect(await cache.get(file)).toBeUndefined();
  });

  it("misses once the inode gains another name (a hard link changes its change time)", async () => {
    const cache = newCache(64 << 10, 1 << 20);
    const file = await cached(cache, "linked", randomBytes(4096));
    await new Promise((resolve) => setTimeout(resolve, 20)); // past the file system clock's tick
    await fs.link(file, path.join(dir, "elsewhere"));
    expect(await cache.get(file)).toBeUndefined();
  });

  it("misses when the path is now a symlink, even to the very same file, and when it is gone", async () => {
    const cache = newCache(64 << 10, 1 << 20);
    const file = await cached(cache, "swapped", randomBytes(4096));
    const moved = path.join(dir, "moved");
    await fs.rename(file, moved);
    await fs.symlink(moved, file);
    expect(await cache.get(file)).toBeUndefined();

    const gone = await cached(cache, "gone", randomBytes(10));
    await fs.rm(gone);
    expect(await cache.get(gone)).toBeUndefined();
  });

  it("keeps nothing over its file size limit, and a body that does not match its version", async () => {
    const cache = newCache(1000, 1 << 20);
    expect(await cache.get(await cached(cache, "large", randomBytes(1001)))).toBeUndefined();
    const file = path.join(dir, "mismatch");
    await fs.writeFile(file, randomBytes(50));
    const version = await fs.lstat(file, { bigint: true });
    cache.remember(file, version, { size: 40, body: randomBytes(40), sha256: "x", modified: new Date() });
    expect(await cache.get(file)).toBeUndefined();
    expect(cache.bytes).toBe(0);
  });

  it("stays within its total, dropping the least recently used first", async () => {
    const cache = newCache(1000, 2500);
    const first = await cached(cache, "first", randomBytes(1000));
    const second = await cached(cache, "second", randomBytes(1000));
    expect(await cache.get(first)).toBeDefined(); // now the most recently used
    const third = await cached(cache, "third", randomBytes(1000));
    expect(cache.bytes).toBe(2000);
    expect(await cache.get(second)).toBeUndefined();
    expect(await cache.get(first)).toBeDefined();
    expect(await cache.get(third)).toBeDefined();
  });
});

describe("where the small-file cache's lstat runs", () => {
  it("on a local file system, a hit is served while every thread of the pool is stalled", async () => {
    const cache = new SmallFileCache(64 << 10, 1 << 20, () => true);
    const body = randomBytes(4096);
    const file = await cached(cache, "local", body);
    await withStalledThreadPool(dir, async () => {
      const hit = cache.get(file);
      expect(await settledWithin(hit, 1000)).toBe("settled");
      expect((await hit)?.body.equals(body)).toBe(true);
    });
  });

  it("on any other file system, the lstat waits for a pool thread: a stalled server stalls the pool, not the event loop", async () => {
    const cache = new SmallFileCache(64 << 10, 1 << 20, () => false);
    const body = randomBytes(4096);
    const file = await cached(cache, "remote", body);
    let hit: Promise<unknown> | undefined;
    await withStalledThreadPool(dir, async () => {
      hit = cache.get(file);
      expect(await settledWithin(hit, 200)).toBe("pending");
    });
    expect(await settledWithin(hit ?? Promise.reject(new Error("no lookup")), 5000)).toBe("settled");
  });

  it("the store on this machine's local volume serves a small artifact it has read before while the pool is stalled", async () => {
    const store = await testStore({ root: await tempDir("small-files-store") });
    const body = randomBytes(4096);
    const key = parseKey("outputs/small.bin");
    await store.put({ namespace: "team-a", key, body: [body][Symbol.iterator]() as unknown as AsyncIterable<Uint8Array> });
    const first = await store.read("team-a", key);
    if ("directory" in first) throw new Error("a file was stored");
    const firstBody = await first.body(0, first.size); // read whole, then kept
    expect(firstBody.kind).toBe("bytes");
    await withStalledThreadPool(dir, async () => {
      const again = store.read("team-a", key);
      expect(await settledWithin(again, 1000)).toBe("settled");
      const read = await again;
      if ("directory" in read) throw new Error("a file was stored");
      const bytes = await read.body(0, read.size);
      expect(bytes.kind === "bytes" && Buffer.from(bytes.bytes).equals(body)).toBe(true);
    });
  });

  it("the store's free-space check on this machine's local volume answers while the pool is stalled", async () => {
    const store = await testStore({ root: await tempDir("small-files-free") });
    await withStalledThreadPool(dir, async () => {
      const writable = store.writableBytes();
      expect(await settledWithin(writable, 1000)).toBe("settled");
      expect(await writable).toBeGreaterThan(0);
    });
  });

  it("names the local file systems by their statfs type and no network or FUSE one", () => {
    expect(localFileSystem(0xef53)).toBe("ext4");
    expect(localFileSystem(0x58465342)).toBe("xfs");
    expect(localFileSystem(0x01021994)).toBe("tmpfs");
    expect(localFileSystem(0x794c7630)).toBe("overlayfs");
    // NFS, CephFS, FUSE, SMB2, CIFS, 9p
    for (const remote of [0x6969, 0x00c36400, 0x65735546, 0xfe534d42, 0xff534d42, 0x01021997]) expect(localFileSystem(remote)).toBeUndefined();
    // The test volumes live in this machine's temporary directory, a local file system.
    expect(localFileSystem(statfsSync(dir).type)).toBeDefined();
  });
});
