import { describe, expect, it } from "vitest";
import { decisionKey } from "../../src/auth/access-reviewer.js";
import { BoundedTtlCache, InFlight } from "../../src/auth/bounded-cache.js";

describe("BoundedTtlCache", () => {
  it("expires entries after their TTL", () => {
    let now = 1_000;
    const cache = new BoundedTtlCache<string>(10, () => now);
    cache.set("a", "A", 100);
    expect(cache.get("a")).toBe("A");
    now += 99;
    expect(cache.get("a")).toBe("A");
    now += 1;
    expect(cache.get("a")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("evicts the least recently used entry beyond maxEntries", () => {
    const cache = new BoundedTtlCache<number>(2);
    cache.set("a", 1, 60_000);
    cache.set("b", 2, 60_000);
    expect(cache.get("a")).toBe(1); // a is now more recent than b
    cache.set("c", 3, 60_000);
    expect(cache.size).toBe(2);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBe(1);
    expect(cache.get("c")).toBe(3);
  });

  it("stores nothing with a TTL of 0 and keeps false as a value", () => {
    const cache = new BoundedTtlCache<boolean>(2);
    cache.set("zero", true, 0);
    expect(cache.get("zero")).toBeUndefined();
    cache.set("deny", false, 1_000);
    expect(cache.get("deny")).toBe(false);
  });
});

describe("InFlight", () => {
  it("shares one running task per key and forgets it once settled, success or failure", async () => {
    const inFlight = new InFlight<number>();
    let runs = 0;
    let release: (value: number) => void = () => {};
    const task = () => {
      runs += 1;
      return new Promise<number>((resolve) => (release = resolve));
    };
    const first = inFlight.run("k", task);
    const second = inFlight.run("k", task);
    expect(runs).toBe(1);
    release(7);
    await expect(Promise.all([first, second])).resolves.toEqual([7, 7]);
    expect(inFlight.size).toBe(0);
    await expect(inFlight.run("k", () => Promise.reject(new Error("down")))).rejects.toThrow("down");
    expect(inFlight.size).toBe(0);
  });
});

describe("decisionKey", () => {
  it("depends on user, groups, uid, extra, namespace and verb, not on group order", () => {
    const base = { user: "u", groups: ["a", "b"], via: "token" as const };
    const key = decisionKey(base, "ns", "readArtifact");
    expect(decisionKey({ ...base, groups: ["b", "a"] }, "ns", "readArtifact")).toBe(key);
    const different = [
      decisionKey({ ...base, user: "v" }, "ns", "readArtifact"),
      decisionKey({ ...base, groups: ["a"] }, "ns", "readArtifact"),
      decisionKey({ ...base, uid: "1" }, "ns", "readArtifact"),
      decisionKey({ ...base, extra: { scope: ["x"] } }, "ns", "readArtifact"),
      decisionKey(base, "other", "readArtifact"),
      decisionKey(base, "ns", "writeArtifact"),
    ];
    expect(new Set([key, ...different]).size).toBe(7);
  });
});
