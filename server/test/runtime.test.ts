// The runtime (runtime.ts) holds every process-wide resource: two servers in one process, each with its
// own runtime, share none of them through modules.
import fs from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../src/log.js";
import { createRuntime, type Runtime } from "../src/runtime.js";
import { parseKey } from "../src/storage/names.js";
import type { ArtifactStore } from "../src/storage/store.js";
import { TempNames } from "../src/storage/temp-names.js";
import { testStore } from "./support/store.js";

function storeWith(runtime: Runtime, root?: string): Promise<ArtifactStore> {
  return testStore(root === undefined ? { runtime } : { runtime, root });
}

async function* bodyOf(text: string): AsyncGenerator<Uint8Array> {
  yield await Promise.resolve(Buffer.from(text));
}

describe("createRuntime", () => {
  it("draws a start identity per runtime, unless one is given", () => {
    const [first, second] = [createRuntime({ logger: silentLogger }), createRuntime({ logger: silentLogger })];
    expect(first.tempNames.ownPrefix).not.toBe(second.tempNames.ownPrefix);
    expect(first.tempNames.hostPrefix).toBe(second.tempNames.hostPrefix);
    const given = new TempNames("host a", "0123");
    expect(createRuntime({ logger: silentLogger, tempNames: given }).tempNames.ownPrefix).toBe("host_a.0123.");
  });

  it("takes the clock it is given: the temporary-file sweep judges ages by it", async () => {
    let now = Date.now();
    const store = await storeWith(createRuntime({ logger: silentLogger, now: () => now }));
    const peerFile = path.join(store.layout.tmpDir, "other-pod.1.busy.upload");
    await fs.writeFile(peerFile, "x");
    expect(await store.sweepTemporaryFiles(false)).toBe(0);
    now += 2 * 60_000;
    expect(await store.sweepTemporaryFiles(false)).toBe(1);
  });

  it("two stores' sidecar caches are separate: a read through one fills only its own", async () => {
    const first = createRuntime({ logger: silentLogger });
    const second = createRuntime({ logger: silentLogger });
    const a = await storeWith(first);
    const b = await storeWith(second, a.options.root);
    await a.put({ namespace: "team-a", key: parseKey("k"), body: bodyOf("hello") });
    const metaPath = a.layout.metaPath("team-a", "k");
    expect((await a.sidecars.read(metaPath))?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(first.sidecarCache.has(metaPath)).toBe(true);
    expect(second.sidecarCache.size).toBe(0);
    // The other store reads the same sidecar from the volume, into its own cache.
    expect((await b.sidecars.read(metaPath))?.sha256).toBe((await a.sidecars.read(metaPath))?.sha256);
    expect(second.sidecarCache.has(metaPath)).toBe(true);
    await a.sidecars.remove(metaPath);
    expect(first.sidecarCache.has(metaPath)).toBe(false);
    // Still cached by the other, but checked against the file at each read: gone is gone.
    expect(await b.sidecars.read(metaPath)).toBeUndefined();
  });

  it("two runtimes' upload workers are separate pools: stopping one leaves the other's uploads running", async () => {
    const first = createRuntime({ logger: silentLogger, uploadWorkers: 1 });
    const second = createRuntime({ logger: silentLogger, uploadWorkers: 1 });
    const a = await storeWith(first);
    const b = await storeWith(second);
    await a.put({ namespace: "team-a", key: parseKey("k"), body: bodyOf("one") });
    await b.put({ namespace: "team-a", key: parseKey("k"), body: bodyOf("two") });
    expect(first.uploadWriters.runningWorkers).toBe(1);
    await first.stop();
    expect(first.uploadWriters.runningWorkers).toBe(0);
    expect(second.uploadWriters.runningWorkers).toBe(1);
    await second.stop();
  });

  it("each runtime schedules its own jobs on its own metrics registry; stop() lets a running job finish its step and schedules no more", async () => {
    const first = createRuntime({ logger: silentLogger });
    const second = createRuntime({ logger: silentLogger });
    let runs = 0;
    let release: () => void = () => {};
    first.jobs.add({
      name: "count",
      intervalMs: 60_000,
      run: async (context) => {
        runs += 1;
        await new Promise<void>((resolve) => (release = resolve));
        await context.step();
      },
    });
    // A second server on the same runtime would schedule every job twice: refused.
    expect(() => first.jobs.add({ name: "count", intervalMs: 60_000, run: async () => {} })).toThrow(/already scheduled/);
    expect(() => second.jobs.runNow("count")).toThrow(/no job named count/);
    const running = first.jobs.runNow("count");
    const stopped = first.stop();
    release();
    await Promise.all([running, stopped]);
    await first.jobs.runNow("count");
    expect(runs).toBe(1);
    const metric = async (runtime: Runtime) => (await runtime.registry.getSingleMetricAsString("kfp_artifacts_job_runs_total"));
    expect(await metric(first)).toContain('job_name="count",outcome="preempted"');
    expect(await metric(second)).not.toContain('job_name="count"');
    await second.stop();
  });
});
