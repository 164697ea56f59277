// The manager's Prometheus metrics, `kfp_artifacts_manager_*`, on a registry of its own.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { METRIC_PREFIX } from "../metrics.js";

const PREFIX = `${METRIC_PREFIX}manager_`;

export interface ManagerMetrics {
  readonly registry: Registry;
  readonly reconciles: Counter<"result">;
  readonly errors: Counter<"stage">;
  readonly duration: Histogram;
  readonly dedicated: Gauge;
  readonly invalid: Gauge;
  readonly leader: Gauge;
}

export function createManagerMetrics(registry = new Registry()): ManagerMetrics {
  collectDefaultMetrics({ register: registry, prefix: PREFIX });
  const registers = [registry];
  return {
    registry,
    reconciles: new Counter({ name: `${PREFIX}reconciles_total`, help: "Namespace reconciles by outcome (the namespace's condition, or Error).", labelNames: ["result"], registers }),
    errors: new Counter({
      name: `${PREFIX}errors_total`,
      help: "Failures by stage: reconcile (API call, retried), block (invalid artifactServer), conflict, watch, event, status.",
      labelNames: ["stage"],
      registers,
    }),
    duration: new Histogram({ name: `${PREFIX}reconcile_duration_seconds`, help: "Time of one namespace's reconcile.", buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30], registers }),
    dedicated: new Gauge({ name: `${PREFIX}dedicated_servers`, help: "Namespaces with a dedicated server applied by this manager.", registers }),
    invalid: new Gauge({ name: `${PREFIX}namespaces_not_reconciled`, help: "Namespaces left unchanged because of an invalid block or a conflicting object.", registers }),
    leader: new Gauge({ name: `${PREFIX}leader`, help: "1 while this replica holds the lease.", registers }),
  };
}
