import { defineConfig } from "vitest/config";

// Unit and integration tests that need no cluster. The e2e suites have their own config
// (e2e/vitest.config.ts) and run only through `make e2e`.
export default defineConfig({
  test: {
    include: ["server/test/**/*.test.ts", "charts/**/*.test.ts", "kustomize/**/*.test.ts", "scripts/**/*.test.ts"],
    exclude: ["node_modules/**", "e2e/**"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests start real servers and child processes; two cores are all we have.
    maxWorkers: 2,
    reporters: ["default"],
    globalSetup: ["server/test/support/global-setup.ts"],
  },
});
