// The home of background work: named jobs that run every interval, one run of a job at a time, each run
// given a context that bounds its work (it yields to the event loop so serving never stalls) and, for jobs
// that must not run twice on one volume, a lease shared with the other servers on the volume. Metrics
// per job: runs by outcome, duration, and when it last succeeded.
import { Counter, Gauge, type Registry } from "prom-client";
import type { Logger } from "../log.js";
import { METRIC_PREFIX } from "../metrics.js";
import type { VolumeLease } from "./volume-lease.js";

export interface JobContext {
  /** The job's clock (tests give a fake one). */
  now(): number;
  /**
   * Call between units of work: every `unitsPerPause` units it pauses (letting requests run) and renews
   * the lease; it throws JobPreempted when the lease was lost, so the run stops where it is. Resolves
   * true when it paused: a tick of work ended, for jobs that batch something per tick.
   */
  step(): Promise<boolean>;
}

export class JobPreempted extends Error {
  override name = "JobPreempted";
}

export interface JobDefinition {
  readonly name: string;
  readonly intervalMs: number;
  readonly run: (context: JobContext) => Promise<void>;
  /** Coordinates with the other servers on the volume: only the lease holder runs. */
  readonly lease?: VolumeLease | undefined;
  /** Units of work between pauses (default 200). */
  readonly unitsPerPause?: number;
  /** How long each pause lasts (default 5 ms). */
  readonly pauseMs?: number;
}

interface JobMetrics {
  readonly runs: Counter<"job_name" | "outcome">;
  readonly duration: Gauge<"job_name">;
  readonly lastSuccess: Gauge<"job_name">;
}

function jobMetrics(registry: Registry): JobMetrics {
  const existing = registry.getSingleMetric(`${METRIC_PREFIX}job_runs_total`);
  if (existing !== undefined) {
    return {
      runs: existing as Counter<"job_name" | "outcome">,
      duration: registry.getSingleMetric(`${METRIC_PREFIX}job_last_duration_seconds`) as Gauge<"job_name">,
      lastSuccess: registry.getSingleMetric(`${METRIC_PREFIX}job_last_success_timestamp_seconds`) as Gauge<"job_name">,
    };
  }
  return {
    runs: new Counter({ name: `${METRIC_PREFIX}job_runs_total`, help: "Background job runs by job and outcome (ok, error, skipped: another server holds the lease).", labelNames: ["job_name", "outcome"], registers: [registry] }),
    duration: new Gauge({ name: `${METRIC_PREFIX}job_last_duration_seconds`, help: "Duration of each background job's last run.", labelNames: ["job_name"], registers: [registry], aggregator: "max" }),
    lastSuccess: new Gauge({ name: `${METRIC_PREFIX}job_last_success_timestamp_seconds`, help: "When each background job last completed successfully (Unix seconds).", labelNames: ["job_name"], registers: [registry], aggregator: "max" }),
  };
}

export class JobRunner {
  readonly #jobs: JobDefinition[] = [];
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #metrics: JobMetrics;
  #stopped = false;

  constructor(
    private readonly logger: Logger,
    registry: Registry,
    private readonly now: () => number = Date.now,
  ) {
    this.#metrics = jobMetrics(registry);
  }

  add(job: JobDefinition): void {
    // One runtime serves one server: a second server on it would schedule every job twice.
    if (this.#jobs.some((known) => known.name === job.name)) throw new Error(`a job named ${job.name} is already scheduled`);
    this.#jobs.push(job);
  }

  start(): void {
    for (const job of this.#jobs) {
      const timer = setInterval(() => void this.runNow(job.name), job.intervalMs);
      timer.unref();
      this.#timers.set(job.name, timer);
    }
  }

  /** Runs a job now (unless it is running already); resolves when that run ends. Never rejects. */
  runNow(name: string): Promise<void> {
    const job = this.#jobs.find((candidate) => candidate.name === name);
    if (job === undefined) throw new Error(`no job named ${name}`);
    const running = this.#running.get(name);
    if (running !== undefined) return running;
    const run = this.#run(job).finally(() => this.#running.delete(name));
    this.#running.set(name, run);
    return run;
  }

  async #run(job: JobDefinition): Promise<void> {
    if (this.#stopped) return;
    const { lease } = job;
    if (lease !== undefined && !(await lease.acquire().catch(() => false))) {
      this.#metrics.runs.inc({ job_name: job.name, outcome: "skipped" });
      return;
    }
    const started = performance.now();
    const unitsPerPause = job.unitsPerPause ?? 200;
    const pauseMs = job.pauseMs ?? 5;
    let units = 0;
    const context: JobContext = {
      now: this.now,
      step: async () => {
        if (this.#stopped) throw new JobPreempted("the server is stopping");
        units += 1;
        if (units % unitsPerPause !== 0) return false;
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
        if (lease !== undefined && !(await lease.renew())) throw new JobPreempted("the lease was lost");
        return true;
      },
    };
    try {
      await job.run(context);
      this.#metrics.runs.inc({ job_name: job.name, outcome: "ok" });
      this.#metrics.lastSuccess.set({ job_name: job.name }, this.now() / 1000);
    } catch (error) {
      this.#metrics.runs.inc({ job_name: job.name, outcome: error instanceof JobPreempted ? "preempted" : "error" });
      if (!(error instanceof JobPreempted)) this.logger.warn("background job failed", { job: job.name, error });
    } finally {
      this.#metrics.duration.set({ job_name: job.name }, (performance.now() - started) / 1000);
      await lease?.release().catch(() => {});
    }
  }

  /** Stops scheduling and waits for running jobs to reach their next step. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers.values()) clearInterval(timer);
    this.#timers.clear();
    await Promise.all(this.#running.values());
  }
}
