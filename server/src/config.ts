// Configuration: every setting comes from the environment, is validated once at start-up, and a bad
// value stops the process with a message naming the variable.
import path from "node:path";
import { z } from "zod";

const BYTE_UNITS: Record<string, number> = {
  "": 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  t: 1e12,
  ki: 2 ** 10,
  mi: 2 ** 20,
  gi: 2 ** 30,
  ti: 2 ** 40,
};

/** Parses "1048576", "512Mi", "10Gi", "1G" (Kubernetes quantity style) into bytes. */
export function parseByteSize(text: string): number {
  const match = /^\s*(\d+)\s*([kmgt]i?)?\s*$/i.exec(text);
  if (!match) throw new Error(`"${text}" is not a byte size (examples: 1048576, 512Mi, 10Gi)`);
  const [, digits = "", unit = ""] = match;
  const multiplier = BYTE_UNITS[unit.toLowerCase()];
  if (multiplier === undefined) throw new Error(`"${text}" has an unknown unit`);
  const bytes = Number(digits) * multiplier;
  if (!Number.isSafeInteger(bytes)) throw new Error(`"${text}" is too large`);
  return bytes;
}

const byteSize = z.string().transform((text, ctx) => {
  try {
    return parseByteSize(text);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});

const positiveInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const boolean = z
  .enum(["true", "false", "1", "0", "yes", "no"], { message: "must be true or false" })
  .transform((value) => value === "true" || value === "1" || value === "yes");

const commaList = z
  .string()
  .transform((text) => text.split(",").map((item) => item.trim()).filter(Boolean));

// DNS-1123 label, the shape of a Kubernetes namespace name.
export const NAMESPACE_PATTERN = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * What docs/configuration.md and the chart say about one setting. The generator (`make manifests`,
 * scripts/configuration-doc.ts) writes the configuration reference from these and the defaults below,
 * so a setting is described once, next to its parser.
 */
export type SettingDoc = Readonly<{
  /** What the setting does (Markdown, one or two sentences). */
  description: string;
  /** What leaving an optional variable unset means. */
  unset?: string;
  /** The chart value that sets the variable: its path in charts/kfp-artifacts/values.yaml. */
  chartValue?: string;
  /** How the chart sets the variable when no value of its own does, or what else feeds it. */
  chartNote?: string;
}>;

const settingDocs = z.registry<SettingDoc>();

function documented<T extends z.ZodType>(schema: T, doc: SettingDoc): T {
  settingDocs.add(schema, doc);
  return schema;
}

// Defaults are written as the environment text (`prefault`), parsed like a value an operator sets, so the
// reference shows exactly what one would write.
const envSchema = z.object({
  PORT: documented(positiveInt(0, 65535).prefault("8080"), {
    description: "Port of the native and KFP APIs (`0`: any free port).",
    chartNote: "`8080`, the container port `http`; the Services expose it as `service.port`",
  }),
  HOST: documented(z.string().min(1).prefault("0.0.0.0"), {
    description: "Listening address (`make run`: `127.0.0.1`).",
    chartNote: "not set: the pod listens on every address",
  }),
  ARTIFACTS_ROOT: documented(z.string().min(1).prefault("/artifacts"), {
    description:
      "The volume: artifacts live at `<root>/<namespace>/<key>`, internal files under `<root>/.kfp-artifacts/` (`make run`: `./data`).",
    chartNote: "`/artifacts`, where the volume of `persistence` is mounted",
  }),
  AUTH_MODE: documented(z.enum(["kubernetes", "none"]).prefault("kubernetes"), {
    description: "`kubernetes`: TokenReview and SubjectAccessReview on every request; `none`: every request allowed (local use only; `make run`'s default).",
    chartValue: "auth.mode",
  }),
  AUTH_AUDIENCES: documented(commaList.prefault("pipelines.kubeflow.org"), {
    description: "Comma-separated audiences accepted in bearer tokens.",
    chartValue: "auth.audiences",
  }),
  AUTH_TRUSTED_USER_HEADER: documented(
    z
      .string()
      .regex(/^[A-Za-z0-9-]+$/, "must be an HTTP header name")
      .transform((name) => name.toLowerCase())
      .optional(),
    {
      description:
        "Header carrying the user an authenticating proxy set, e.g. `kubeflow-userid`; only safe behind a proxy that strips it from outside traffic (the chart's Istio policy).",
      unset: "off",
      chartValue: "auth.trustedUserHeader",
    },
  ),
  AUTH_TRUSTED_USER_PREFIX: documented(z.string().prefault(""), {
    description: "Prefix removed from the trusted header's value.",
    chartValue: "auth.trustedUserPrefix",
  }),
  AUTH_CACHE_TTL_SECONDS: documented(positiveInt(0, 3600).prefault("10"), {
    description: "How long allow and deny decisions and token reviews are cached (`0`: not cached).",
    chartValue: "auth.cacheTtlSeconds",
  }),
  AUTH_CACHE_MAX_ENTRIES: documented(positiveInt(1, 1_000_000).prefault("10000"), {
    description: "Bound of the decision and token caches.",
    chartValue: "auth.cacheMaxEntries",
  }),
  AUTH_READY_WINDOW_SECONDS: documented(positiveInt(1, 3600).prefault("60"), {
    description: "How long `/readyz` keeps trusting the last successful answer of the API server.",
    chartValue: "auth.readyWindowSeconds",
  }),
  KUBECONFIG: documented(z.string().optional(), {
    description: "Kubeconfig file for reaching the API server.",
    unset: "in-cluster configuration (the pod's ServiceAccount token)",
    chartNote: "not set: the servers use their ServiceAccount's token",
  }),
  SCOPE_NAMESPACE: documented(z.string().regex(NAMESPACE_PATTERN, "must be a namespace name (DNS-1123 label)").optional(), {
    description: "A dedicated server: it answers only for this namespace (404 for every other).",
    unset: "every namespace",
    chartNote: "a dedicated server's own namespace (downward API); empty on the shared server",
  }),
  DEDICATED_SERVERS: documented(z.string().prefault(""), {
    description: "The chart's dedicated servers, `namespace=endpoint,...`, answered by the filesystem-storage config endpoint.",
    chartValue: "dedicated.namespaces",
    chartNote: "shared server only: each namespace with its Service's address",
  }),
  DEDICATED_STATUS_CONFIGMAP: documented(
    z.string().regex(/^[a-z0-9-]+\/[a-z0-9.-]+$/, "must be namespace/name").optional(),
    {
      description: "`namespace/name` of the manager's status ConfigMap (the namespaces it made dedicated).",
      unset: "no manager",
      chartValue: "manager.enabled",
      chartNote: "shared server only: `<namespace>/<fullname>-manager-status` while the manager runs",
    },
  ),
  MAX_UPLOAD_BYTES: documented(byteSize.prefault("10Gi"), {
    description: "Largest accepted upload; a larger body gets 413 and nothing is kept.",
    chartValue: "limits.maxUploadBytes",
  }),
  MAX_ARCHIVE_EXPANDED_BYTES: documented(byteSize.prefault("20Gi"), {
    description: "Bound on what one `?archive=tar.gz` upload may expand to (decompression bombs).",
    chartValue: "limits.maxArchiveExpandedBytes",
  }),
  MIN_FREE_BYTES: documented(byteSize.prefault("256Mi"), {
    description: "Free-space reserve: a write that would leave less free on the volume gets 507.",
    chartValue: "limits.minFreeBytes",
  }),
  NAMESPACE_QUOTA_BYTES: documented(byteSize.prefault("0"), {
    description: "Bytes a namespace may store; exceeding it gets 507 (`0`: no quota).",
    chartValue: "limits.namespaceQuotaBytes",
  }),
  SHUTDOWN_DELAY_SECONDS: documented(positiveInt(0, 3600).prefault("5"), {
    description:
      "After SIGTERM readiness fails at once and new requests are still served this long: Services and load balancers take a few seconds to stop sending new connections to a terminating pod.",
    chartValue: "shutdownDelaySeconds",
  }),
  SHUTDOWN_GRACE_SECONDS: documented(positiveInt(0, 3600).prefault("25"), {
    description: "Then the listeners close and in-flight transfers get this long to finish.",
    chartValue: "shutdownGraceSeconds",
  }),
  IDLE_TIMEOUT_SECONDS: documented(positiveInt(1, 3600).prefault("60"), {
    description: "A request that sends or receives nothing for this long, while the server is not working on it, is aborted (slow clients).",
    chartValue: "limits.idleTimeoutSeconds",
  }),
  SERVER_PROCESSES: documented(positiveInt(1, 64).prefault("1"), {
    description:
      "Server processes sharing the ports. One process serves from one core; on a pod with more CPU, more processes serve more small requests at once (each holds about 110 MB, and the primary that hands them connections about 95 MB). The only way to use more cores on a ReadWriteOnce claim, which allows one pod.",
    chartValue: "processes",
  }),
  FSYNC: documented(boolean.prefault("true"), {
    description: "Durable writes (fsync of file and directory); `false` only for benchmarks or scratch volumes.",
    chartValue: "persistence.fsync",
  }),
  NODE_NAME: documented(z.string().prefault(""), {
    description: "The node, reported by `/readyz`.",
    chartNote: "the pod's node (downward API)",
  }),
  S3_ENABLED: documented(boolean.prefault("true"), {
    description: "The S3-compatible listener, what released Kubeflow Pipelines speaks to its artifact store.",
    chartValue: "s3.enabled",
  }),
  S3_PORT: documented(positiveInt(0, 65535).prefault("9000"), {
    description: "Port of the S3 listener; must differ from `PORT`.",
    chartValue: "s3.port",
  }),
  S3_KUBEFLOW_BUCKET: documented(
    z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be an S3 bucket name").prefault("mlpipeline"),
    {
      description: "Kubeflow's bucket: `<bucket>/private-artifacts/<ns>/<rest>` is artifact `<rest>` of namespace `<ns>`.",
      chartValue: "s3.kubeflowBucket",
    },
  ),
  S3_SYSTEM_NAMESPACE: documented(
    z.string().regex(NAMESPACE_PATTERN, "must be a namespace name (DNS-1123 label)").prefault("kubeflow"),
    {
      description: "Owner of the Kubeflow bucket's other keys (pipeline specs and logs the API server keeps).",
      chartValue: "s3.systemNamespace",
    },
  ),
  S3_REGION: documented(z.string().regex(/^[A-Za-z0-9-]{1,64}$/, "must be a region name").prefault("us-east-1"), {
    description: "What GetBucketLocation answers; requests signed for any region are accepted.",
    chartValue: "s3.region",
  }),
  S3_ACCESS_KEY: documented(
    z.string().regex(/^[A-Za-z0-9._~+:@-]{3,128}$/, "must be 3 to 128 letters, digits or ._~+:@-").optional(),
    {
      description: "Access key id of the static \"system\" key pair (KFP's API server, UI and profile controller); set with `S3_SECRET_KEY`.",
      unset: "no static key",
      chartValue: "s3.credentials.existingSecret",
      chartNote: "from that Secret's key `s3.credentials.accessKeyKey`",
    },
  ),
  S3_SECRET_KEY: documented(z.string().min(8, "must be at least 8 characters").max(256).optional(), {
    description: "Secret access key of the static key pair.",
    unset: "no static key",
    chartValue: "s3.credentials.existingSecret",
    chartNote: "from that Secret's key `s3.credentials.secretKeyKey`",
  }),
  S3_ACCESS_KEY_USER: documented(z.string().min(1).optional(), {
    description: "With `AUTH_MODE=kubernetes` (required there with a static key): the Kubernetes user the static key acts as, authorized by SubjectAccessReview.",
    unset: "none",
    chartValue: "s3.systemKeyUser",
  }),
  S3_MASTER_KEY: documented(z.string().min(32, "must be at least 32 characters").optional(), {
    description: "Secret from which the per-namespace keys `kfp.<namespace>` are derived (at least 32 characters).",
    unset: "derived from `S3_SECRET_KEY`",
    chartValue: "s3.masterKey.existingSecret",
    chartNote: "from that Secret's key `s3.masterKey.key`",
  }),
  S3_NAMESPACE_ACCESS_KEY: documented(
    z.string().regex(/^[A-Za-z0-9._~+:@-]{3,128}$/, "must be 3 to 128 letters, digits or ._~+:@-").optional(),
    {
      description:
        "A dedicated server's only key: the access key id of its namespace's pair (`kfp.<namespace>`), acting as `S3_NAMESPACE_SERVICE_ACCOUNT` in `SCOPE_NAMESPACE` and refused everywhere else. Requires `SCOPE_NAMESPACE` and `S3_NAMESPACE_SECRET_KEY`; excludes the static key and `S3_MASTER_KEY`, so the server holds nothing from which another namespace's key follows.",
      unset: "no namespace key pair",
      chartNote: "a dedicated server's, from the Secret `<fullname>-s3-namespace-key` in its namespace (key `accesskey`), which the manager writes",
    },
  ),
  S3_NAMESPACE_SECRET_KEY: documented(z.string().min(8, "must be at least 8 characters").max(256).optional(), {
    description: "Secret access key of the dedicated server's namespace key pair.",
    unset: "no namespace key pair",
    chartNote: "a dedicated server's, from the Secret `<fullname>-s3-namespace-key` in its namespace (key `secretkey`)",
  }),
  S3_NAMESPACE_SERVICE_ACCOUNT: documented(
    z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, "must be a ServiceAccount name")
      .prefault("default-editor"),
    {
      description: "The ServiceAccount a namespace key `kfp.<namespace>` acts as (Kubeflow runs pipelines as `default-editor`).",
      chartValue: "s3.namespaceServiceAccount",
    },
  ),
  RETENTION_DAYS: documented(positiveInt(0, 36_500).prefault("0"), {
    description: "Artifacts older than this many days (by their last write) are removed by a background sweep (`0`: kept forever; docs/retention.md).",
    chartValue: "retention.days",
  }),
  RETENTION_NAMESPACE_DAYS: documented(z.string().prefault(""), {
    description: "Per-namespace overrides of `RETENTION_DAYS`: `team-a=7,team-b=0`.",
    chartValue: "retention.namespaceDays",
    chartNote: "a dedicated server gets its own namespace's entry only",
  }),
  RETENTION_PREFIX_DAYS: documented(z.string().prefault(""), {
    description: "Per-prefix overrides, `team-a/tmp/=1` (`<namespace>/<key prefix>=<days>`); the most specific rule wins.",
    chartValue: "retention.prefixDays",
    chartNote: "a dedicated server gets its own namespace's entries only",
  }),
  RETENTION_SWEEP_INTERVAL_SECONDS: documented(positiveInt(10, 7 * 24 * 3600).prefault("3600"), {
    description: "Time between two retention sweeps (one server per volume at a time, by a lease on the volume).",
    chartValue: "retention.sweepIntervalSeconds",
  }),
  ORPHAN_SWEEP_INTERVAL_SECONDS: documented(positiveInt(60, 7 * 24 * 3600).prefault(String(6 * 3600)), {
    description: "Time between two sweeps of orphaned digest sidecars and run records, whose artifacts are gone (one server per volume at a time, by a lease on the volume; docs/retention.md).",
    chartValue: "retention.orphanSweepIntervalSeconds",
  }),
  RETENTION_DRY_RUN: documented(boolean.prefault("false"), {
    description: "Log what each sweep would remove, and remove nothing.",
    chartValue: "retention.dryRun",
  }),
  S3_MULTIPART_EXPIRY_HOURS: documented(positiveInt(1, 24 * 365).prefault(String(7 * 24)), {
    description: "Multipart uploads not completed within this many hours are removed.",
    chartValue: "s3.multipartExpiryHours",
  }),
  LOG_LEVEL: documented(z.enum(["debug", "info", "warn", "error"]).prefault("info"), {
    description: "`debug`, `info`, `warn` or `error`; one JSON line per request.",
    chartValue: "logLevel",
  }),
});

/** One environment variable as docs/configuration.md describes it. */
export type SettingDescription = SettingDoc & Readonly<{ name: string; default: string | undefined }>;

/** Every setting in the schema's order, with its default as environment text (undefined: optional). */
export function describeSettings(): SettingDescription[] {
  return Object.entries(envSchema.shape).map(([name, schema]: [string, z.ZodType]) => {
    const doc = settingDocs.get(schema);
    if (doc === undefined) throw new Error(`${name} has no SettingDoc: describe it where the schema declares it`);
    const defaultText = schema instanceof z.ZodPrefault ? String(schema.def.defaultValue) : undefined;
    return { name, default: defaultText, ...doc };
  });
}

export type Config = Readonly<{
  port: number;
  host: string;
  artifactsRoot: string;
  authMode: "kubernetes" | "none";
  authAudiences: readonly string[];
  trustedUserHeader: string | undefined;
  trustedUserPrefix: string;
  authCacheTtlMs: number;
  authCacheMaxEntries: number;
  authReadyWindowMs: number;
  kubeconfig: string | undefined;
  scopeNamespace: string | undefined;
  dedicatedServers: string;
  dedicatedStatusConfigMap: string | undefined;
  maxUploadBytes: number;
  maxArchiveExpandedBytes: number;
  minFreeBytes: number;
  namespaceQuotaBytes: number;
  shutdownDelayMs: number;
  shutdownGraceMs: number;
  idleTimeoutMs: number;
  fsync: boolean;
  /** Server processes sharing the ports (processes.ts); 1: this process serves alone. */
  processes: number;
  nodeName: string;
  s3: S3Config;
  retention: RetentionConfig;
  logLevel: "debug" | "info" | "warn" | "error";
}>;

export type S3Config = Readonly<{
  enabled: boolean;
  port: number;
  kubeflowBucket: string;
  systemNamespace: string;
  region: string;
  /** The static key pair, when configured. */
  staticKey: Readonly<{ accessKeyId: string; secretAccessKey: string; user: string | undefined }> | undefined;
  /** Per-namespace keys are derived from this; undefined: no per-namespace keys. */
  masterKey: string | undefined;
  /** A dedicated server's one pair, valid in its namespace only; excludes the static key and the master key. */
  namespaceKey: Readonly<{ accessKeyId: string; secretAccessKey: string; namespace: string; serviceAccount: string }> | undefined;
  namespaceServiceAccount: string;
  multipartExpiryMs: number;
}>;

/** A retention override: artifacts of `namespace` whose key starts with `prefix` ("" = all) live `days`. */
export type RetentionRule = Readonly<{ namespace: string; prefix: string; days: number }>;

export type RetentionConfig = Readonly<{
  /** 0: keep forever. */
  defaultDays: number;
  /** Namespace and prefix overrides from the environment. */
  rules: readonly RetentionRule[];
  sweepIntervalMs: number;
  /** The orphan sweep's interval (digest sidecars and run records of artifacts that are gone). */
  orphanSweepIntervalMs: number;
  dryRun: boolean;
}>;

/** Parses `a=7,b/tmp/=1` into rules; throws a message naming what is wrong. */
export function parseRetentionRules(text: string, withPrefix: boolean): RetentionRule[] {
  const rules: RetentionRule[] = [];
  for (const item of text.split(",").map((part) => part.trim()).filter(Boolean)) {
    const eq = item.lastIndexOf("=");
    const target = eq === -1 ? "" : item.slice(0, eq).trim();
    const daysText = eq === -1 ? "" : item.slice(eq + 1).trim();
    if (!/^\d{1,5}$/.test(daysText)) throw new Error(`"${item}" must be <${withPrefix ? "namespace/prefix" : "namespace"}>=<days>`);
    const slash = target.indexOf("/");
    const namespace = withPrefix && slash !== -1 ? target.slice(0, slash) : target;
    const prefix = withPrefix && slash !== -1 ? target.slice(slash + 1) : "";
    if (!NAMESPACE_PATTERN.test(namespace)) throw new Error(`"${namespace}" in "${item}" is not a namespace name`);
    if (withPrefix && prefix === "") throw new Error(`"${item}" names no key prefix (use RETENTION_NAMESPACE_DAYS for a whole namespace)`);
    rules.push({ namespace, prefix, days: Number(daysText) });
  }
  return rules;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

type ParsedEnv = z.output<typeof envSchema>;

/**
 * The dedicated server's namespace key pair, or undefined; its problems go into `problems`. It is valid
 * alone: a server holding it next to the static key or a master key could mint every namespace's key.
 */
function namespaceKeyOf(e: ParsedEnv, problems: string[]): S3Config["namespaceKey"] {
  const { S3_NAMESPACE_ACCESS_KEY: accessKeyId, S3_NAMESPACE_SECRET_KEY: secretAccessKey, SCOPE_NAMESPACE: namespace } = e;
  if (accessKeyId === undefined && secretAccessKey === undefined) return undefined;
  if (accessKeyId === undefined || secretAccessKey === undefined) {
    problems.push("S3_NAMESPACE_ACCESS_KEY and S3_NAMESPACE_SECRET_KEY: set both or neither");
    return undefined;
  }
  if (namespace === undefined) {
    problems.push("S3_NAMESPACE_ACCESS_KEY: requires SCOPE_NAMESPACE (a namespace key pair serves one dedicated server's namespace)");
    return undefined;
  }
  if (e.S3_ACCESS_KEY !== undefined || e.S3_MASTER_KEY !== undefined) {
    problems.push("S3_NAMESPACE_ACCESS_KEY: cannot be combined with S3_ACCESS_KEY or S3_MASTER_KEY (a dedicated server holds its own namespace's pair only)");
    return undefined;
  }
  // A key id in the namespace-key form (`kfp.`, see s3/credentials.ts) must be this namespace's: another
  // namespace's pair here is a mistake, and ServiceAccount keys (`kfp.<ns>.<sa>`) stay with the shared server.
  if (accessKeyId.startsWith("kfp.") && accessKeyId !== `kfp.${namespace}`) {
    problems.push(`S3_NAMESPACE_ACCESS_KEY: "${accessKeyId}" is not the key of the namespace ${namespace} (expected kfp.${namespace})`);
    return undefined;
  }
  return Object.freeze({ accessKeyId, secretAccessKey, namespace, serviceAccount: e.S3_NAMESPACE_SERVICE_ACCOUNT });
}

/** Validates the environment; throws ConfigError whose message names every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable means "unset", as it does for most operators writing `FOO=` in a manifest.
  const present = Object.fromEntries(
    Object.keys(envSchema.shape)
      .map((name) => [name, env[name]] as const)
      .filter(([, value]) => value !== undefined && value !== ""),
  );
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  }
  const e = parsed.data;
  const problems: string[] = [];
  if ((e.S3_ACCESS_KEY === undefined) !== (e.S3_SECRET_KEY === undefined)) {
    problems.push("S3_ACCESS_KEY and S3_SECRET_KEY: set both or neither");
  }
  if (e.AUTH_MODE === "kubernetes" && e.S3_ACCESS_KEY !== undefined && e.S3_ACCESS_KEY_USER === undefined) {
    problems.push("S3_ACCESS_KEY_USER: required with S3_ACCESS_KEY under AUTH_MODE=kubernetes (the Kubernetes user the key acts as)");
  }
  if (e.S3_ENABLED && e.S3_PORT !== 0 && e.S3_PORT === e.PORT) problems.push("S3_PORT: must differ from PORT");
  const namespaceKey = namespaceKeyOf(e, problems);
  const retentionRules: RetentionRule[] = [];
  for (const [name, text, withPrefix] of [
    ["RETENTION_NAMESPACE_DAYS", e.RETENTION_NAMESPACE_DAYS, false],
    ["RETENTION_PREFIX_DAYS", e.RETENTION_PREFIX_DAYS, true],
  ] as const) {
    try {
      retentionRules.push(...parseRetentionRules(text, withPrefix));
    } catch (error) {
      problems.push(`${name}: ${(error as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  const staticKey =
    e.S3_ACCESS_KEY !== undefined && e.S3_SECRET_KEY !== undefined
      ? Object.freeze({ accessKeyId: e.S3_ACCESS_KEY, secretAccessKey: e.S3_SECRET_KEY, user: e.S3_ACCESS_KEY_USER })
      : undefined;
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    artifactsRoot: path.resolve(e.ARTIFACTS_ROOT),
    authMode: e.AUTH_MODE,
    authAudiences: Object.freeze([...e.AUTH_AUDIENCES]),
    trustedUserHeader: e.AUTH_TRUSTED_USER_HEADER,
    trustedUserPrefix: e.AUTH_TRUSTED_USER_PREFIX,
    authCacheTtlMs: e.AUTH_CACHE_TTL_SECONDS * 1000,
    authCacheMaxEntries: e.AUTH_CACHE_MAX_ENTRIES,
    authReadyWindowMs: e.AUTH_READY_WINDOW_SECONDS * 1000,
    kubeconfig: e.KUBECONFIG,
    scopeNamespace: e.SCOPE_NAMESPACE,
    dedicatedServers: e.DEDICATED_SERVERS,
    dedicatedStatusConfigMap: e.DEDICATED_STATUS_CONFIGMAP,
    maxUploadBytes: e.MAX_UPLOAD_BYTES,
    maxArchiveExpandedBytes: e.MAX_ARCHIVE_EXPANDED_BYTES,
    minFreeBytes: e.MIN_FREE_BYTES,
    namespaceQuotaBytes: e.NAMESPACE_QUOTA_BYTES,
    shutdownDelayMs: e.SHUTDOWN_DELAY_SECONDS * 1000,
    shutdownGraceMs: e.SHUTDOWN_GRACE_SECONDS * 1000,
    idleTimeoutMs: e.IDLE_TIMEOUT_SECONDS * 1000,
    fsync: e.FSYNC,
    processes: e.SERVER_PROCESSES,
    nodeName: e.NODE_NAME,
    s3: Object.freeze({
      enabled: e.S3_ENABLED,
      port: e.S3_PORT,
      kubeflowBucket: e.S3_KUBEFLOW_BUCKET,
      systemNamespace: e.S3_SYSTEM_NAMESPACE,
      region: e.S3_REGION,
      staticKey,
      masterKey: e.S3_MASTER_KEY ?? staticKey?.secretAccessKey,
      namespaceKey,
      namespaceServiceAccount: e.S3_NAMESPACE_SERVICE_ACCOUNT,
      multipartExpiryMs: e.S3_MULTIPART_EXPIRY_HOURS * 3_600_000,
    }),
    retention: Object.freeze({
      defaultDays: e.RETENTION_DAYS,
      rules: Object.freeze(retentionRules),
      sweepIntervalMs: e.RETENTION_SWEEP_INTERVAL_SECONDS * 1000,
      orphanSweepIntervalMs: e.ORPHAN_SWEEP_INTERVAL_SECONDS * 1000,
      dryRun: e.RETENTION_DRY_RUN,
    }),
    logLevel: e.LOG_LEVEL,
  });
}
