// The small-file cache on real files: an entry is served only while lstat finds the very file version
// it was read from, and memory stays within its bounds.
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { SmallFileCache } from "../../src/storage/small-files.js";
import { tempDir } from "../support/harness.js";

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

describe("SmallFileCache", () => {
  it("serves an unchanged file from memory, with the digest it was remembered with", async () => {
    const cache = new SmallFileCache(64 << 10, 1 << 20);
    const body = randomBytes(4096);
    const file = await cached(cache, "a", body);
    const hit = await cache.get(file);
    expect(hit?.body.equals(body)).toBe(true);
    expect(hit?.sha256).toBe("digest-of-a");
  });

  it("keeps its own copy: the caller's buffer may change afterwards", async () => {
    const cache = new SmallFileCache(64 << 10, 1 << 20);
    const body = randomBytes(100);
    const expected = Buffer.from(body);
    const file = await cached(cache, "copy", body);
    body.fill(0);
    expect((await cache.get(file))?.body.equals(expected)).toBe(true);
  });

  it("misses once the file is replaced by rename, even with the same size and time", async () => {
    const cache = new SmallFileCache(64 << 10, 1 << 20);
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
    const cache = new SmallFileCache(64 << 10, 1 << 20);
    const file = await cached(cache, "rewritten", randomBytes(4096));
    const handle = await fs.open(file, "r+");
    await handle.write(randomBytes(4096), 0, 4096, 0);
    await handle.close();
    await fs.utimes(file, new Date(), new Date(Date.now() + 5000));
    expect(await cache.get(file)).toBeUndefined();
  });

  it("misses once the inode gains another name (a hard link changes its change time)", async () => {
    const cache = new SmallFileCache(64 << 10, 1 << 20);
    const file = await cached(cache, "linked", randomBytes(4096));
    await new Promise((resolve) => setTimeout(resolve, 20)); // past the file system clock's tick
    await fs.link(file, path.join(dir, "elsewhere"));
    expect(await cache.get(file)).toBeUndefined();
  });

  it("misses when the path is now a symlink, even to the very same file, and when it is gone", async () => {
    const cache = new SmallFileCache(64 << 10, 1 << 20);
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
    const cache = new SmallFileCache(1000, 1 << 20);
    expect(await cache.get(await cached(cache, "large", randomBytes(1001)))).toBeUndefined();
    const file = path.join(dir, "mismatch");
    await fs.writeFile(file, randomBytes(50));
    const version = await fs.lstat(file, { bigint: true });
    cache.remember(file, version, { size: 40, body: randomBytes(40), sha256: "x", modified: new Date() });
    expect(await cache.get(file)).toBeUndefined();
    expect(cache.bytes).toBe(0);
  });

  it("stays within its total, dropping the least recently used first", async () => {
    const cache = new SmallFileCache(1000, 2500);
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
