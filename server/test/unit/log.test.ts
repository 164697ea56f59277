// Log lines reach standard output once per turn of the event loop, in order, and none is lost.
import { describe, expect, it } from "vitest";
import { createLogger, linesPerTurn } from "../../src/log.js";

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe("linesPerTurn", () => {
  it("writes all the lines of one turn with one write, in order, after the turn", async () => {
    const writes: string[] = [];
    const lines = linesPerTurn((text) => writes.push(text));
    lines.write("a\n");
    lines.write("b\n");
    lines.write("c\n");
    expect(writes).toEqual([]);
    await nextTurn();
    expect(writes).toEqual(["a\nb\nc\n"]);
    lines.write("d\n");
    await nextTurn();
    expect(writes).toEqual(["a\nb\nc\n", "d\n"]);
  });

  it("flush writes what is pending at once (the exit handler's job), and nothing twice", async () => {
    const writes: string[] = [];
    const lines = linesPerTurn((text) => writes.push(text));
    lines.write("last words\n");
    lines.flush();
    expect(writes).toEqual(["last words\n"]);
    await nextTurn();
    lines.flush();
    expect(writes).toEqual(["last words\n"]);
  });

  it("carries JSON lines from a logger unchanged", async () => {
    const writes: string[] = [];
    const lines = linesPerTurn((text) => writes.push(text));
    const logger = createLogger("info", lines.write);
    logger.debug("filtered out");
    logger.info("one", { n: 1 });
    logger.warn("two");
    await nextTurn();
    const parsed = writes.join("").trim().split("\n").map((line) => JSON.parse(line) as { msg: string; level: string; n?: number });
    expect(parsed.map((line) => [line.level, line.msg, line.n])).toEqual([
      ["info", "one", 1],
      ["warn", "two", undefined],
    ]);
  });
});
