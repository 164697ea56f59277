// The orphan sweep: digest sidecars whose artifact is gone and run records whose run has no artifact
// left are removed by a background job, bounded, resumable and under a lease; a sidecar or record that
// may belong to a write in progress is never touched. Ages are set with utimes and the job's clock is a
// fake one: no test sleeps.
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { assemble, type Assembled } from "../src/assemble.js";
import { loadConfig } from "../src/config.js";
import { JobPreempted, type JobContext } from "../src/jobs/runner.js";
import { VolumeLease } from "../src/jobs/volume-lease.js";
import { createLogger, silentLogger } from "../src/log.js";
import { createOrphanMetrics, removeIfUnchanged, RUN_RECORD_MIN_AGE_MS, SIDECAR_MIN_AGE_MS, sweepOrphans, type OrphanSweepDeps } from "../src/retention/orphans.js";
import { describes } from "../src/storage/meta.js";
import { parseKey } from "../src/storage/names.js";
import { listFiles, tempDir } from "./support/harness.js";

const opened: Assembled[] = [];

async function server(env: Record<string, string> = {}): Promise<Assembled & { root: string }> {
  const root = await tempDir("orphans");
  const assembled = await assemble(loadConfig({ ARTIFACTS_ROOT: root, AUTH_MODE: "none", S3_PORT: "0", ...env }), silentLogger);
  opened.push(assembled);
  return { ...assembled, root };
}

afterEach(async () => {
  for (const a of opened.splice(0)) await a.jobs.stop();
});

async function put(a: Assembled, namespace: string, key: string, body = "x"): Promise<void> {
  async function* once() {
    yield await Promise.resolve(Buffer.from(body));
  }
  await a.store.put({ namespace, key: parseKey(key), body: once() });
}

/** Sets a file's modification time `ms` into the past. */
async function age(file: string, ms: number): Promise<void> {
  const when = new Date(Date.now() - ms);
  await fs.utimes(file, when, when);
}

const sidecar = (a: Assembled, namespace: string, key: string) => a.store.layout.metaPath(namespace, key);
const exists = (file: string) => fs.access(file).then(() => true, () => false);
const OLD_SIDECAR_MS = SIDECAR_MIN_AGE_MS + 60_000;
const OLD_RECORD_MS = RUN_RECORD_MIN_AGE_MS + 60_000;

function deps(a: Assembled, overrides: Partial<OrphanSweepDeps> = {}): OrphanSweepDeps {
  return { store: a.store, cursorFile: path.join(a.store.layout.internalDir, "jobs/orphans.cursor"), dryRun: false, logger: silentLogger, metrics: createOrphanMetrics(new Registry()), ...overrides };
}

const quiet: JobContext = { now: Date.now, step: () => Promise.resolve(false) };

describe("orphaned digest sidecars", () => {
  it("go when their artifact is gone; a live artifact's, a young one and anything not named like a sidecar stay", async () => {
    const a = await server();
    for (const key of ["keep", "gone", "young-gone", "dir/gone-too"]) await put(a, "team-a", key);
    await put(a, "team-b", "whole-namespace-removed");
    // A manual rm, a crash between unlink and sidecar removal: the files go, the sidecars stay.
    for (const key of ["gone", "young-gone", "dir/gone-too"]) await fs.rm(path.join(a.root, "team-a", key));
    await fs.rm(path.join(a.root, "team-b"), { recursive: true });
    for (const key of ["keep", "gone", "dir/gone-too"]) await age(sidecar(a, "team-a", key), OLD_SIDECAR_MS);
    await age(sidecar(a, "team-b", "whole-namespace-removed"), OLD_SIDECAR_MS);
    // Not sidecars: a stray file among them, and a directory no namespace can be named.
    const stray = path.join(a.store.layout.metaDir, "team-a", "notes.txt");
    const strange = path.join(a.store.layout.metaDir, "Not_A_Namespace", "00", `00${"0".repeat(62)}.json`);
    await fs.writeFile(stray, "mine");
    await fs.mkdir(path.dirname(strange), { recursive: true });
    await fs.writeFile(strange, "{}");
    for (const file of [stray, strange]) await age(file, OLD_SIDECAR_MS);

    await a.jobs.runNow("orphans");

    expect(await exists(sidecar(a, "team-a", "keep"))).toBe(true);
    expect(await exists(sidecar(a, "team-a", "young-gone"))).toBe(true);
    expect(await exists(sidecar(a, "team-a", "gone"))).toBe(false);
    expect(await exists(sidecar(a, "team-a", "dir/gone-too"))).toBe(false);
    expect(await exists(sidecar(a, "team-b", "whole-namespace-removed"))).toBe(false);
    expect(await fs.readFile(stray, "utf8")).toBe("mine");
    expect(await exists(strange)).toBe(true);
    // The live artifact still answers with the digest its sidecar holds.
    const kept = await a.store.read("team-a", parseKey("keep"));
    if ("directory" in kept) throw new Error("a file was written");
    await kept.release();
    expect(describes(await a.store.sidecars.read(sidecar(a, "team-a", "keep")), await fs.stat(path.join(a.root, "team-a/keep"), { bigint: true }))).toBe(true);
    const metrics = await a.metrics.registry.metrics();
    expect(metrics).toMatch(/kfp_artifacts_orphans_removed_total\{kind="sidecar",artifact_namespace="team-a"\} 2/);
    expect(metrics).toMatch(/kfp_artifacts_orphans_removed_total\{kind="sidecar",artifact_namespace="team-b"\} 1/);
    expect(metrics).toMatch(/kfp_artifacts_job_runs_total\{job_name="orphans",outcome="ok"\} 1/);
  });

  it("a write committed while the sweep walks keeps its sidecar, though the walk did not see its artifact", async () => {
    const a = await server();
    // An old orphan at the key the write will use, and another file so the walk has a step to take.
    await put(a, "team-a", "racing", "old");
    await fs.rm(path.join(a.root, "team-a/racing"));
    await age(sidecar(a, "team-a", "racing"), OLD_SIDECAR_MS);
    await put(a, "team-a", "other");
    let steps = 0;
    const writeDuringTheWalk: JobContext = {
      now: Date.now,
      step: async () => {
        steps += 1;
        // The walk has read the namespace's directory by its first step: this artifact is not in it.
        if (steps === 1) await put(a, "team-a", "racing", "new");
        return false;
      },
    };
    const report = await sweepOrphans(deps(a), writeDuringTheWalk);
    expect(report.sidecarsRemoved).toBe(0);
    const meta = await a.store.sidecars.read(sidecar(a, "team-a", "racing"));
    expect(describes(meta, await fs.stat(path.join(a.root, "team-a/racing"), { bigint: true }))).toBe(true);
    expect(meta?.sha256).toBe(createHash("sha256").update("new").digest("hex"));
  });

  it("removes only the version judged: one a writer renamed into place since is put back", async () => {
    const a = await server();
    await put(a, "team-a", "k", "first");
    const file = sidecar(a, "team-a", "k");
    const judged = await fs.lstat(file);
    // A commit replaces the sidecar (a new inode by rename) between the judgment and the removal.
    await a.store.sidecars.write(file, { sha256: "b".repeat(64), size: 6, ino: "1", mtimeNs: "1" });
    expect(await removeIfUnchanged(file, judged, a.store.layout.scratch)).toBe(false);
    expect(JSON.parse(await fs.readFile(file, "utf8"))).toMatchObject({ sha256: "b".repeat(64) });
    // Unchanged: removed; gone already: nothing to do.
    expect(await removeIfUnchanged(file, await fs.lstat(file), a.store.layout.scratch)).toBe(true);
    expect(await exists(file)).toBe(false);
    expect(await removeIfUnchanged(file, judged, a.store.layout.scratch)).toBe(false);
    // Nothing left aside in the temporary directory.
    expect(await fs.readdir(a.store.layout.tmpDir)).toEqual([]);
  });

  it("an interrupted sweep resumes after the last sidecar it recorded, and finishes", async () => {
    const a = await server();
    const dir = path.join(a.store.layout.metaDir, "team-a");
    for (let i = 0; i < 1200; i += 1) {
      const digest = randomBytes(32).toString("hex");
      const file = path.join(dir, digest.slice(0, 2), `${digest}.json`);
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, "{}");
      await age(file, OLD_SIDECAR_MS);
    }
    let steps = 0;
    const losesItsLease: JobContext = {
      now: Date.now,
      step: () => (++steps > 700 ? Promise.reject(new JobPreempted("the lease was lost")) : Promise.resolve(false)),
    };
    await expect(sweepOrphans(deps(a), losesItsLease)).rejects.toBeInstanceOf(JobPreempted);
    // 700 judged and removed; the cursor was written at the 500th.
    expect(await listFiles(dir)).toHaveLength(500);
    const resumed = await sweepOrphans(deps(a), quiet);
    expect(resumed.resumedFrom).toMatchObject({ phase: "sidecars", namespace: "team-a" });
    expect(resumed.sidecarsScanned).toBe(500);
    expect(resumed.sidecarsRemoved).toBe(500);
    expect(await listFiles(dir)).toEqual([]);
    await expect(fs.access(deps(a).cursorFile)).rejects.toThrow();
  });

  it("a dry run removes nothing and logs what would go", async () => {
    const a = await server();
    await put(a, "team-a", "gone");
    await fs.rm(path.join(a.root, "team-a/gone"));
    await age(sidecar(a, "team-a", "gone"), OLD_SIDECAR_MS);
    const lines: string[] = [];
    const report = await sweepOrphans(deps(a, { dryRun: true, logger: createLogger("info", (line) => lines.push(line)) }), quiet);
    expect(report.sidecarsRemoved).toBe(0);
    expect(report.wouldRemove).toEqual([`sidecar team-a/${path.relative(path.join(a.store.layout.metaDir, "team-a"), sidecar(a, "team-a", "gone"))}`]);
    expect(await exists(sidecar(a, "team-a", "gone"))).toBe(true);
    const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged.find((line) => line.msg === "orphan sweep")).toMatchObject({ sidecarsScanned: 1, sidecarsRemoved: 0, dryRun: true, wouldRemove: 1 });
    expect(logged.find((line) => line.msg === "orphan sweep dry run: would remove")).toMatchObject({ orphans: report.wouldRemove });
  });

  it("runs on one server at a time: while another holds the lease it skips and touches nothing", async () => {
    const a = await server();
    await put(a, "team-a", "gone");
    await fs.rm(path.join(a.root, "team-a/gone"));
    await age(sidecar(a, "team-a", "gone"), OLD_SIDECAR_MS);
    const other = new VolumeLease(path.join(a.store.layout.internalDir, "jobs"), "orphans", "another-server", 60_000);
    expect(await other.acquire()).toBe(true);
    await a.jobs.runNow("orphans");
    expect(await exists(sidecar(a, "team-a", "gone"))).toBe(true);
    expect(await a.metrics.registry.metrics()).toMatch(/kfp_artifacts_job_runs_total\{job_name="orphans",outcome="skipped"\} 1/);
    await other.release();
    await a.jobs.runNow("orphans");
    expect(await exists(sidecar(a, "team-a", "gone"))).toBe(false);
  });
});

describe("orphaned run records", () => {
  it("go when the run's directory holds no file and the record is old; a run with artifacts, a young record and a record that misnames itself stay", async () => {
    const a = await server();
    const record = (runId: string) => ({ runId, namespace: "team-a", pipeline: "pipe" });
    const recordFile = (runId: string, namespace = "team-a") => {
      const digest = createHash("sha256").update(runId).digest("hex");
      return path.join(a.store.layout.runsDir, digest.slice(0, 2), digest, `${namespace}.json`);
    };
    for (const runId of ["expired", "alive", "young", "empty-dirs"]) {
      await a.runs.claim(record(runId));
      await put(a, "team-a", `pipe/${runId}/node/out`);
    }
    await a.store.delete("team-a", parseKey("pipe/expired"), true);
    await a.store.delete("team-a", parseKey("pipe/young"), true);
    await a.store.delete("team-a", parseKey("pipe/empty-dirs/node/out"), false);
    await fs.mkdir(path.join(a.root, "team-a/pipe/empty-dirs/node"), { recursive: true });
    // A record of the one-per-run layout, and one whose file names another namespace than it holds.
    const legacyDigest = createHash("sha256").update("legacy").digest("hex");
    const legacy = path.join(a.store.layout.runsDir, legacyDigest.slice(0, 2), `${legacyDigest}.json`);
    await fs.mkdir(path.dirname(legacy), { recursive: true });
    await fs.writeFile(legacy, JSON.stringify(record("legacy")));
    const misnamed = recordFile("misnamed", "team-b");
    await fs.mkdir(path.dirname(misnamed), { recursive: true });
    await fs.writeFile(misnamed, JSON.stringify(record("misnamed")));
    for (const runId of ["expired", "alive", "empty-dirs"]) await age(recordFile(runId), OLD_RECORD_MS);
    for (const file of [legacy, misnamed]) await age(file, OLD_RECORD_MS);

    await a.jobs.runNow("orphans");

    expect(await a.runs.find("expired")).toEqual([]);
    expect(await a.runs.find("empty-dirs")).toEqual([]);
    expect(await a.runs.find("legacy")).toEqual([]);
    expect(await a.runs.find("alive")).toEqual([record("alive")]);
    // Recorded, its first artifact's upload still on its way: stays.
    expect(await a.runs.find("young")).toEqual([record("young")]);
    expect(await exists(misnamed)).toBe(true);
    // The run's directory in the index went with its last record.
    expect(await exists(path.dirname(recordFile("expired")))).toBe(false);
    // The artifacts of the run that has some are untouched.
    expect(await listFiles(path.join(a.root, "team-a"))).toEqual(["pipe/alive/node/out"]);
    expect(await a.metrics.registry.metrics()).toMatch(/kfp_artifacts_orphans_removed_total\{kind="run_record",artifact_namespace="team-a"\} 3/);
  });
});
