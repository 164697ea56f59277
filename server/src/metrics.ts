// Prometheus metrics, on a registry of our own so tests can create many apps.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export const METRIC_PREFIX = "kfp_artifacts_";
/**
 * The label naming an artifact namespace. Not `namespace` (nor a job's `job`): Prometheus adds those to
 * every sample it scrapes from the target's own pod, and a sample's own would be renamed `exported_…`
 * or, with honor_labels, would overwrite the pod's.
 */
export const NAMESPACE_LABEL = "artifact_namespace";

export interface HttpMetrics {
  readonly registry: Registry;
  /** What /metrics answers (Runtime.metricsText): the registry's samples, or all server processes'. */
  readonly text: () => Promise<string>;
  readonly requests: Counter<"route" | "method" | "status">;
  readonly duration: Histogram<"route" | "method">;
  readonly bytesReceived: Counter<"route">;
  readonly bytesSent: Counter<"route">;
}

export interface VolumeSources {
  freeBytes(): Promise<number>;
  usedBytesByNamespace(): Iterable<[string, number]>;
}

export function createMetrics(volume: VolumeSources, registry = new Registry(), text: () => Promise<string> = () => registry.metrics()): HttpMetrics {
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  new Gauge({
    name: `${METRIC_PREFIX}volume_free_bytes`,
    help: "Bytes available to the server on the artifact volume.",
    registers: [registry],
    // Several server processes see the same volume: one figure, not their sum.
    aggregator: "max",
    async collect() {
      // A volume that is gone has no free bytes to report; the rest of the scrape must still answer.
      const free = await volume.freeBytes().catch(() => undefined);
      if (free === undefined) this.reset();
      else this.set(free);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}namespace_used_bytes`,
    help: "Bytes of artifacts stored per namespace (namespaces measured by this process).",
    labelNames: [NAMESPACE_LABEL],
    registers: [registry],
    // Each of several server processes measures the same namespaces: the largest view, not their sum.
    aggregator: "max",
    collect() {
      this.reset();
      for (const [namespace, bytes] of volume.usedBytesByNamespace()) this.set({ [NAMESPACE_LABEL]: namespace }, bytes);
    },
  });
  // 1 in every process: with several server processes the scrape's sum says how many answered it.
  new Gauge({
    name: `${METRIC_PREFIX}server_processes`,
    help: "Server processes whose samples this scrape combines (SERVER_PROCESSES while all of them run).",
    registers: [registry],
  }).set(1);
  return {
    registry,
    text,
    requests: new Counter({
      name: `${METRIC_PREFIX}http_requests_total`,
      help: "HTTP requests by route pattern, method and status.",
      labelNames: ["route", "method", "status"],
      registers: [registry],
    }),
    duration: new Histogram({
      name: `${METRIC_PREFIX}http_request_duration_seconds`,
      help: "HTTP request duration, until the last byte of the response, by route pattern and method.",
      labelNames: ["route", "method"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers: [registry],
    }),
    bytesReceived: new Counter({
      name: `${METRIC_PREFIX}http_received_bytes_total`,
      help: "Bytes received (headers and bodies) by route pattern.",
      labelNames: ["route"],
      registers: [registry],
    }),
    bytesSent: new Counter({
      name: `${METRIC_PREFIX}http_sent_bytes_total`,
      help: "Bytes sent (headers and bodies) by route pattern.",
      labelNames: ["route"],
      registers: [registry],
    }),
  };
}
