// Several server processes on the same ports (SERVER_PROCESSES above 1). One Node process runs all of its
// requests' JavaScript on one thread, so it serves from one core however many the pod has, and a pod on a
// ReadWriteOnce claim cannot add replicas instead. With node:cluster, this process (the primary) opens the
// listening sockets and hands each new connection to the next server process in turn; it serves nothing
// itself.
//
// Every server process is a whole server on the same volume, as replicas sharing a ReadWriteMany claim
// are: commits, quotas (the volume's usage ledger), background jobs (the volume lease) and temporary
// files are already safe between processes. What is per process and is made whole here:
// - Log lines. Each process's stdout and stderr come through the primary, which writes whole lines only,
//   so two processes' lines never interleave on the container's stdout (a pipe, on which a write of more
//   than 4 KiB is not atomic).
// - /metrics. Answered by whichever process the scrape reaches, with every process's samples combined by
//   prom-client's AggregatorRegistry: counters and histograms summed, each gauge as it declares.
// - The start-up sweep of temporary files an earlier start on this host left. Only the first process
//   runs it, and the others start after it listens, since their files are live.
// - Lifetime. SIGTERM or SIGINT to the primary drains every process. A process that exits on its own
//   stops the others and the primary exits 1, so that Kubernetes restarts the pod and counts it rather
//   than the pod serving on with fewer processes than it was given.
import cluster, { type Worker } from "node:cluster";
import type { Readable, Writable } from "node:stream";
import { AggregatorRegistry, type Registry } from "prom-client";
import type { Logger } from "./log.js";

/** The environment variable the primary numbers its server processes with (1 is started first). */
const PROCESS_INDEX = "KFP_ARTIFACTS_PROCESS_INDEX";
const STARTED = "kfp-artifacts:started";
const METRICS_REQUEST = "kfp-artifacts:metrics-request";
const METRICS_REPLY = "kfp-artifacts:metrics-reply";
/** A scrape waits this long for the other processes' samples (prom-client gives up after 5 s itself). */
const METRICS_TIMEOUT_MS = 10_000;

interface ProcessMessage {
  readonly type?: unknown;
  readonly id?: unknown;
  readonly text?: unknown;
  readonly error?: unknown;
}

/** In one of several server processes: its number, 1 for the first started; otherwise undefined. */
export function serverProcessIndex(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const index = Number(process.env[PROCESS_INDEX]);
  return Number.isSafeInteger(index) && index > 0 ? index : undefined;
}

/** What a server process uses of the group: its registry, the metrics of all processes, and saying it serves. */
export interface ServerProcessGroup {
  /** This process's metrics, which the primary asks for and combines with the others'. */
  readonly registry: Registry;
  /** The Prometheus exposition of every process's samples, combined. */
  text(): Promise<string>;
  /** Tells the primary this process listens: the next processes may start. */
  started(): void;
}

/** Called once in a server process (serverProcessIndex() defined), with the registry its metrics are in. */
export function joinServerProcesses(registry: Registry): ServerProcessGroup {
  // Constructing one installs prom-client's answer to the primary's requests for this process's samples.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  process.on("message", (message: ProcessMessage) => {
    if (message.type !== METRICS_REPLY || typeof message.id !== "number") return;
    const request = waiting.get(message.id);
    if (request === undefined) return;
    waiting.delete(message.id);
    if (typeof message.text === "string") request.resolve(message.text);
    else request.reject(new Error(`metrics of the server processes: ${String(message.error)}`));
  });
  return {
    registry,
    text: () =>
      new Promise<string>((resolve, reject) => {
        const id = nextId++;
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error("metrics of the server processes did not arrive in time"));
        }, METRICS_TIMEOUT_MS);
        waiting.set(id, {
          resolve: (text) => (clearTimeout(timer), resolve(text)),
          reject: (error) => (clearTimeout(timer), reject(error)),
        });
        process.send?.({ type: METRICS_REQUEST, id });
      }),
    started: () => process.send?.({ type: STARTED }),
  };
}

/**
 * The primary: starts `count` server processes (this same program, numbered through the environment),
 * forwards their output line by line, answers their metrics requests and ends when they have all ended.
 * Resolves with the exit code the primary should exit with.
 */
export function superviseServerProcesses(count: number, logger: Logger): Promise<number> {
  // silent: the processes' stdout and stderr are pipes to this one, which forwards whole lines.
  cluster.setupPrimary({ silent: true });
  const aggregator = new AggregatorRegistry();
  const live = new Map<Worker, number>();
  let stopping = false;
  let exitCode = 0;
  let resolveDone: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => (resolveDone = resolve));

  const stopAll = (why: string, fields: Record<string, unknown> = {}) => {
    if (stopping) return;
    stopping = true;
    logger.info(why, { ...fields, processes: [...live.values()] });
    for (const worker of live.keys()) worker.process.kill("SIGTERM");
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => stopAll("signal received: stopping the server processes", { signal }));
  }

  const start = (index: number) =>
    new Promise<void>((resolve) => {
      const worker = cluster.fork({ [PROCESS_INDEX]: String(index) });
      live.set(worker, index);
      forwardLines(worker.process.stdout, process.stdout);
      forwardLines(worker.process.stderr, process.stderr);
      let listening = false;
      worker.on("message", (message: ProcessMessage) => {
        if (message.type === STARTED) {
          listening = true;
          resolve();
        } else if (message.type === METRICS_REQUEST) {
          // The asker may have exited meanwhile: a reply to a closed channel is dropped, not thrown.
          const reply = (answer: { text: string } | { error: string }) => {
            if (worker.isConnected()) worker.send({ type: METRICS_REPLY, id: message.id, ...answer });
          };
          aggregator.clusterMetrics().then(
            (text) => reply({ text }),
            (error: unknown) => reply({ error: String(error) }),
          );
        }
      });
      // A send that races the process's exit reports here; the exit itself is handled below.
      worker.on("error", (error) => logger.debug("server process channel", { process: index, error: String(error) }));
      // "close": the process has exited and its output has all been forwarded.
      worker.process.once("close", (code: number | null, signal: NodeJS.Signals | null) => {
        live.delete(worker);
        if (!stopping) {
          // Before it listened: the same start-up failure would meet every process (its own line said
          // why); keep its exit code (2 for a configuration problem). After: it crashed.
          exitCode = listening ? 1 : (code ?? 1);
          stopAll(listening ? "a server process exited: stopping the others" : "a server process could not start: stopping the others", {
            process: index,
            code,
            signal,
          });
        } else if (code !== 0) {
          exitCode = exitCode === 0 ? 1 : exitCode;
        }
        if (!listening) resolve();
        if (live.size === 0) resolveDone(exitCode);
      });
    });

  void (async () => {
    // The first process sweeps what an earlier start left; the others start once it listens.
    await start(1);
    if (!stopping) await Promise.all(Array.from({ length: count - 1 }, (_, offset) => start(offset + 2)));
    if (!stopping) logger.info("server processes listening", { processes: count });
  })();
  return done;
}

/** Copies a process's output to ours in whole lines; a last line without its newline gets one. */
function forwardLines(from: Readable | null, to: Writable): void {
  if (from === null) return;
  let partial: Buffer[] = [];
  from.on("data", (chunk: Buffer) => {
    const end = chunk.lastIndexOf(10);
    if (end === -1) {
      partial.push(chunk);
      return;
    }
    to.write(partial.length === 0 ? chunk.subarray(0, end + 1) : Buffer.concat([...partial, chunk.subarray(0, end + 1)]));
    partial = end + 1 < chunk.length ? [chunk.subarray(end + 1)] : [];
  });
  from.on("end", () => {
    if (partial.length > 0) to.write(Buffer.concat([...partial, Buffer.from("\n")]));
  });
}
