// The e2e suites: real cluster, real image, run one file at a time (2 cores, one kind cluster) in a
// fixed order, via `make e2e` (mk/e2e.mk). Not part of `make test`.
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/** Cheapest first, so a broken cluster or image shows up after one install, not five. */
export const SUITE_ORDER = ["shared-helm", "shared-kustomize", "daemonset", "dedicated", "dedicated-kustomize", "security", "manager"];

const rank = (file: string) => {
  const index = SUITE_ORDER.findIndex((suite) => file.endsWith(`/${suite}.test.ts`));
  return index === -1 ? SUITE_ORDER.length : index;
};

class FixedOrder extends BaseSequencer {
  override sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return Promise.resolve([...files].sort((a, b) => rank(a.moduleId) - rank(b.moduleId) || a.moduleId.localeCompare(b.moduleId)));
  }
}

export default defineConfig({
  test: {
    include: ["e2e/suites/**/*.test.ts"],
    fileParallelism: false,
    maxWorkers: 1,
    // Tests inside a file depend on each other's state (an artifact written first is read after a pod
    // deletion and an upgrade): never shuffle, never retry silently.
    sequence: { sequencer: FixedOrder, shuffle: false },
    retry: 0,
    testTimeout: 240_000,
    hookTimeout: 420_000,
    teardownTimeout: 60_000,
    reporters: ["default"],
  },
});
