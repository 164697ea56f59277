// Directories kept open between requests (held-directories.ts, through VolumeRoot in contained.ts): a
// kept descriptor is used again only while it still reads back its own path; moved, removed or swapped
// for a symlink, the path is opened afresh (and a symlink refused); dropped ones close once let go.
import { constants as fsConstants, openSync, closeSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VolumeRoot } from "../../src/storage/contained.js";
import { HeldDirectoryCache, type DirectorySource } from "../../src/storage/held-directories.js";
import { settledWithin, withStalledThreadPool } from "../support/thread-pool.js";

describe("VolumeRoot.openDirectory with kept directories", () => {
  let root: string;
  let outside: string;
  let rootFd: number;
  let volume: VolumeRoot;
  let refused: string[][];

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "held-dirs-"));
    outside = await fs.mkdtemp(path.join(os.tmpdir(), "held-dirs-outside-"));
    await fs.mkdir(path.join(root, "ns", "a"), { recursive: true });
    rootFd = openSync(root, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    refused = [];
    volume = await VolumeRoot.hold(rootFd, (segments) => refused.push([...segments]));
  });

  afterEach(async () => {
    await volume.close();
    closeSync(rootFd);
    await fs.rm(root, { recursive: true, force: true });
    await fs.rm(outside, { recursive: true, force: true });
  });

  /** Creates `name` through the held directory and reports where it landed. */
  async function writeThrough(segments: string[], name: string): Promise<void> {
    const held = await volume.openDirectory(segments);
    expect(held).toBeDefined();
    try {
      await fs.writeFile(held!.entry(name), name);
    } finally {
      await held!.close();
    }
  }

  it("hands out the same descriptor again while the directory is where it was", async () => {
    const first = await volume.openDirectory(["ns", "a"]);
    const firstFd = first!.handle.fd;
    await first!.close();
    const second = await volume.openDirectory(["ns", "a"]);
    expect(second!.handle.fd).toBe(firstFd);
    // Closing a holder does not close the kept descriptor: it still reads back its path.
    expect(await fs.readlink(`/proc/self/fd/${second!.handle.fd}`)).toBe(path.join(await fs.realpath(root), "ns", "a"));
    await second!.close();
  });

  it("checks a kept directory on the event loop: handed out again while every thread of the pool is stalled", async () => {
    const first = await volume.openDirectory(["ns", "a"]);
    const firstFd = first!.handle.fd;
    await first!.close();
    await withStalledThreadPool(outside, async () => {
      const again = volume.openDirectory(["ns", "a"]);
      expect(await settledWithin(again, 1000)).toBe("settled");
      const held = await again;
      expect(held?.handle.fd).toBe(firstFd);
      await held?.close();
    });
    expect(refused).toEqual([]);
  });

  it("does not use a kept directory that was moved: the path is opened again", async () => {
    await writeThrough(["ns", "a"], "before");
    await fs.rename(path.join(root, "ns", "a"), path.join(root, "ns", "moved"));
    await fs.mkdir(path.join(root, "ns", "a"));
    await writeThrough(["ns", "a"], "after");
    expect(await fs.readdir(path.join(root, "ns", "a"))).toEqual(["after"]);
    expect(await fs.readdir(path.join(root, "ns", "moved"))).toEqual(["before"]);
    expect(refused).toEqual([]);
  });

  it("does not use a kept directory that was removed", async () => {
    await writeThrough(["ns", "a"], "file");
    await fs.rm(path.join(root, "ns", "a"), { recursive: true });
    expect(await volume.openDirectory(["ns", "a"])).toBeUndefined();
  });

  it("refuses a kept directory swapped for a symlink, and writes nothing outside", async () => {
    await writeThrough(["ns", "a"], "file");
    await fs.rename(path.join(root, "ns", "a"), path.join(root, "ns", "real"));
    await fs.symlink(outside, path.join(root, "ns", "a"));
    expect(await volume.openDirectory(["ns", "a"])).toBeUndefined();
    expect(await fs.readdir(outside)).toEqual([]);
  });

  it("refuses a path through a symlinked parent even when the leaf was kept", async () => {
    await fs.mkdir(path.join(root, "ns", "a", "b"));
    await writeThrough(["ns", "a", "b"], "file");
    await fs.mkdir(path.join(outside, "b"));
    await fs.rename(path.join(root, "ns", "a"), path.join(root, "ns", "real"));
    await fs.symlink(outside, path.join(root, "ns", "a"));
    expect(await volume.openDirectory(["ns", "a", "b"])).toBeUndefined();
    expect(refused).toEqual([["ns", "a", "b"]]);
    expect(await fs.readdir(path.join(outside, "b"))).toEqual([]);
  });
});

describe("HeldDirectoryCache", () => {
  /** A stand-in volume: directories are numbered handles; `moved` ones no longer read back their path. */
  function fakeVolume() {
    const closed: number[] = [];
    const moved = new Set<number>();
    let nextFd = 100;
    const opened: number[] = [];
    const source: DirectorySource<{ handle: FileHandle; close: () => Promise<void> }> = {
      open: () => {
        const fd = nextFd++;
        opened.push(fd);
        const handle = { fd, close: () => Promise.resolve(void closed.push(fd)) } as unknown as FileHandle;
        return Promise.resolve({ handle, close: () => handle.close() });
      },
      handleOf: (held) => held.handle,
      stillAt: (handle) => Promise.resolve(!moved.has(handle.fd)),
      lease: (handle, release) => ({ handle, close: release }),
    };
    return { source, closed, moved, opened };
  }

  it("closes the least recently used directory past its capacity, once no one holds it", async () => {
    const { source, closed } = fakeVolume();
    const cache = new HeldDirectoryCache(source, 2);
    const a = await cache.acquire(["a"]);
    await (await cache.acquire(["b"]))!.close();
    await (await cache.acquire(["a"]))!.close(); // a is now the most recently used; b the least
    await (await cache.acquire(["c"]))!.close();
    expect(cache.size).toBe(2);
    expect(closed).toEqual([101]); // b
    // a was held throughout and is still open; dropped later, it closes when its holder lets go.
    await (await cache.acquire(["d"]))!.close();
    expect(closed).toEqual([101]);
    await a!.close();
    expect(closed).toEqual([101, 100]);
  });

  it("drops a directory that no longer reads back its path, and opens the path again", async () => {
    const { source, closed, moved, opened } = fakeVolume();
    const cache = new HeldDirectoryCache(source, 4);
    await (await cache.acquire(["a"]))!.close();
    moved.add(100);
    const again = await cache.acquire(["a"]);
    expect(again!.handle.fd).toBe(101);
    expect(closed).toEqual([100]);
    expect(opened).toEqual([100, 101]);
    await again!.close();
  });

  it("a holder closed twice lets go once: another holder's descriptor stays open", async () => {
    const { source, closed, moved } = fakeVolume();
    const cache = new HeldDirectoryCache(source, 4);
    const first = await cache.acquire(["a"]);
    const second = await cache.acquire(["a"]);
    await first!.close();
    await first!.close();
    moved.add(100);
    await (await cache.acquire(["a"]))!.close(); // drops 100, which `second` still holds
    expect(closed).toEqual([]);
    await second!.close();
    expect(closed).toEqual([100]);
  });

  it("close() closes the idle directories now, a held one when its holder lets go, and keeps none after", async () => {
    const { source, closed } = fakeVolume();
    const cache = new HeldDirectoryCache(source, 4);
    await (await cache.acquire(["a"]))!.close();
    const held = await cache.acquire(["b"]);
    await cache.close();
    expect(cache.size).toBe(0);
    expect(closed).toEqual([100]);
    await held!.close();
    expect(closed).toEqual([100, 101]);
    // Opened for its caller, not kept: its close() closes it.
    const late = await cache.acquire(["a"]);
    expect(cache.size).toBe(0);
    await late!.close();
    expect(closed).toEqual([100, 101, 102]);
  });
});
