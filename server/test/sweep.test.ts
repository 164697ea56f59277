// The temporary-file sweep: crash leftovers go, live work (this process's, or a peer's still being
// written) stays — on a shared volume several replicas use the same tmp directory.
import fs from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { listFiles } from "./support/harness.js";
import { testStore } from "./support/store.js";

const STALE_MS = 60_000;

function makeStore(root?: string) {
  return testStore(root === undefined ? { staleTempMs: STALE_MS } : { staleTempMs: STALE_MS, root });
}

async function age(entry: string, ms: number): Promise<void> {
  const when = new Date(Date.now() - ms);
  await fs.utimes(entry, when, when);
}

describe("sweepTemporaryFiles", () => {
  it("at start-up removes this host's leftovers; periodically only stale entries of others; never its own", async () => {
    const store = await makeStore();
    const tmp = store.layout.tmpDir;
    const { ownPrefix, hostPrefix } = store.layout.tempNames;
    const own = path.join(tmp, `${ownPrefix}live.upload`);
    const ownOld = path.join(tmp, `${ownPrefix}old.upload`);
    // An earlier start on this host, with the same PID as this one (a container's PID 1 restarted).
    const deadProcess = path.join(tmp, `${hostPrefix}${process.pid}.crashed.upload`);
    const peerFresh = path.join(tmp, "other-pod.7.fresh.upload");
    const peerStale = path.join(tmp, "other-pod.7.stale.upload");
    const peerExtraction = path.join(tmp, "other-pod.7.busy.extract");
    for (const file of [own, ownOld, deadProcess, peerFresh, peerStale]) await fs.writeFile(file, "x");
    await fs.mkdir(path.join(peerExtraction, "sub"), { recursive: true });
    await fs.writeFile(path.join(peerExtraction, "sub/huge.bin"), "still being written");
    await age(ownOld, 10 * STALE_MS);
    await age(peerStale, 10 * STALE_MS);
    // The extraction's directories are old, but a file inside is still changing: it is live.
    await age(path.join(peerExtraction, "sub"), 10 * STALE_MS);
    await age(peerExtraction, 10 * STALE_MS);

    expect(await store.sweepTemporaryFiles(false)).toBe(1);
    expect((await fs.readdir(tmp)).sort()).toEqual(
      [own, ownOld, deadProcess, peerFresh, peerExtraction].map((entry) => path.basename(entry)).sort(),
    );

    expect(await store.sweepTemporaryFiles(true)).toBe(1);
    expect((await fs.readdir(tmp)).sort()).toEqual([own, ownOld, peerFresh, peerExtraction].map((entry) => path.basename(entry)).sort());
    expect(await listFiles(peerExtraction)).toEqual(["sub/huge.bin"]);
  });

  it("two stores in one process are two starts: each sweeps the other's stale temporary files as a peer's, and keeps its own", async () => {
    const first = await makeStore();
    const second = await makeStore(first.options.root);
    expect(first.layout.tempNames.ownPrefix).not.toBe(second.layout.tempNames.ownPrefix);
    const tmp = first.layout.tmpDir;
    const firstStale = path.join(tmp, `${first.layout.tempNames.ownPrefix}old.upload`);
    const secondStale = path.join(tmp, `${second.layout.tempNames.ownPrefix}old.upload`);
    for (const file of [firstStale, secondStale]) {
      await fs.writeFile(file, "x");
      await age(file, 10 * STALE_MS);
    }
    expect(await second.sweepTemporaryFiles(false)).toBe(1);
    expect(await fs.readdir(tmp)).toEqual([path.basename(secondStale)]);
    expect(await first.sweepTemporaryFiles(false)).toBe(1);
    expect(await fs.readdir(tmp)).toEqual([]);
  });
});
