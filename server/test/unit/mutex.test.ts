// The commit locks on their own: which holders may run together, in which order waiters enter, and that
// a failing holder releases what it held.
import { describe, expect, it } from "vitest";
import { KeyedMutex, NamespaceLock } from "../../src/storage/mutex.js";
import { NamespaceUsage } from "../../src/storage/usage.js";

/** A critical section that runs until release() is called, recording when it entered and left. */
function holder(log: string[], name: string) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const critical = async () => {
    log.push(`${name} in`);
    await released;
    log.push(`${name} out`);
    return name;
  };
  return { critical, release };
}

/** Lets every promise that can settle now settle. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("NamespaceLock", () => {
  it("runs commits of different keys of a namespace at once, and commits of one key one after another", async () => {
    const lock = new NamespaceLock();
    const log: string[] = [];
    const a = holder(log, "a");
    const b = holder(log, "b");
    const a2 = holder(log, "a again");
    const running = [lock.runForKey("ns", "a", a.critical), lock.runForKey("ns", "b", b.critical), lock.runForKey("ns", "a", a2.critical)];
    await settle();
    expect(log).toEqual(["a in", "b in"]);
    a.release();
    await settle();
    expect(log).toEqual(["a in", "b in", "a out", "a again in"]);
    b.release();
    a2.release();
    expect(await Promise.all(running)).toEqual(["a", "b", "a again"]);
  });

  it("gives run() the namespace to itself: it waits for the commits inside, and commits that come after it wait for it", async () => {
    const lock = new NamespaceLock();
    const log: string[] = [];
    const first = holder(log, "first");
    const whole = holder(log, "whole");
    const later = holder(log, "later");
    const running = [lock.runForKey("ns", "k1", first.critical), lock.run("ns", whole.critical), lock.runForKey("ns", "k2", later.critical)];
    // Another namespace is not held up.
    expect(await lock.run("other", () => Promise.resolve("other"))).toBe("other");
    await settle();
    expect(log).toEqual(["first in"]);
    first.release();
    await settle();
    expect(log).toEqual(["first in", "first out", "whole in"]);
    whole.release();
    await settle();
    expect(log).toEqual(["first in", "first out", "whole in", "whole out", "later in"]);
    later.release();
    expect(await Promise.all(running)).toEqual(["first", "whole", "later"]);
  });

  it("releases what a failing holder held", async () => {
    const lock = new NamespaceLock();
    await expect(lock.runForKey("ns", "k", () => Promise.reject(new Error("commit failed")))).rejects.toThrow("commit failed");
    await expect(lock.run("ns", () => Promise.reject(new Error("delete failed")))).rejects.toThrow("delete failed");
    expect(await lock.runForKey("ns", "k", () => Promise.resolve("next"))).toBe("next");
    expect(await lock.run("ns", () => Promise.resolve("whole"))).toBe("whole");
  });
});

describe("KeyedMutex", () => {
  it("runs holders of one key in the order they came, others at once", async () => {
    const mutex = new KeyedMutex();
    const log: string[] = [];
    const one = holder(log, "one");
    const two = holder(log, "two");
    const other = holder(log, "other");
    const running = [mutex.run("k", one.critical), mutex.run("k", two.critical), mutex.run("j", other.critical)];
    await settle();
    expect(log).toEqual(["one in", "other in"]);
    one.release();
    two.release();
    other.release();
    expect(await Promise.all(running)).toEqual(["one", "two", "other"]);
  });
});

describe("NamespaceUsage.tryReserve", () => {
  it("counts what fits the quota in one step and refuses what would exceed it, once measured", async () => {
    const usage = new NamespaceUsage(() => Promise.resolve(4), new NamespaceLock());
    expect(() => usage.tryReserve("ns", 1, 10)).toThrow(/not measured/);
    expect(await usage.get("ns")).toBe(4);
    expect(usage.tryReserve("ns", 5, 10)).toBe(true);
    expect(usage.tryReserve("ns", 5, 10)).toBe(false); // 14 > 10: the second of two commits that each fit alone
    expect(usage.tryReserve("ns", 1, 10)).toBe(true);
    expect(await usage.get("ns")).toBe(10);
    usage.add("ns", -1); // a commit that failed after its reservation gives it back
    expect(usage.tryReserve("ns", 100, 0)).toBe(true); // no quota
    expect(await usage.get("ns")).toBe(109);
  });
});
