// `make bench-retention`: what a retention sweep costs on a volume of many small artifacts. It writes
// BENCH_RETENTION_FILES small files straight onto a fresh volume in a few namespaces (every other run's
// files aged past RETENTION_DAYS=1 with utimes), starts the built server on 127.0.0.1 with a short sweep
// interval, and keeps a 4 KiB GET of a fresh (never expiring) key going over keep-alive connections from
// before the first sweep until after the second: the first sweep scans everything and removes half, the
// second scans what is left and removes nothing. It reports each sweep's duration and counts (from the
// server's "retention sweep" log line), the GET rate and latency before and during each sweep, the
// server's peak RSS (VmHWM) and RSS during each phase, and the volume's used bytes before and after
// (walked on disk and as the metrics say).
//
// Loopback only, bounded in count and time; it reports and never judges. It exits non-zero only when it
// could not measure (the server would not start, a sweep did not come, a GET failed).
//
// Settings (environment): BENCH_DIR (.bench), SERVER_BUNDLE (server/dist/server.mjs),
// BENCH_RETENTION_FILES (100000), BENCH_RETENTION_NAMESPACES (4), BENCH_RETENTION_FILE_BYTES (1024),
// BENCH_RETENTION_CONNECTIONS (32), BENCH_RETENTION_FSYNC (true), BENCH_RETENTION_INTERVAL_SECONDS (30: the first sweep starts this long
// after the server, the GET baseline is what comes before), BENCH_RETENTION_KEEP (1: keep the volume).
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { CannotMeasure, freePort, httpRequest, waitForHttp } from "./procs.js";
import { formatNumber, markdownTable } from "./stats.js";

function intSetting(name: string, fallback: number, min: number, max: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) throw new CannotMeasure(`${name}=${text} must be a whole number from ${min} to ${max}`);
  return value;
}

const repoRoot = process.cwd();
const settings = {
  dir: path.resolve(process.env.BENCH_DIR || path.join(repoRoot, ".bench")),
  bundle: path.resolve(process.env.SERVER_BUNDLE || path.join(repoRoot, "server/dist/server.mjs")),
  files: intSetting("BENCH_RETENTION_FILES", 100_000, 1_000, 1_000_000),
  namespaces: intSetting("BENCH_RETENTION_NAMESPACES", 4, 1, 16),
  fileBytes: intSetting("BENCH_RETENTION_FILE_BYTES", 1024, 1, 1 << 20),
  connections: intSetting("BENCH_RETENTION_CONNECTIONS", 32, 1, 256),
  intervalSeconds: intSetting("BENCH_RETENTION_INTERVAL_SECONDS", 30, 10, 600),
  keep: process.env.BENCH_RETENTION_KEEP === "1",
  fsync: process.env.BENCH_RETENTION_FSYNC !== "false",
};

const DAY_MS = 86_400_000;
const HOT_NAMESPACE = "bench-hot";
const HOT_KEY = "hot/4k.bin";
const FILES_PER_NODE = 10;
const NODES_PER_RUN = 10;
/** Settle time after start-up before the GET baseline counts. */
const WARM_UP_MS = 2_000;
/** How long the GETs go on into each sweep. */
const GET_WINDOW_MS = 10_000;
/** The whole run stops, and fails to measure, if the second sweep has not ended by then. */
const SWEEPS_DEADLINE_MS = (settings.intervalSeconds * 2 + 600) * 1000;

interface SweepLine {
  readonly endMs: number;
  readonly durationSeconds: number;
  readonly scanned: number;
  readonly expired: number;
  readonly expiredBytes: number;
}

// ---------------------------------------------------------------------------------------------------
// The volume

function namespaceName(index: number): string {
  return `bench-${String.fromCharCode(97 + index)}`;
}

/** `<pipeline>/<run>/<node>/<artifact>` keys, runs alternately aged and fresh. */
async function populate(root: string): Promise<{ aged: number; fresh: number }> {
  const body = Buffer.alloc(settings.fileBytes, 0x61);
  const agedTime = new Date(Date.now() - 3 * DAY_MS);
  const perNamespace = Math.ceil(settings.files / settings.namespaces);
  const perRun = FILES_PER_NODE * NODES_PER_RUN;
  const directories: Array<{ dir: string; files: string[]; old: boolean }> = [];
  let aged = 0;
  let fresh = 0;
  let created = 0;
  for (let n = 0; n < settings.namespaces && created < settings.files; n++) {
    for (let i = 0; i < perNamespace && created < settings.files; i++, created++) {
      const run = Math.floor(i / perRun);
      const node = Math.floor((i % perRun) / FILES_PER_NODE);
      const old = run % 2 === 0;
      if (i % FILES_PER_NODE === 0) {
        directories.push({ dir: path.join(root, namespaceName(n), "pipeline", `run-${String(run).padStart(5, "0")}`, `node-${node}`), files: [], old });
      }
      directories[directories.length - 1]?.files.push(`artifact-${i % FILES_PER_NODE}.bin`);
      if (old) aged++;
      else fresh++;
    }
  }
  let next = 0;
  const worker = async () => {
    for (let entry = directories[next++]; entry !== undefined; entry = directories[next++]) {
      await mkdir(entry.dir, { recursive: true });
      for (const name of entry.files) {
        const file = path.join(entry.dir, name);
        await writeFile(file, body);
        if (entry.old) await utimes(file, agedTime, agedTime);
      }
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  await mkdir(path.join(root, HOT_NAMESPACE, path.dirname(HOT_KEY)), { recursive: true });
  await writeFile(path.join(root, HOT_NAMESPACE, HOT_KEY), Buffer.alloc(4096, 0x62));
  return { aged, fresh };
}

/** Files and bytes below the namespaces of `root` (not the server's internal directory). */
async function walk(root: string): Promise<{ files: number; bytes: number; aged: number }> {
  let files = 0;
  let bytes = 0;
  let aged = 0;
  const cutoff = Date.now() - DAY_MS;
  const visit = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.name.startsWith(".")) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await visit(full);
      else if (entry.isFile()) {
        const info = await stat(full);
        files++;
        bytes += info.size;
        if (info.mtimeMs < cutoff) aged++;
      }
    }
  };
  await visit(root);
  return { files, bytes, aged };
}

// ---------------------------------------------------------------------------------------------------
// The server

async function statusKiB(pid: number, field: string): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  if (!match?.[1]) throw new CannotMeasure(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]);
}

/** Sums a metric's samples (all label sets) from a /metrics text, optionally only those matching `labels`. */
function metricSum(text: string, name: string, labels = ""): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels !== "" && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------------
// The GET load: `connections` loops of keep-alive GETs; each completion's time and latency are kept.

class GetLoad {
  readonly #agent: http.Agent;
  #stopping = false;
  #done: Promise<void> = Promise.resolve();
  #ends = new Float64Array(1 << 22);
  #latencies = new Float64Array(1 << 22);
  count = 0;
  failures = 0;
  lastFailure = "";

  constructor(private readonly url: string) {
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: settings.connections });
  }

  start(): void {
    this.#stopping = false;
    this.#done = Promise.all(Array.from({ length: settings.connections }, () => this.#loop())).then(() => undefined);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#done;
  }

  close(): void {
    this.#agent.destroy();
  }

  #record(end: number, latency: number): void {
    if (this.count === this.#ends.length) {
      const grow = (old: Float64Array) => {
        const bigger = new Float64Array(old.length * 2);
        bigger.set(old);
        return bigger;
      };
      this.#ends = grow(this.#ends);
      this.#latencies = grow(this.#latencies);
    }
    this.#ends[this.count] = end;
    this.#latencies[this.count] = latency;
    this.count++;
  }

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      const started = performance.now();
      const status = await new Promise<number>((resolve) => {
        const request = http.get(this.url, { agent: this.#agent, timeout: 30_000 }, (response) => {
          response.resume();
          response.once("end", () => resolve(response.statusCode ?? 0));
          response.once("error", () => resolve(0));
        });
        request.once("timeout", () => request.destroy(new Error("no answer within 30 s")));
        request.once("error", (error) => {
          this.lastFailure = error.message;
          resolve(0);
        });
      });
      const end = performance.now();
      if (status === 200) this.#record(end, end - started);
      else {
        this.failures++;
        if (status !== 0) this.lastFailure = `status ${status}`;
      }
    }
  }

  /** Requests per second, p50 and p99 latency (ms) of the GETs that completed within [from, to). */
  window(from: number, to: number): { seconds: number; rate: number; p50: number; p99: number } {
    const latencies: number[] = [];
    for (let i = 0; i < this.count; i++) {
      const end = this.#ends[i] ?? 0;
      if (end >= from && end < to) latencies.push(this.#latencies[i] ?? 0);
    }
    latencies.sort((a, b) => a - b);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
    const seconds = (to - from) / 1000;
    return { seconds, rate: latencies.length / seconds, p50: at(0.5), p99: at(0.99) };
  }
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  try {
    await stat(settings.bundle);
  } catch {
    throw new CannotMeasure(`${settings.bundle} is missing: run \`make build\``);
  }
  await mkdir(settings.dir, { recursive: true });
  const root = await mkdtemp(path.join(settings.dir, "retention-"));
  const log: string[] = [];
  const say = (line: string) => {
    process.stderr.write(`bench-retention: ${line}\n`);
  };
  let child: ReturnType<typeof spawn> | undefined;
  try {
    say(`writing ${settings.files} files of ${settings.fileBytes} B in ${settings.namespaces} namespaces under ${root}`);
    const populateStarted = performance.now();
    const written = await populate(root);
    const before = await walk(root);
    say(`written in ${((performance.now() - populateStarted) / 1000).toFixed(1)} s: ${written.aged} aged, ${written.fresh} fresh`);

    const port = await freePort();
    const s3Port = await freePort();
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOST: "127.0.0.1",
      PORT: String(port),
      S3_PORT: String(s3Port),
      ARTIFACTS_ROOT: root,
      AUTH_MODE: "none",
      LOG_LEVEL: "info",
      FSYNC: String(settings.fsync),
      RETENTION_DAYS: "1",
      RETENTION_SWEEP_INTERVAL_SECONDS: String(settings.intervalSeconds),
    };
    const sweeps: SweepLine[] = [];
    let requestLines = 0;
    let startedMs = 0;
    const server = spawn(process.execPath, ["--max-semi-space-size=4", settings.bundle], { stdio: ["ignore", "pipe", "pipe"], env });
    child = server;
    let carry = "";
    // Every request is logged (LOG_LEVEL=info, as in production); only the sweep lines are parsed.
    server.stdout?.setEncoding("utf8").on("data", (text: string) => {
      const lines = (carry + text).split("\n");
      carry = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.includes('"msg":"retention sweep"')) {
          requestLines++;
          if (line.includes('"level":"warn"') || line.includes('"level":"error"')) log.push(line);
          continue;
        }
        const parsed = JSON.parse(line) as { time: string; scanned: number; expired: number; expiredBytes: number; durationSeconds: number };
        // The line's clock is the server's wall clock; the load's is performance.now() of this process.
        const endMs = performance.now() - (Date.now() - Date.parse(parsed.time));
        sweeps.push({ endMs, durationSeconds: parsed.durationSeconds, scanned: parsed.scanned, expired: parsed.expired, expiredBytes: parsed.expiredBytes });
        say(`sweep ${sweeps.length}: ${parsed.durationSeconds.toFixed(2)} s, scanned ${parsed.scanned}, expired ${parsed.expired}`);
      }
    });
    server.stderr?.setEncoding("utf8").on("data", (text: string) => log.push(text));
    const base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/readyz`, undefined, 30_000).catch((error: unknown) => {
      throw new CannotMeasure(`${String(error)}\n${log.join("")}`);
    });
    startedMs = performance.now();
    const pid = server.pid ?? 0;
    const idleRssKiB = await statusKiB(pid, "VmRSS");

    // One write per namespace makes the server measure its usage, so the metrics show the drop.
    for (let n = 0; n < settings.namespaces; n++) {
      const answer = await httpRequest(`${base}/v1/namespaces/${namespaceName(n)}/artifacts/measured.txt`, { method: "PUT", body: "x" });
      if (answer.status !== 201 && answer.status !== 200) throw new CannotMeasure(`PUT measured.txt: ${answer.status} ${answer.body}`);
    }
    const metricsBefore = (await httpRequest(`${base}/metrics`)).body;

    const load = new GetLoad(`${base}/v1/namespaces/${HOT_NAMESPACE}/artifacts/${HOT_KEY}`);
    const leaseFile = path.join(root, ".kfp-artifacts", "jobs", "retention.lease");
    const rss: Array<{ at: number; kib: number }> = [];
    let lastRssSample = 0;
    const deadline = startedMs + SWEEPS_DEADLINE_MS;
    /** Waits (bounded) until `done` holds, sampling the server's RSS. */
    const waitUntil = async (what: string, done: () => Promise<boolean> | boolean, pollMs: number) => {
      while (!(await done())) {
        if (performance.now() > deadline) throw new CannotMeasure(`${what}: not within ${SWEEPS_DEADLINE_MS / 1000} s of start-up`);
        if (server.exitCode !== null) throw new CannotMeasure(`the server exited (${server.exitCode}):\n${log.join("")}`);
        if (performance.now() - lastRssSample >= 200) {
          lastRssSample = performance.now();
          rss.push({ at: lastRssSample, kib: await statusKiB(pid, "VmRSS") });
        }
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
    };
    const expiredNow = async () => metricSum((await httpRequest(`${base}/metrics`)).body, "kfp_artifacts_retention_expired_objects_total");
    const leaseHeld = async () => stat(leaseFile).then(() => true, () => false);

    // Each sweep: the GETs run from before it starts through its first GET_WINDOW_MS, then stop so the
    // sweep finishes alone (under a saturating load it advances about one file-system call per event
    // loop turn, and 100,000 files would take most of an hour).
    const loadStarts: number[] = [];
    const phases: Array<{ start: number; windowEnd: number; removedUnderLoad: number }> = [];
    for (let index = 0; index < 2; index++) {
      load.start();
      loadStarts.push(performance.now());
      await waitUntil(`sweep ${index + 1} did not start`, leaseHeld, 10);
      const start = performance.now();
      const expiredAtStart = await expiredNow();
      const windowDeadline = start + GET_WINDOW_MS;
      await waitUntil(`sweep ${index + 1}`, () => performance.now() >= windowDeadline || sweeps.length > index, 20);
      const windowEnd = performance.now();
      const removedUnderLoad = (await expiredNow()) - expiredAtStart;
      await load.stop();
      say(`sweep ${index + 1}: GETs stopped after ${((windowEnd - start) / 1000).toFixed(1)} s of it (${removedUnderLoad} removed meanwhile)`);
      phases.push({ start, windowEnd, removedUnderLoad });
      await waitUntil(`sweep ${index + 1} did not end`, () => sweeps.length > index, 50);
    }
    load.close();
    const peakRssKiB = await statusKiB(pid, "VmHWM");
    const metricsAfter = (await httpRequest(`${base}/metrics`)).body;
    if (load.failures > 0) throw new CannotMeasure(`${load.failures} GETs failed (last: ${load.lastFailure})`);

    server.kill("SIGTERM");
    await new Promise((resolve) => server.once("exit", resolve));
    child = undefined;
    const after = await walk(root);

    const [first, second] = sweeps as [SweepLine, SweepLine];
    const [firstPhase, secondPhase] = phases as [(typeof phases)[0], (typeof phases)[0]];
    const windows = [
      { name: "before the first sweep", from: (loadStarts[0] ?? 0) + WARM_UP_MS, to: firstPhase.start },
      { name: "first sweep (removing)", from: firstPhase.start, to: firstPhase.windowEnd },
      { name: "before the second sweep", from: (loadStarts[1] ?? 0) + WARM_UP_MS / 2, to: secondPhase.start },
      { name: "second sweep (scanning only)", from: secondPhase.start, to: secondPhase.windowEnd },
    ];
    const rssMaxKiB = (from: number, to: number) => Math.max(...rss.filter((s) => s.at >= from && s.at < to).map((s) => s.kib), 0);
    const measuredWindows = windows.map((w) => ({ ...w, ...load.window(w.from, w.to) }));
    const reference = measuredWindows[0];
    const rows = measuredWindows.map((w, index) => {
      // Every window against the GETs before the first sweep.
      const change = reference === undefined || index === 0 ? Number.NaN : ((w.rate - reference.rate) / reference.rate) * 100;
      return [
        w.name,
        formatNumber(w.seconds, 1),
        formatNumber(w.rate),
        Number.isNaN(change) ? "—" : `${change >= 0 ? "+" : ""}${formatNumber(change)} %`,
        formatNumber(w.p50, 2),
        formatNumber(w.p99, 2),
        formatNumber(rssMaxKiB(w.from, w.to) / 1024),
      ];
    });
    const aloneSeconds = (sweep: SweepLine, phase: (typeof phases)[0]) => Math.max(0.001, (sweep.endMs - phase.windowEnd) / 1000);
    const loadedSeconds = (phase: (typeof phases)[0]) => (phase.windowEnd - phase.start) / 1000;
    const expiredObjects = metricSum(metricsAfter, "kfp_artifacts_retention_expired_objects_total");
    const expiredBytes = metricSum(metricsAfter, "kfp_artifacts_retention_expired_bytes_total");
    const usedBefore = metricSum(metricsBefore, "kfp_artifacts_namespace_used_bytes");
    const usedAfter = metricSum(metricsAfter, "kfp_artifacts_namespace_used_bytes");
    const sweepErrors = metricSum(metricsAfter, "kfp_artifacts_retention_sweep_errors_total");
    const uptime = (await readFile("/proc/loadavg", "utf8")).split(" ").slice(0, 3).join(" ");
    const report = [
      `## Retention sweep, ${formatNumber(settings.files)} artifacts of ${settings.fileBytes} B`,
      "",
      `${new Date().toISOString()}; Node ${process.version}; ${os.cpus().length} CPUs; load average at the end ${uptime}; ` +
        `FSYNC=${settings.fsync}${settings.fsync ? " (the default)" : ""}, LOG_LEVEL=info (every GET logged); GET load: ${settings.connections} keep-alive connections ` +
        `from this process (it shares the CPUs with the server) on one 4 KiB artifact that never expires.`,
      "",
      `Volume: ${settings.namespaces} namespaces × <pipeline>/<run>/<node>/<artifact>, ${NODES_PER_RUN} nodes × ${FILES_PER_NODE} files a run; ` +
        `every other run aged 3 days (RETENTION_DAYS=1): ${formatNumber(written.aged)} expire, ${formatNumber(written.fresh)} stay.`,
      "",
      `GETs of the 4 KiB artifact (they stop ${GET_WINDOW_MS / 1000} s into each sweep, which then finishes alone):`,
      "",
      markdownTable(["window", "s", "GET/s", "vs before the first sweep", "p50 ms", "p99 ms", "max RSS MB"], rows),
      "",
      markdownTable(
        ["", "first sweep", "second sweep"],
        [
          ["duration (s, its log line)", formatNumber(first.durationSeconds, 1), formatNumber(second.durationSeconds, 1)],
          ["scanned", formatNumber(first.scanned), formatNumber(second.scanned)],
          ["expired", formatNumber(first.expired), formatNumber(second.expired)],
          ["of which under the GET load", `${formatNumber(firstPhase.removedUnderLoad)} in ${formatNumber(loadedSeconds(firstPhase), 1)} s`, `${formatNumber(secondPhase.removedUnderLoad)} in ${formatNumber(loadedSeconds(secondPhase), 1)} s`],
          ["alone (after the GETs stopped)", `${formatNumber(first.expired - firstPhase.removedUnderLoad)} removed in ${formatNumber(aloneSeconds(first, firstPhase), 1)} s`, `${formatNumber(aloneSeconds(second, secondPhase), 1)} s`],
          ["max RSS during the sweep (MB)", formatNumber(rssMaxKiB(firstPhase.start, first.endMs) / 1024), formatNumber(rssMaxKiB(secondPhase.start, second.endMs) / 1024)],
          ["max RSS while it ran alone (MB)", formatNumber(rssMaxKiB(firstPhase.windowEnd, first.endMs) / 1024), formatNumber(rssMaxKiB(secondPhase.windowEnd, second.endMs) / 1024)],
        ],
      ),
      "",
      `Server RSS: ${formatNumber(idleRssKiB / 1024)} MB idle after start-up, peak (VmHWM) ${formatNumber(peakRssKiB / 1024)} MB over the whole run.`,
      "",
      `On disk: ${formatNumber(before.files)} files, ${formatNumber(before.bytes)} B before; ${formatNumber(after.files)} files, ` +
        `${formatNumber(after.bytes)} B after (${formatNumber(after.aged)} aged files left; the ${settings.namespaces} measured.txt writes are in "after"). ` +
        `Metrics: kfp_artifacts_namespace_used_bytes ${formatNumber(usedBefore)} → ${formatNumber(usedAfter)}; ` +
        `retention_expired_objects_total ${formatNumber(expiredObjects)}, expired_bytes_total ${formatNumber(expiredBytes)}, sweep_errors_total ${formatNumber(sweepErrors)}. ` +
        `GETs: ${formatNumber(load.count)}, none failed; ${formatNumber(requestLines)} log lines.`,
      "",
    ].join("\n");
    process.stdout.write(report);
    await writeFile(path.join(settings.dir, "retention-sweep.md"), report);
    if (log.length > 0) say(`server warnings:\n${log.join("\n").slice(0, 2000)}`);
  } finally {
    child?.kill("SIGKILL");
    if (!settings.keep) await rm(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench-retention: could not measure: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
