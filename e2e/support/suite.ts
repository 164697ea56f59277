// One harness per suite file: generated names, namespaces it creates and deletes, cleanup steps run in
// reverse order in afterAll, and a diagnostics dump when (and only when) a test or the setup fails.
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, beforeAll } from "vitest";
import { dumpDiagnostics } from "./diagnostics.js";
import { env } from "./env.js";
import { createNamespace, deleteNamespaces } from "./kube.js";

export interface Suite {
  /** Random per run, so reruns and leftovers of a failed run never collide. */
  readonly runId: string;
  /** `<prefix>-<runId>`: a DNS label. */
  name(prefix: string): string;
  /** Creates a namespace named `<prefix>-<runId>`, watched for diagnostics and deleted in afterAll. */
  namespace(prefix: string, labels?: Record<string, string>): Promise<string>;
  /** Namespaces created by other means (kubectl apply) that diagnostics should cover. */
  watchNamespace(name: string): void;
  /** Runs in afterAll, last registered first, before the namespaces are deleted. */
  onCleanup(what: string, step: () => Promise<void>): void;
  /** Like beforeAll, but a failure here also triggers the diagnostics dump. */
  setup(body: () => Promise<void>, timeoutMs?: number): void;
}

export function e2eSuite(suiteName: string): Suite {
  const runId = randomBytes(4).toString("hex").slice(0, 6);
  const created: string[] = [];
  const watched = new Set<string>();
  const cleanups: { what: string; step: () => Promise<void> }[] = [];
  let startedAt = Date.now();

  beforeAll(() => {
    startedAt = Date.now();
  });

  // Dumped right when something fails, while the failing state is still there (later tests and the
  // cleanup change it); a few dumps per suite at most, each a few seconds.
  let dumps = 0;
  const dump = async (what: string) => {
    if (dumps >= 3) return;
    dumps++;
    try {
      const where = await dumpDiagnostics(suiteName, [...watched]);
      console.error(`${suiteName}: ${what} failed; diagnostics written to ${where}`);
    } catch (error) {
      console.error(`${suiteName}: diagnostics could not be written: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  afterEach(async (context) => {
    if (context.task.result?.state === "fail") await dump(`"${context.task.name}"`);
  }, 120_000);

  afterAll(async () => {
    for (const { what, step } of cleanups.reverse()) {
      try {
        await step();
      } catch (error) {
        // A cleanup that fails must not hide the tests' result; it is reported, and names are per run.
        console.warn(`${suiteName}: cleanup "${what}" failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    try {
      if (created.length > 0) await deleteNamespaces(created);
    } catch (error) {
      console.warn(`${suiteName}: ${error instanceof Error ? error.message : String(error)}`);
    }
    // Wall time including install and cleanup, for the summary of `make e2e` (e2e/summary.mjs).
    const timings = path.join(env.workDir, "timings");
    await mkdir(timings, { recursive: true });
    await writeFile(path.join(timings, `${suiteName}.json`), JSON.stringify({ seconds: (Date.now() - startedAt) / 1000 }));
  }, 300_000);

  const suite: Suite = {
    runId,
    name: (prefix) => `${prefix}-${runId}`,
    async namespace(prefix, labels) {
      const name = `${prefix}-${runId}`;
      await createNamespace(name, labels);
      created.push(name);
      watched.add(name);
      return name;
    },
    watchNamespace: (name) => void watched.add(name),
    onCleanup: (what, step) => void cleanups.push({ what, step }),
    setup(body, timeoutMs = 300_000) {
      beforeAll(async () => {
        try {
          await body();
        } catch (error) {
          await dump("setup");
          throw error;
        }
      }, timeoutMs);
    },
  };
  return suite;
}
