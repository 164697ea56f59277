// The streamed base64 of a directory :read: exact across every way the source can cut its chunks.
import { randomBytes } from "node:crypto";
import { text } from "node:stream/consumers";
import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { base64Stream, ENCODE_STEP_BYTES } from "../../src/http/base64-stream.js";

async function* pieces(data: Buffer, sizes: readonly number[]): AsyncGenerator<Uint8Array> {
  let position = 0;
  for (let index = 0; position < data.length; index += 1) {
    const size = sizes[index % sizes.length] ?? 1;
    // As from a socket or a file: each chunk in a later turn of the event loop.
    if (index % 64 === 0) await nextTurn();
    yield data.subarray(position, position + size);
    position += size;
  }
}

const PREFIX = Buffer.from('{"data":"');
const SUFFIX = Buffer.from('"}');

describe("base64Stream", () => {
  it.each([
    ["empty", 0, [1]],
    ["one byte", 1, [1]],
    ["two bytes, one at a time", 2, [1]],
    ["chunks of 1, 2, 4 and 5 bytes (never a multiple of 3)", 10_000, [1, 2, 4, 5]],
    ["chunks of 3 exactly", 9_999, [3]],
    ["chunks larger than an encoding step, not multiples of 3", 3 * ENCODE_STEP_BYTES + 7, [ENCODE_STEP_BYTES + 1, 2 * ENCODE_STEP_BYTES - 1]],
    ["one chunk of several steps with a remainder", 5 * ENCODE_STEP_BYTES + 2, [5 * ENCODE_STEP_BYTES + 2]],
  ])("%s: the output is prefix + base64(whole input) + suffix", async (_what, size, sizes) => {
    const data = randomBytes(size);
    const output = await text(base64Stream(pieces(data, sizes), PREFIX, SUFFIX));
    expect(output).toBe(JSON.stringify({ data: data.toString("base64") }));
  });

  it("does not keep a reference to a chunk the source reuses", async () => {
    const expected: Buffer[] = [];
    async function* reusing(): AsyncGenerator<Uint8Array> {
      const shared = Buffer.alloc(4);
      for (let round = 0; round < 50; round += 1) {
        await nextTurn();
        randomBytes(4).copy(shared);
        expected.push(Buffer.from(shared));
        yield shared;
      }
    }
    const output = await text(base64Stream(reusing(), PREFIX, SUFFIX));
    expect(output).toBe(JSON.stringify({ data: Buffer.concat(expected).toString("base64") }));
  });

  it("ends with the source's error instead of a body that looks complete", async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield randomBytes(100);
      await nextTurn();
      throw new Error("the directory was replaced while it was being sent");
    }
    let received = "";
    const stream = base64Stream(failing(), PREFIX, SUFFIX);
    await expect(
      (async () => {
        for await (const chunk of stream) received += (chunk as Buffer).toString("latin1");
      })(),
    ).rejects.toThrow(/replaced/);
    expect(received.endsWith('"}')).toBe(false);
  });
});
