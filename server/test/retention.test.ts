// Retention: artifacts expire by policy (default, per namespace, per prefix, S3 lifecycle rules), the
// sweep is a background job with bounded work, coordinated by a lease on the volume, resumable after an
// interruption, and it never follows a symlink out of a namespace. A fake clock ages the artifacts: no
// test sleeps.
import { readlinkSync } from "node:fs";
import fs, { type FileHandle } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { DeleteBucketLifecycleCommand, GetBucketLifecycleConfigurationCommand, PutBucketLifecycleConfigurationCommand, S3Client } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { assemble, type Assembled } from "../src/assemble.js";
import { loadConfig, parseRetentionRules } from "../src/config.js";
import { JobRunner, JobPreempted, type JobContext } from "../src/jobs/runner.js";
import { VolumeLease } from "../src/jobs/volume-lease.js";
import { createLogger, silentLogger } from "../src/log.js";
import { LifecycleStore } from "../src/retention/lifecycle.js";
import { DAY_MS, RetentionPolicy } from "../src/retention/policy.js";
import { createRetentionMetrics, sweepRetention } from "../src/retention/sweep.js";
import { parseKey } from "../src/storage/names.js";
import { listFiles, tempDir } from "./support/harness.js";
import { Registry } from "prom-client";

let clock = Date.now();
const later = (days: number) => Date.now() + days * DAY_MS;
const opened: Assembled[] = [];

async function server(env: Record<string, string> = {}, root?: string): Promise<Assembled & { root: string }> {
  const dir = root ?? (await tempDir("retention"));
  const assembled = await assemble(loadConfig({ ARTIFACTS_ROOT: dir, AUTH_MODE: "none", S3_PORT: "0", ...env }), silentLogger, { now: () => clock });
  opened.push(assembled);
  return { ...assembled, root: dir };
}

async function put(a: Assembled, namespace: string, key: string, body = "x"): Promise<void> {
  async function* once() {
    yield await Promise.resolve(Buffer.from(body));
  }
  await a.store.put({ namespace, key: parseKey(key), body: once() });
}

afterEach(async () => {
  clock = Date.now();
  for (const a of opened.splice(0)) await a.jobs.stop();
});

describe("retention policy", () => {
  it("the most specific rule wins: a prefix beats its namespace, which beats the default; 0 is forever", () => {
    const rules = [...parseRetentionRules("team-a=7,team-b=0", false), ...parseRetentionRules("team-a/tmp/=1,team-a/tmp/keep/=0", true)];
    const policy = new RetentionPolicy(30, () => rules);
    expect(policy.daysFor("team-a", "model.bin")).toBe(7);
    expect(policy.daysFor("team-a", "tmp/x")).toBe(1);
    expect(policy.daysFor("team-a", "tmp/keep/x")).toBe(0);
    expect(policy.daysFor("team-b", "anything")).toBe(0);
    expect(policy.daysFor("team-c", "anything")).toBe(30);
    // Forever by default, and no rule of its own: a sweep need not walk the namespace at all.
    expect(new RetentionPolicy(0, () => rules).mayExpire("team-c")).toBe(false);
    expect(new RetentionPolicy(0, () => rules).mayExpire("team-a")).toBe(true);
  });

  it("refuses malformed overrides with a message naming the variable", () => {
    expect(() => loadConfig({ RETENTION_NAMESPACE_DAYS: "team-a=soon" })).toThrow(/RETENTION_NAMESPACE_DAYS/);
    expect(() => loadConfig({ RETENTION_PREFIX_DAYS: "team-a=1" })).toThrow(/RETENTION_PREFIX_DAYS.*prefix/);
    expect(() => loadConfig({ RETENTION_NAMESPACE_DAYS: "Team_A=1" })).toThrow(/namespace/);
  });

  it("S3 lifecycle rules map onto namespaces: Kubeflow's private-artifacts covers every namespace", async () => {
    const scope = { kubeflowBucket: "mlpipeline", systemNamespace: "kubeflow", namespaces: () => ["team-a", "team-b"] };
    {
      const dir = await tempDir("lifecycle");
      const lifecycles = new LifecycleStore(dir);
      await lifecycles.put("mlpipeline", [{ id: "private-artifacts", enabled: true, prefix: "private-artifacts", expirationDays: 30, abortMultipartDays: 2 }]);
      await lifecycles.put("team-c", [{ id: "tmp", enabled: true, prefix: "tmp/", expirationDays: 1, abortMultipartDays: undefined }]);
      await lifecycles.put("team-d", [{ id: "off", enabled: false, prefix: "", expirationDays: 1, abortMultipartDays: undefined }]);
      expect(lifecycles.retentionRules(scope)).toEqual([
        { namespace: "team-a", prefix: "", days: 30 },
        { namespace: "team-b", prefix: "", days: 30 },
        { namespace: "team-c", prefix: "tmp/", days: 1 },
      ]);
      expect(lifecycles.abortMultipartDays()).toBe(2);
      const reloaded = new LifecycleStore(dir);
      await reloaded.load();
      expect(reloaded.get("team-c")).toEqual(lifecycles.get("team-c"));
    }
  });
});

describe("the retention sweep", () => {
  it("RETENTION_DAYS=1: artifacts older than a day go, newer stay; used bytes and the metrics say so", async () => {
    const a = await server({ RETENTION_DAYS: "1" });
    await put(a, "team-a", "old/one", "a".repeat(100));
    await put(a, "team-a", "old/two", "b".repeat(50));
    await put(a, "team-b", "old", "c".repeat(10));
    await a.store.usage.get("team-a");
    clock = later(1.5);
    // Written "now" by the fake clock: half a day old at the sweep.
    await put(a, "team-a", "fresh", "d");
    await fs.utimes(path.join(a.root, "team-a/fresh"), new Date(later(1)), new Date(later(1)));
    expect(await a.store.usage.get("team-a")).toBe(151);
    await a.jobs.runNow("retention");
    expect(await listFiles(path.join(a.root, "team-a"))).toEqual(["fresh"]);
    expect(await listFiles(path.join(a.root, "team-b"))).toEqual([]);
    expect(await a.store.usage.get("team-a")).toBe(1);
    const metrics = await a.metrics.registry.metrics();
    expect(metrics).toMatch(/kfp_artifacts_retention_expired_objects_total\{artifact_namespace="team-a"\} 2/);
    expect(metrics).toMatch(/kfp_artifacts_retention_expired_bytes_total\{artifact_namespace="team-a"\} 150/);
    expect(metrics).toMatch(/kfp_artifacts_namespace_used_bytes\{artifact_namespace="team-a"\} 1\b/);
    expect(metrics).toMatch(/kfp_artifacts_job_runs_total\{job_name="retention",outcome="ok"\} 1/);
    // Their digests went with them.
    expect(await listFiles(path.join(a.root, ".kfp-artifacts/meta/team-a"))).toHaveLength(1);
  });

  it("no metric sample carries a label Prometheus sets from the scraped target (job, namespace, pod, …)", async () => {
    const a = await server({ RETENTION_DAYS: "1" });
    await put(a, "team-a", "old", "x");
    await a.store.usage.get("team-a");
    clock = later(2);
    await a.jobs.runNow("retention");
    await a.jobs.runNow("temporary-files");
    const samples = (await a.metrics.registry.metrics()).split("\n").filter((line) => line.startsWith("kfp_artifacts_") && line.includes("{"));
    const labelNames = new Set(samples.flatMap((line) => [...line.slice(line.indexOf("{"), line.lastIndexOf("}")).matchAll(/([a-z_]+)="/g)].map((match) => match[1])));
    // Present, so the check below is about labels that are really emitted.
    expect(labelNames).toContain("artifact_namespace");
    expect(labelNames).toContain("job_name");
    for (const targetLabel of ["job", "namespace", "instance", "pod", "service", "endpoint", "container"]) expect(labelNames).not.toContain(targetLabel);
  });

  it("expiry at the boundary: exactly the retention period old stays, a second more goes", async () => {
    const a = await server({ RETENTION_DAYS: "2" });
    await put(a, "team-a", "edge");
    await put(a, "team-a", "past");
    // Whole seconds: what every filesystem stores exactly.
    const written = Math.floor(Date.now() / 1000) * 1000 - 10_000;
    await fs.utimes(path.join(a.root, "team-a/edge"), new Date(written), new Date(written));
    await fs.utimes(path.join(a.root, "team-a/past"), new Date(written - 1000), new Date(written - 1000));
    clock = written + 2 * DAY_MS;
    await a.jobs.runNow("retention");
    expect(await listFiles(path.join(a.root, "team-a"))).toEqual(["edge"]);
  });

  it("per-namespace and per-prefix overrides, and a dry run that removes nothing", async () => {
    const env = { RETENTION_DAYS: "0", RETENTION_NAMESPACE_DAYS: "team-a=3", RETENTION_PREFIX_DAYS: "team-b/scratch/=1,team-a/keep/=0" };
    const a = await server({ ...env, RETENTION_DRY_RUN: "true" });
    for (const [namespace, key] of [["team-a", "model"], ["team-a", "keep/model"], ["team-b", "scratch/x"], ["team-b", "model"]] as const) await put(a, namespace, key);
    clock = later(4);
    await a.jobs.runNow("retention");
    expect((await listFiles(a.root)).filter((file) => !file.startsWith(".kfp"))).toHaveLength(4);
    const live = await server(env, a.root);
    await live.jobs.runNow("retention");
    expect((await listFiles(a.root)).filter((file) => !file.startsWith(".kfp"))).toEqual(["team-a/keep/model", "team-b/model"]);
  });

  it("two servers on one volume: the lease lets one sweep at a time; the other skips", async () => {
    const dir = await tempDir("lease");
    const first = new VolumeLease(dir, "retention", "server-1", 60_000, () => clock);
    const second = new VolumeLease(dir, "retention", "server-2", 60_000, () => clock);
    expect(await first.acquire()).toBe(true);
    expect(await second.acquire()).toBe(false);
    expect(await first.renew()).toBe(true);
    // A holder that stops renewing loses the lease once it expires, exactly once.
    clock += 61_000;
    const contenders = await Promise.all([second.acquire(), new VolumeLease(dir, "retention", "server-3", 60_000, () => clock).acquire()]);
    expect(contenders.filter(Boolean)).toHaveLength(1);
    expect(await first.renew()).toBe(false);

    const registry = new Registry();
    const busy = new JobRunner(silentLogger, registry, () => clock);
    let ran = 0;
    busy.add({ name: "retention", intervalMs: 60_000, lease: new VolumeLease(dir, "retention", "server-4", 60_000, () => clock), run: () => Promise.resolve(void (ran += 1)) });
    await busy.runNow("retention");
    expect(ran).toBe(0);
    expect(await registry.metrics()).toMatch(/kfp_artifacts_job_runs_total\{job_name="retention",outcome="skipped"\} 1/);
  });

  it("a sweep interrupted mid-way resumes where it stopped, and finishes the job", async () => {
    const a = await server({ RETENTION_DAYS: "1" });
    // Every other artifact is young: a sweep that started over would walk the young ones before the
    // cursor again; one that resumes does not.
    await fs.mkdir(path.join(a.root, "team-a/batch"), { recursive: true });
    for (let i = 0; i < 1200; i += 1) {
      const file = path.join(a.root, "team-a", `batch/${String(i).padStart(4, "0")}`);
      await fs.writeFile(file, "x");
      if (i % 2 === 1) await fs.utimes(file, new Date(later(2)), new Date(later(2)));
    }
    const deps = {
      store: a.store,
      policy: new RetentionPolicy(1, () => []),
      cursorFile: path.join(a.root, ".kfp-artifacts/jobs/retention.cursor"),
      dryRun: false,
      logger: silentLogger,
      metrics: createRetentionMetrics(new Registry()),
    };
    clock = later(2);
    let steps = 0;
    const interrupted: JobContext = {
      now: () => clock,
      step: () => {
        steps += 1;
        if (steps > 700) return Promise.reject(new JobPreempted("the lease was lost"));
        return Promise.resolve(false);
      },
    };
    await expect(sweepRetention(deps, interrupted)).rejects.toBeInstanceOf(JobPreempted);
    // 700 judged, the 350 old ones among them removed.
    expect(await listFiles(path.join(a.root, "team-a"))).toHaveLength(850);
    const resumed = await sweepRetention(deps, { now: () => clock, step: () => Promise.resolve(false) });
    expect(resumed.resumedFrom).toEqual({ namespace: "team-a", key: "batch/0499" });
    // After the cursor: the 100 young ones of 0500-0699 and all of 0700-1199, not the 250 young before it.
    expect(resumed.scanned).toBe(600);
    expect(await listFiles(path.join(a.root, "team-a"))).toHaveLength(600);
    await expect(fs.access(deps.cursorFile)).rejects.toThrow();
  });

  it("a dry run counts every artifact it would remove but names only the first 1,000, and removes nothing", async () => {
    const a = await server({ RETENTION_DAYS: "1" });
    await fs.mkdir(path.join(a.root, "team-a/old"), { recursive: true });
    for (let i = 0; i < 1005; i += 1) await fs.writeFile(path.join(a.root, "team-a", `old/${String(i).padStart(4, "0")}`), "x");
    clock = later(2);
    const lines: string[] = [];
    const report = await sweepRetention(
      {
        store: a.store,
        policy: new RetentionPolicy(1, () => []),
        cursorFile: path.join(a.root, ".kfp-artifacts/jobs/retention.cursor"),
        dryRun: true,
        logger: createLogger("info", (line) => lines.push(line)),
        metrics: createRetentionMetrics(new Registry()),
      },
      { now: () => clock, step: () => Promise.resolve(false) },
    );
    expect(report.wouldExpire).toBe(1005);
    expect(report.wouldExpireListed).toHaveLength(1000);
    expect(report.wouldExpireListed[0]).toBe("team-a/old/0000");
    expect(report.expired).toBe(0);
    expect(await listFiles(path.join(a.root, "team-a"))).toHaveLength(1005);
    const listing = lines.map((line) => JSON.parse(line) as { msg: string; artifacts?: string[]; total?: number }).find((line) => line.msg === "retention dry run: would remove");
    expect(listing?.artifacts).toHaveLength(1000);
    expect(listing?.total).toBe(1005);
  });

  it("FSYNC=true: removals are made durable with one fsync per directory per tick, not one per file", async () => {
    const a = await server({ RETENTION_DAYS: "1", FSYNC: "true" });
    const directories = ["a", "b", "c"].map((name) => path.join(a.root, "team-a", name));
    // 50 old files and a young one in each: 153 units of work, the young ones keep their directories.
    for (const directory of directories) {
      await fs.mkdir(directory, { recursive: true });
      for (let i = 0; i < 50; i += 1) await fs.writeFile(path.join(directory, `old-${String(i).padStart(2, "0")}`), "x");
      await fs.writeFile(path.join(directory, "young"), "y");
      await fs.utimes(path.join(directory, "young"), new Date(later(2)), new Date(later(2)));
    }
    clock = later(2);
    // Every fsync, by the path of the descriptor synced (however the directory was opened).
    const synced: string[] = [];
    const probe = await fs.open(a.root, "r");
    const fileHandle = Object.getPrototypeOf(probe) as FileHandle;
    await probe.close();
    const realSync = Object.getOwnPropertyDescriptor(fileHandle, "sync")?.value as (this: FileHandle) => Promise<void>;
    const sync = vi.spyOn(fileHandle, "sync").mockImplementation(function (this: FileHandle) {
      synced.push(readlinkSync(`/proc/self/fd/${this.fd}`));
      return realSync.call(this);
    });
    let units = 0;
    const ticksOf40: JobContext = { now: () => clock, step: () => Promise.resolve((units += 1) % 40 === 0) };
    try {
      const report = await sweepRetention(
        { store: a.store, policy: new RetentionPolicy(1, () => []), cursorFile: path.join(a.root, ".kfp-artifacts/jobs/retention.cursor"), dryRun: false, logger: silentLogger, metrics: createRetentionMetrics(new Registry()) },
        ticksOf40,
      );
      expect(report.expired).toBe(150);
    } finally {
      sync.mockRestore();
    }
    // Ticks end at units 40, 80 and 120 and with the sweep: a; a and b; b and c; c.
    expect(synced.filter((file) => directories.includes(file))).toEqual([directories[0], directories[0], directories[1], directories[1], directories[2], directories[2]]);
    expect(await listFiles(path.join(a.root, "team-a"))).toEqual(["a/young", "b/young", "c/young"]);
  });

  it("a read in flight while its artifact expires finishes with every byte", async () => {
    const a = await server({ RETENTION_DAYS: "1" });
    const big = Buffer.alloc(8 << 20, 7);
    await put(a, "team-a", "big.bin", big.toString("latin1"));
    const listener = serve({ fetch: a.app.fetch, port: 0, hostname: "127.0.0.1" }) as http.Server;
    try {
      await new Promise((resolve) => listener.once("listening", resolve));
      const { port } = listener.address() as AddressInfo;
      const received = await new Promise<number>((resolve, reject) => {
        http.get(`http://127.0.0.1:${port}/v1/namespaces/team-a/artifacts/big.bin`, (response) => {
          let bytes = 0;
          let swept = false;
          response.on("data", (chunk: Buffer) => {
            bytes += chunk.length;
            if (!swept) {
              swept = true;
              response.pause();
              clock = later(2);
              void a.jobs.runNow("retention").then(() => response.resume());
            }
          });
          response.on("end", () => resolve(bytes));
          response.on("error", reject);
        });
      });
      expect(received).toBe(big.length);
      expect(await listFiles(path.join(a.root, "team-a"))).toEqual([]);
    } finally {
      listener.close();
    }
  });

  it("never follows a symlink out of a namespace, and keeps an artifact rewritten since it was judged", async () => {
    const a = await server({ RETENTION_DAYS: "1" });
    const outside = await tempDir("outside");
    await fs.writeFile(path.join(outside, "victim"), "not yours");
    await fs.utimes(path.join(outside, "victim"), new Date(0), new Date(0));
    await fs.mkdir(path.join(a.root, "team-a"), { recursive: true });
    await fs.symlink(outside, path.join(a.root, "team-a/link-dir"));
    await fs.symlink(path.join(outside, "victim"), path.join(a.root, "team-a/link-file"));
    await put(a, "team-a", "judged");
    const stat = await fs.lstat(path.join(a.root, "team-a/judged"));
    await put(a, "team-a", "judged", "rewritten");
    await expect(a.store.delete("team-a", parseKey("judged"), false, { ino: stat.ino, mtimeMs: stat.mtimeMs })).rejects.toMatchObject({ status: 412 });
    clock = later(2);
    await a.jobs.runNow("retention");
    expect(await fs.readFile(path.join(outside, "victim"), "utf8")).toBe("not yours");
    expect((await fs.lstat(path.join(a.root, "team-a/link-dir"))).isSymbolicLink()).toBe(true);
  });
});

describe("S3 lifecycle configuration", () => {
  it("Put/Get/DeleteBucketLifecycleConfiguration as Kubeflow's profile controller sends them, applied by the sweep", async () => {
    const a = await server({ S3_ACCESS_KEY: "minio", S3_SECRET_KEY: "minio123-secret" });
    if (a.s3App === undefined) throw new Error("S3 is enabled");
    const listener = serve({ fetch: a.s3App.fetch, port: 0, hostname: "127.0.0.1" }) as http.Server;
    try {
      await new Promise((resolve) => listener.once("listening", resolve));
      const { port } = listener.address() as AddressInfo;
      const s3 = new S3Client({ endpoint: `http://127.0.0.1:${port}`, region: "foobar", forcePathStyle: true, credentials: { accessKeyId: "minio", secretAccessKey: "minio123-secret" }, maxAttempts: 1 });
      await put(a, "team-a", "v2/artifacts/run/old");
      await put(a, "kubeflow", "pipelines/spec");
      await s3.send(
        new PutBucketLifecycleConfigurationCommand({
          Bucket: "mlpipeline",
          LifecycleConfiguration: { Rules: [{ Status: "Enabled", Filter: { Prefix: "private-artifacts" }, Expiration: { Days: 30 }, ID: "private-artifacts" }] },
        }),
      );
      const got = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: "mlpipeline" }));
      expect(got.Rules).toEqual([{ ID: "private-artifacts", Filter: { Prefix: "private-artifacts" }, Status: "Enabled", Expiration: { Days: 30 } }]);
      clock = later(31);
      await a.jobs.runNow("retention");
      expect(await listFiles(path.join(a.root, "team-a"))).toEqual([]);
      expect(await listFiles(path.join(a.root, "kubeflow"))).toEqual(["pipelines/spec"]);
      await s3.send(new DeleteBucketLifecycleCommand({ Bucket: "mlpipeline" }));
      await expect(s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: "mlpipeline" }))).rejects.toMatchObject({ name: "NoSuchLifecycleConfiguration" });
      await expect(
        s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: "team-a", LifecycleConfiguration: { Rules: [{ Status: "Enabled", Filter: { Prefix: "" }, Transitions: [{ Days: 1, StorageClass: "GLACIER" }], ID: "t" }] } })),
      ).rejects.toMatchObject({ name: "NotImplemented" });
    } finally {
      listener.close();
    }
  });
});
