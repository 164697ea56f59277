// An ArtifactStore on a new temporary directory (or `root`), initialized, with generous limits and no
// fsync, for tests of the store itself; `runtime` defaults to a new one of its own.
import { silentLogger } from "../../src/log.js";
import { createRuntime, type Runtime } from "../../src/runtime.js";
import { ArtifactStore, type StoreOptions } from "../../src/storage/store.js";
import { tempDir } from "./harness.js";

export async function testStore(overrides: Partial<StoreOptions> & { runtime?: Runtime } = {}): Promise<ArtifactStore> {
  const store = new ArtifactStore({
    root: overrides.root ?? (await tempDir("store")),
    maxUploadBytes: 1 << 30,
    maxArchiveExpandedBytes: 1 << 30,
    minFreeBytes: 0,
    namespaceQuotaBytes: 0,
    fsync: false,
    staleTempMs: 60_000,
    ...overrides,
    runtime: overrides.runtime ?? createRuntime({ logger: silentLogger }),
  });
  await store.init();
  return store;
}
