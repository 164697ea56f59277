// Reads return bodies (storage/read.ts): the store picks bytes in memory, one read, or a body produced
// from the file into the runtime's buffers, and whoever reads either takes a body or releases the file.
import fs from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.js";
import { createRuntime } from "../../src/runtime.js";
import type { ArtifactBody } from "../../src/storage/body.js";
import { BODY_BUFFER_BYTES } from "../../src/storage/buffer-pool.js";
import { parseKey } from "../../src/storage/names.js";
import type { ArtifactStore, FileRead } from "../../src/storage/store.js";
import { testStore } from "../support/store.js";

const SMALL = 64 << 10;

async function storeWithFiles(files: Record<string, Buffer>): Promise<{ store: ArtifactStore; runtime: ReturnType<typeof createRuntime> }> {
  const runtime = createRuntime({ logger: silentLogger, uploadWorkers: 1 });
  const store = await testStore({ runtime });
  for (const [key, bytes] of Object.entries(files)) {
    await store.put({ namespace: "team-a", key: parseKey(key), body: [bytes][Symbol.iterator]() as unknown as AsyncIterable<Uint8Array> });
  }
  return { store, runtime };
}

async function fileRead(store: ArtifactStore, key: string): Promise<FileRead> {
  const read = await store.read("team-a", parseKey(key));
  if ("directory" in read) throw new Error(`${key} is a directory`);
  return read;
}

/** The bytes of a body, as the transport would send them; a produced body's done() runs at the end. */
async function bytesOf(body: ArtifactBody): Promise<Buffer> {
  if (body.kind === "bytes") return Buffer.from(body.bytes);
  if (body.kind === "stream") {
    const chunks: Buffer[] = [];
    for await (const chunk of body.stream) chunks.push(Buffer.from(chunk as Uint8Array));
    return Buffer.concat(chunks);
  }
  const target = body.buffers.take();
  const parts: Buffer[] = [];
  try {
    for (let filled = await body.produce(target); filled > 0; filled = await body.produce(target)) parts.push(Buffer.from(target.subarray(0, filled)));
  } finally {
    await body.done();
    body.buffers.give(target);
  }
  return Buffer.concat(parts);
}

async function openDescriptors(): Promise<number> {
  return (await fs.readdir("/proc/self/fd")).length;
}

const pattern = (size: number) => Buffer.from(Array.from({ length: size }, (_, i) => (i * 7) % 251));

describe("ArtifactStore.read bodies", () => {
  it("a small artifact is read whole once, even for a range, and its next read comes from memory", async () => {
    const bytes = pattern(5000);
    const { store, runtime } = await storeWithFiles({ small: bytes });
    const first = await fileRead(store, "small");
    const range = await first.body(10, 100);
    expect(range.kind).toBe("bytes");
    expect(await bytesOf(range)).toEqual(bytes.subarray(10, 110));
    await first.release();
    // From memory now: no file is opened, and release() has nothing to close.
    const before = await openDescriptors();
    const second = await fileRead(store, "small");
    expect(await openDescriptors()).toBe(before);
    expect(second.sha256).toBe(first.sha256);
    expect(await bytesOf(await second.body(0, 5000))).toEqual(bytes);
    await second.release();
    await runtime.stop();
  });

  it("a short range of a large artifact is one read; a longer one is produced from the file, reading only the range", async () => {
    const bytes = pattern(3 * BODY_BUFFER_BYTES + 123);
    const { store, runtime } = await storeWithFiles({ large: bytes });
    const short = await fileRead(store, "large");
    const shortBody = await short.body(BODY_BUFFER_BYTES, SMALL);
    expect(shortBody.kind).toBe("bytes");
    expect(await bytesOf(shortBody)).toEqual(bytes.subarray(BODY_BUFFER_BYTES, BODY_BUFFER_BYTES + SMALL));
    const long = await fileRead(store, "large");
    const start = 17;
    const length = 2 * BODY_BUFFER_BYTES + 5;
    const longBody = await long.body(start, length);
    expect(longBody.kind).toBe("produced");
    // equals(), not toEqual(): a deep comparison of megabytes element by element takes minutes.
    expect((await bytesOf(longBody)).equals(bytes.subarray(start, start + length))).toBe(true);
    // Not kept in memory: the large artifact is opened again.
    const again = await fileRead(store, "large");
    const whole = await again.body(0, bytes.length);
    expect(whole.kind).toBe("produced");
    expect((await bytesOf(whole)).equals(bytes)).toBe(true);
    await runtime.stop();
  });

  it("release() closes the file when no body was taken, and does nothing after a body took it", async () => {
    const { store, runtime } = await storeWithFiles({ large: pattern(2 * SMALL) });
    const before = await openDescriptors();
    const unused = await fileRead(store, "large");
    expect(await openDescriptors()).toBe(before + 1);
    await unused.release();
    await unused.release();
    expect(await openDescriptors()).toBe(before);

    const taken = await fileRead(store, "large");
    const body = await taken.body(0, 2 * SMALL);
    await taken.release();
    // The body owns the file until it is sent.
    expect(await openDescriptors()).toBe(before + 1);
    expect((await bytesOf(body)).length).toBe(2 * SMALL);
    expect(await openDescriptors()).toBe(before);
    await expect(taken.body(0, 1)).rejects.toThrow(/already handed on/);
    await runtime.stop();
  });

  it("a file truncated underneath a produced body fails the body instead of sending other bytes", async () => {
    const { store, runtime } = await storeWithFiles({ large: pattern(2 * BODY_BUFFER_BYTES) });
    const read = await fileRead(store, "large");
    const body = await read.body(0, read.size);
    await fs.truncate(store.layout.artifactPath("team-a", parseKey("large")), BODY_BUFFER_BYTES);
    await expect(bytesOf(body)).rejects.toThrow(/became shorter/);
    await runtime.stop();
  });

  it("chunks() yields the whole artifact for a copy, and a directory reads as one", async () => {
    const bytes = pattern(3 * SMALL + 1);
    const { store, runtime } = await storeWithFiles({ "dir/file": bytes });
    const read = await fileRead(store, "dir/file");
    const parts: Buffer[] = [];
    for await (const chunk of read.chunks()) parts.push(Buffer.from(chunk));
    await read.release();
    expect(Buffer.concat(parts).equals(bytes)).toBe(true);
    expect(await store.read("team-a", parseKey("dir"))).toEqual({ directory: true });
    await expect(store.read("team-a", parseKey("missing"))).rejects.toMatchObject({ status: 404 });
    await runtime.stop();
  });
});
