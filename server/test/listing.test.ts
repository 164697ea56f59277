// Listing and paging against a sorted in-memory reference: S3's ListObjectsV2 semantics (keys in UTF-8
// binary order, common prefixes rolled up at the first '/' after the prefix, each page resuming after
// the last key or common prefix returned). The S3 API lists through the same method.
import fs from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../src/log.js";
import { createRuntime } from "../src/runtime.js";
import { ArtifactStore } from "../src/storage/store.js";
import { startTestServer, tempDir } from "./support/harness.js";

/** Small deterministic PRNG (mulberry32), so a failing case can be replayed from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Names that sort around '/' (0x2F): '-' and '.' just below it, '0' just above; a name that is a prefix
// of another; and characters whose UTF-16 order differs from their UTF-8 order (an astral character
// is a surrogate pair, below U+FF21 in UTF-16, above it in UTF-8).
const NAMES = ["a", "a-", "a.b", "a0", "ab", "b", "é", "\u{1F600}", "\uFF21"];

const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

interface Tree {
  readonly keys: string[];
  readonly emptyDirectories: string[];
}

/** Random keys up to three segments deep, never a file where another key needs a directory. */
function randomTree(next: () => number): Tree {
  const pick = () => NAMES[Math.floor(next() * NAMES.length)] ?? "a";
  const files = new Set<string>();
  const directories = new Set<string>();
  const clashes = (segments: string[]) => {
    for (let depth = 1; depth < segments.length; depth += 1) if (files.has(segments.slice(0, depth).join("/"))) return true;
    return directories.has(segments.join("/")) || files.has(segments.join("/"));
  };
  const count = 1 + Math.floor(next() * 14);
  for (let i = 0; i < count; i += 1) {
    const segments = Array.from({ length: 1 + Math.floor(next() * 3) }, pick);
    if (clashes(segments)) continue;
    files.add(segments.join("/"));
    for (let depth = 1; depth < segments.length; depth += 1) directories.add(segments.slice(0, depth).join("/"));
  }
  // Directories with no file below them (a failed write leaves its parents): no key, so no common prefix.
  const emptyDirectories: string[] = [];
  for (let i = 0; i < 3; i += 1) {
    const segments = Array.from({ length: 1 + Math.floor(next() * 2) }, pick);
    if (clashes(segments)) continue;
    emptyDirectories.push(segments.join("/"));
    for (let depth = 1; depth <= segments.length; depth += 1) directories.add(segments.slice(0, depth).join("/"));
  }
  return { keys: [...files], emptyDirectories };
}

/** "", cuts of keys at every kind of position (mid-name, right after a '/'), and prefixes matching nothing. */
function prefixesFor(tree: Tree, next: () => number): string[] {
  const prefixes = new Set(["", "zz", "a/zz/", "a/"]);
  for (const key of tree.keys) {
    const characters = Array.from(key);
    prefixes.add(characters.slice(0, 1 + Math.floor(next() * characters.length)).join(""));
    const slash = key.lastIndexOf("/");
    if (slash > 0) prefixes.add(key.slice(0, slash + 1));
  }
  return [...prefixes];
}

/** The expected entries, in order: keys, or with the delimiter the common prefix standing for them. */
function reference(tree: Tree, prefix: string, delimiter: boolean): string[] {
  const entries: string[] = [];
  for (const key of tree.keys.filter((candidate) => candidate.startsWith(prefix)).sort(utf8Order)) {
    const slash = delimiter ? key.indexOf("/", prefix.length) : -1;
    const entry = slash === -1 ? key : key.slice(0, slash + 1);
    if (entries.at(-1) !== entry) entries.push(entry);
  }
  return entries;
}

async function storeOf(tree: Tree): Promise<ArtifactStore> {
  const root = await tempDir("listing");
  const store = new ArtifactStore({
    root,
    maxUploadBytes: 1 << 20,
    maxArchiveExpandedBytes: 1 << 20,
    minFreeBytes: 0,
    namespaceQuotaBytes: 0,
    fsync: false,
    staleTempMs: 60_000,
    runtime: createRuntime({ logger: silentLogger }),
  });
  await store.init();
  const namespaceDir = path.join(root, "team-a");
  for (const key of tree.keys) {
    await fs.mkdir(path.dirname(path.join(namespaceDir, key)), { recursive: true });
    await fs.writeFile(path.join(namespaceDir, key), key);
  }
  for (const directory of tree.emptyDirectories) await fs.mkdir(path.join(namespaceDir, directory), { recursive: true });
  return store;
}

/** Every page the store gives, following lastReturned until it is undefined (bounded, in case it loops). */
async function pages(store: ArtifactStore, prefix: string, delimiter: boolean, limit: number): Promise<string[][]> {
  const result: string[][] = [];
  let after: string | undefined;
  do {
    const page = await store.list({ namespace: "team-a", prefix, delimiter: delimiter ? "/" : undefined, limit, after });
    result.push([...page.items.map((item) => item.key), ...page.prefixes].sort(utf8Order));
    after = page.lastReturned;
  } while (after !== undefined && result.length <= 100);
  return result;
}

describe("listing pages", () => {
  it("keys a/x a/y b with delimiter '/' and limit 1 page as [a/] then [b]", async () => {
    const server = await startTestServer();
    const seen: { items: string[]; prefixes: string[] }[] = [];
    try {
      for (const key of ["a/x", "a/y", "b"]) {
        expect((await fetch(`${server.url}/v1/namespaces/team-a/artifacts/${key}`, { method: "PUT", body: key })).status).toBe(201);
      }
      let cursor: string | null = "";
      while (cursor !== null && seen.length < 10) {
        const response = await fetch(`${server.url}/v1/namespaces/team-a/artifacts?delimiter=/&limit=1${cursor ? `&cursor=${cursor}` : ""}`);
        const page = (await response.json()) as { items: { key: string }[]; prefixes: string[]; nextCursor: string | null };
        seen.push({ items: page.items.map((item) => item.key), prefixes: page.prefixes });
        cursor = page.nextCursor;
      }
    } finally {
      await server.close();
    }
    expect(seen).toEqual([
      { items: [], prefixes: ["a/"] },
      { items: ["b"], prefixes: [] },
    ]);
  });

  it("random trees, prefixes, delimiter on and off, every limit: the pages are the sorted reference cut in order", async () => {
    for (let seed = 1; seed <= 12; seed += 1) {
      const next = random(seed);
      const tree = randomTree(next);
      const store = await storeOf(tree);
      for (const prefix of prefixesFor(tree, next)) {
        for (const delimiter of [false, true]) {
          const expected = reference(tree, prefix, delimiter);
          for (let limit = 1; limit <= expected.length + 1; limit += 1) {
            const cut: string[][] = [];
            for (let start = 0; start < expected.length; start += limit) cut.push(expected.slice(start, start + limit));
            if (cut.length === 0) cut.push([]);
            const context = JSON.stringify({ seed, keys: tree.keys, emptyDirectories: tree.emptyDirectories, prefix, delimiter, limit });
            expect(await pages(store, prefix, delimiter, limit), context).toEqual(cut);
          }
        }
      }
    }
  });

  it("resumes after a key inside a common prefix as S3's StartAfter does: the prefix is listed when keys follow in it", async () => {
    const tree: Tree = { keys: ["a/x", "a/y", "b"], emptyDirectories: [] };
    const store = await storeOf(tree);
    const list = (after: string) => store.list({ namespace: "team-a", prefix: "", delimiter: "/", limit: 10, after });
    expect(await list("a/x")).toMatchObject({ prefixes: ["a/"], items: [{ key: "b" }] });
    expect(await list("a/y")).toMatchObject({ prefixes: [], items: [{ key: "b" }] });
    expect(await list("a/")).toMatchObject({ prefixes: [], items: [{ key: "b" }] });
  });
});
