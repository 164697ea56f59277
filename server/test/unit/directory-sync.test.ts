// The group commit of directory fsyncs on its own (directory-sync.ts), with an fsync the test ends by
// hand: how many flushes concurrent callers share, that a caller never counts a flush that began before
// it asked, and that a failed flush fails its own callers only.
import type fs from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { GroupedDirectorySyncs } from "../../src/storage/directory-sync.js";

/** Lets every promise that can settle now settle. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** An fsync that records each call and ends only when the test says so. */
function manualFsync() {
  const calls: { handle: fs.FileHandle; finish: (error?: Error) => void }[] = [];
  const fsync = (handle: fs.FileHandle) =>
    new Promise<void>((resolve, reject) => calls.push({ handle, finish: (error) => (error === undefined ? resolve() : reject(error)) }));
  return { calls, fsync };
}

/** Stands for a directory's descriptor: the group commit only keys on it and hands it to the fsync. */
const directory = (name: string) => ({ name }) as unknown as fs.FileHandle;

/** Whether `promise` has settled, and how, without waiting for it. */
function watch(promise: Promise<void>) {
  const state = { done: false, error: undefined as unknown };
  promise.then(
    () => (state.done = true),
    (error: unknown) => {
      state.done = true;
      state.error = error;
    },
  );
  return state;
}

describe("GroupedDirectorySyncs", () => {
  it("flushes a directory twice for any number of callers that ask while its first flush runs", async () => {
    const { calls, fsync } = manualFsync();
    const syncs = new GroupedDirectorySyncs(fsync);
    const dir = directory("a");
    const first = watch(syncs.sync(dir));
    const others = Array.from({ length: 9 }, () => watch(syncs.sync(dir)));
    await settle();
    expect(calls).toHaveLength(1);
    calls[0]!.finish();
    await settle();
    // The first caller is covered; the others asked after that flush began and wait for the next.
    expect(first.done).toBe(true);
    expect(others.some((state) => state.done)).toBe(false);
    expect(calls).toHaveLength(2);
    calls[1]!.finish();
    await settle();
    expect(others.every((state) => state.done && state.error === undefined)).toBe(true);
    expect(calls).toHaveLength(2);
    expect(syncs.pending).toBe(0);
  });

  it("never counts a flush that began before the caller asked: a caller arriving during the second flush waits for a third", async () => {
    const { calls, fsync } = manualFsync();
    const syncs = new GroupedDirectorySyncs(fsync);
    const dir = directory("a");
    watch(syncs.sync(dir));
    const second = watch(syncs.sync(dir));
    await settle();
    calls[0]!.finish();
    await settle();
    expect(calls).toHaveLength(2);
    // Its rename came after the second flush began: that flush may not include it.
    const late = watch(syncs.sync(dir));
    calls[1]!.finish();
    await settle();
    expect(second.done).toBe(true);
    expect(late.done).toBe(false);
    expect(calls).toHaveLength(3);
    calls[2]!.finish();
    await settle();
    expect(late.done).toBe(true);
  });

  it("flushes each directory on its own", async () => {
    const { calls, fsync } = manualFsync();
    const syncs = new GroupedDirectorySyncs(fsync);
    const a = watch(syncs.sync(directory("a")));
    const b = watch(syncs.sync(directory("b")));
    await settle();
    expect(calls.map((call) => (call.handle as unknown as { name: string }).name)).toEqual(["a", "b"]);
    calls[1]!.finish();
    await settle();
    expect([a.done, b.done]).toEqual([false, true]);
    calls[0]!.finish();
    await settle();
    expect(a.done).toBe(true);
  });

  it("fails the callers of a failed flush, and still runs the flush queued behind it for the others", async () => {
    const { calls, fsync } = manualFsync();
    const syncs = new GroupedDirectorySyncs(fsync);
    const dir = directory("a");
    const failed = watch(syncs.sync(dir));
    const queued = watch(syncs.sync(dir));
    await settle();
    calls[0]!.finish(Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" }));
    await settle();
    expect(failed.error).toMatchObject({ code: "EIO" });
    expect(queued.done).toBe(false);
    expect(calls).toHaveLength(2);
    calls[1]!.finish();
    await settle();
    expect(queued).toEqual({ done: true, error: undefined });
    // A caller after the failure gets a flush of its own.
    const after = watch(syncs.sync(dir));
    await settle();
    expect(calls).toHaveLength(3);
    calls[2]!.finish();
    await settle();
    expect(after.done).toBe(true);
    expect(syncs.pending).toBe(0);
  });
});
