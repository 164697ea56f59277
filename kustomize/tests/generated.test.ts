// The generated files (kustomize/base, components/*/generated, the chart's examples and README) are
// checked by `make check-manifests` in `make test`. These tests prove that check catches drift, on a
// scratch copy of the repository so the working tree is never touched.
import { execFile } from "node:child_process";
import { appendFile, cp, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../charts/tests/lib/render.js";

let copy = "";

function checkManifests(): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(copy, "scripts/manifests/generate.mjs"), "--check"],
      { timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

beforeAll(async () => {
  copy = await mkdtemp(path.join(os.tmpdir(), "manifests-check-"));
  // The generator also writes docs/configuration.md from the server's configuration schema.
  const generatorInputs = ["scripts/configuration-doc.ts", "server/src/config.ts", "docs/configuration.md"];
  for (const dir of ["scripts/manifests", "charts/kfp-artifacts", "kustomize/base", "kustomize/components", ...generatorInputs]) {
    await cp(path.join(repoRoot, dir), path.join(copy, dir), { recursive: true });
  }
  await symlink(path.join(repoRoot, "bin"), path.join(copy, "bin"));
  await symlink(path.join(repoRoot, "node_modules"), path.join(copy, "node_modules"));
});

afterAll(async () => {
  if (copy) await rm(copy, { recursive: true, force: true });
});

describe("check-manifests", () => {
  it("passes on the committed files, then names every kind of drift", async () => {
    const clean = await checkManifests();
    expect(clean.output).toContain("manifests up to date");
    expect(clean.code).toBe(0);

    await appendFile(path.join(copy, "kustomize/base/shared/deployment.yaml"), "# hand edit\n");
    await writeFile(path.join(copy, "charts/kfp-artifacts/examples/forgotten.yaml"), "kind: List\n");
    await rm(path.join(copy, "kustomize/components/istio/generated/authorizationpolicy.yaml"));
    // A setting described differently in the server's schema: the configuration reference is stale.
    const config = path.join(copy, "server/src/config.ts");
    const schema = await readFile(config, "utf8");
    expect(schema).toContain("Bound of the decision and token caches.");
    await writeFile(config, schema.replace("Bound of the decision and token caches.", "Entries each cache holds."));
    const drifted = await checkManifests();
    expect(drifted.code).toBe(1);
    expect(drifted.output).toContain("differs: kustomize/base/shared/deployment.yaml");
    expect(drifted.output).toContain("stale: charts/kfp-artifacts/examples/forgotten.yaml");
    expect(drifted.output).toContain("missing: kustomize/components/istio/generated/authorizationpolicy.yaml");
    expect(drifted.output).toContain("differs: docs/configuration.md");
    expect(drifted.output).toContain("run `make manifests`");
  });
});
