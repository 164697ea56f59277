// A young-generation garbage collection every RECEIVED_BYTES_PER_COLLECTION of upload bodies.
//
// Why: Node's HTTP parser hands each upload's body over as a new buffer per socket read (≈ 64 KiB).
// Each dies at once, but its memory, which lives outside the V8 heap, is returned only when a garbage
// collection finds its small wrapper object dead, and V8 starts a young collection by how full its
// young heap is, which these wrappers hardly fill. Between collections, tens of MB of dead bodies
// waited: a 1 GiB PUT on Node 24 peaked at 189 MB RSS (the target: under 150 MB); with a collection every
// 32 MiB received 153 MB, every 8 MiB 129 MB. It is faster too (1 GiB PUTs alternating, Node 24: 1.3-1.7 s
// against 2.5-5.0 s), as malloc reuses the freed buffers instead of faulting in new pages. A young
// collection takes about a millisecond and runs as its own task (execution: "async"), never inside a
// request's turn.
//
// V8's gc() is exposed to a private context only, not to the process's global scope.
import v8 from "node:v8";
import vm from "node:vm";

export const RECEIVED_BYTES_PER_COLLECTION = 8 << 20;

type GcFunction = (options: { type: "minor" | "major"; execution: "async" | "sync" }) => void;

function gcFunction(): GcFunction {
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as GcFunction;
}

/** The bytes received since the last collection; one per runtime (runtime.ts), shared by its uploads. */
export class YoungGc {
  #collect: GcFunction | undefined;
  #received = 0;

  /** Counts upload bytes received; asks for a young collection each time another 8 MiB have arrived. */
  noteReceivedBytes(bytes: number): void {
    this.#received += bytes;
    if (this.#received < RECEIVED_BYTES_PER_COLLECTION) return;
    this.#received = 0;
    this.#collect ??= gcFunction();
    this.#collect({ type: "minor", execution: "async" });
  }
}
