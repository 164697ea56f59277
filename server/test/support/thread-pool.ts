// libuv's thread pool made unavailable for a while: proves that a call runs on the event loop (it
// still completes) or in the pool (it waits).
import { execFileSync } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";

/**
 * Occupies every thread of libuv's pool with an open(2) of a FIFO that has no writer yet, runs `during`,
 * then opens the FIFO for writing on the event loop, which lets every blocked open return. `dir` holds
 * the FIFO.
 */
export async function withStalledThreadPool(dir: string, during: () => Promise<void>): Promise<void> {
  const fifo = path.join(dir, `stall-${process.pid}-${Date.now()}.fifo`);
  execFileSync("mkfifo", [fifo]);
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const stalled = Array.from({ length: threads }, () => fs.open(fifo, "r"));
  try {
    // Long enough for every open to reach a pool thread and block there.
    await new Promise((resolve) => setTimeout(resolve, 50));
    await during();
  } finally {
    closeSync(openSync(fifo, "w"));
    for (const handle of await Promise.all(stalled)) await handle.close();
    await fs.rm(fifo, { force: true });
  }
}

/** "settled" if `promise` settles within `ms`, "pending" otherwise. */
export function settledWithin(promise: Promise<unknown>, ms: number): Promise<"settled" | "pending"> {
  return Promise.race([promise.then(() => "settled" as const), new Promise<"pending">((resolve) => setTimeout(() => resolve("pending"), ms))]);
}
