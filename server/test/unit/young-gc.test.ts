// Upload bytes received trigger a young garbage collection every RECEIVED_BYTES_PER_COLLECTION, and
// not before: observed through Node's own GC performance entries.
import { constants, PerformanceObserver, type PerformanceEntry } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { RECEIVED_BYTES_PER_COLLECTION, YoungGc } from "../../src/storage/young-gc.js";

async function minorCollectionsDuring(action: () => void): Promise<number> {
  const entries: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => entries.push(...list.getEntries()));
  observer.observe({ entryTypes: ["gc"] });
  action();
  // The collection is asked for asynchronously; its entry follows within a few turns.
  await new Promise((resolve) => setTimeout(resolve, 200));
  observer.disconnect();
  const kindOf = (entry: PerformanceEntry) => (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
  return entries.filter((entry) => kindOf(entry) === constants.NODE_PERFORMANCE_GC_MINOR).length;
}

describe("YoungGc.noteReceivedBytes", () => {
  it("asks for a young collection once enough upload bytes have arrived, and not before", async () => {
    const youngGc = new YoungGc();
    const chunk = 64 << 10;
    const before = await minorCollectionsDuring(() => {
      for (let i = 0; i < RECEIVED_BYTES_PER_COLLECTION / chunk - 1; i += 1) youngGc.noteReceivedBytes(chunk);
    });
    const after = await minorCollectionsDuring(() => youngGc.noteReceivedBytes(chunk));
    expect(after).toBeGreaterThanOrEqual(1);
    expect(before).toBe(0);
  });
});
