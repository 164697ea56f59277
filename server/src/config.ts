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

const envSchema = z.object({
  PORT: positiveInt(0, 65535).default(8080),
  HOST: z.string().min(1).default("0.0.0.0"),
  ARTIFACTS_ROOT: z.string().min(1).default("/artifacts"),
  AUTH_MODE: z.enum(["kubernetes", "none"]).default("kubernetes"),
  AUTH_AUDIENCES: commaList.default(["pipelines.kubeflow.org"]),
  AUTH_TRUSTED_USER_HEADER: z
    .string()
    .regex(/^[A-Za-z0-9-]+$/, "must be an HTTP header name")
    .transform((name) => name.toLowerCase())
    .optional(),
  AUTH_TRUSTED_USER_PREFIX: z.string().default(""),
  AUTH_CACHE_TTL_SECONDS: positiveInt(0, 3600).default(10),
  AUTH_CACHE_MAX_ENTRIES: positiveInt(1, 1_000_000).default(10_000),
  /** How long /readyz keeps trusting the last successful API server answer. */
  AUTH_READY_WINDOW_SECONDS: positiveInt(1, 3600).default(60),
  KUBECONFIG: z.string().optional(),
  SCOPE_NAMESPACE: z.string().regex(NAMESPACE_PATTERN, "must be a namespace name (DNS-1123 label)").optional(),
  /** The chart's dedicated servers, `namespace=endpoint,...`, for the filesystem-storage config endpoint. */
  DEDICATED_SERVERS: z.string().default(""),
  /** `namespace/name` of the manager's status ConfigMap (the namespaces it made dedicated); unset: no manager. */
  DEDICATED_STATUS_CONFIGMAP: z.string().regex(/^[a-z0-9-]+\/[a-z0-9.-]+$/, "must be namespace/name").optional(),
  MAX_UPLOAD_BYTES: byteSize.default(parseByteSize("10Gi")),
  /** Upper bound on the expanded size of one `?archive=tar.gz` upload (decompression bombs). */
  MAX_ARCHIVE_EXPANDED_BYTES: byteSize.default(parseByteSize("20Gi")),
  MIN_FREE_BYTES: byteSize.default(parseByteSize("256Mi")),
  /** 0 means no quota. */
  NAMESPACE_QUOTA_BYTES: byteSize.default(0),
  /**
   * After SIGTERM, how long new requests are still served while readiness fails: Services and load
   * balancers take a few seconds to stop sending new connections to a terminating pod.
   */
  SHUTDOWN_DELAY_SECONDS: positiveInt(0, 3600).default(5),
  SHUTDOWN_GRACE_SECONDS: positiveInt(0, 3600).default(25),
  /** A request that sends or receives nothing for this long is aborted (slow clients). */
  IDLE_TIMEOUT_SECONDS: positiveInt(1, 3600).default(60),
  /** Durable writes (fsync file and directory). Turn off only for benchmarks or scratch volumes. */
  FSYNC: boolean.default(true),
  NODE_NAME: z.string().default(""),
  /** The S3-compatible listener (s3/): what released Kubeflow Pipelines speaks to its artifact store. */
  S3_ENABLED: boolean.default(true),
  S3_PORT: positiveInt(0, 65535).default(9000),
  /** Kubeflow's bucket: `private-artifacts/<ns>/<rest>` is artifact `<rest>` of namespace `<ns>`. */
  S3_KUBEFLOW_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be an S3 bucket name").default("mlpipeline"),
  /** Owner of the Kubeflow bucket's other keys (pipeline specs, logs the API server keeps). */
  S3_SYSTEM_NAMESPACE: z.string().regex(NAMESPACE_PATTERN, "must be a namespace name (DNS-1123 label)").default("kubeflow"),
  /** What GetBucketLocation answers; requests may be signed for any region. */
  S3_REGION: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, "must be a region name").default("us-east-1"),
  /** One static key pair (the system key of KFP's API server, UI and profile controller). */
  S3_ACCESS_KEY: z.string().regex(/^[A-Za-z0-9._~+:@-]{3,128}$/, "must be 3 to 128 letters, digits or ._~+:@-").optional(),
  S3_SECRET_KEY: z.string().min(8, "must be at least 8 characters").max(256).optional(),
  /** With AUTH_MODE=kubernetes, the Kubernetes user the static key acts as (authorized by SubjectAccessReview). */
  S3_ACCESS_KEY_USER: z.string().min(1).optional(),
  /** Secret from which per-namespace keys are derived; unset: derived from S3_SECRET_KEY. */
  S3_MASTER_KEY: z.string().min(32, "must be at least 32 characters").optional(),
  /** The ServiceAccount a namespace key `kfp.<namespace>` acts as (Kubeflow runs pipelines as default-editor). */
  S3_NAMESPACE_SERVICE_ACCOUNT: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, "must be a ServiceAccount name")
    .default("default-editor"),
  /** Artifacts older than this many days (by their last write) are removed; 0 keeps them forever. */
  RETENTION_DAYS: positiveInt(0, 36_500).default(0),
  /** Per-namespace overrides of RETENTION_DAYS: `team-a=7,team-b=0`. */
  RETENTION_NAMESPACE_DAYS: z.string().default(""),
  /** Per-prefix overrides: `team-a/tmp/=1,team-b/cache/=3` (namespace/key prefix=days). */
  RETENTION_PREFIX_DAYS: z.string().default(""),
  RETENTION_SWEEP_INTERVAL_SECONDS: positiveInt(10, 7 * 24 * 3600).default(3600),
  /** Report what the retention sweep would remove, and remove nothing. */
  RETENTION_DRY_RUN: boolean.default(false),
  /** Multipart uploads not completed within this many hours are removed. */
  S3_MULTIPART_EXPIRY_HOURS: positiveInt(1, 24 * 365).default(7 * 24),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
});

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
    nodeName: e.NODE_NAME,
    s3: Object.freeze({
      enabled: e.S3_ENABLED,
      port: e.S3_PORT,
      kubeflowBucket: e.S3_KUBEFLOW_BUCKET,
      systemNamespace: e.S3_SYSTEM_NAMESPACE,
      region: e.S3_REGION,
      staticKey,
      masterKey: e.S3_MASTER_KEY ?? staticKey?.secretAccessKey,
      namespaceServiceAccount: e.S3_NAMESPACE_SERVICE_ACCOUNT,
      multipartExpiryMs: e.S3_MULTIPART_EXPIRY_HOURS * 3_600_000,
    }),
    retention: Object.freeze({
      defaultDays: e.RETENTION_DAYS,
      rules: Object.freeze(retentionRules),
      sweepIntervalMs: e.RETENTION_SWEEP_INTERVAL_SECONDS * 1000,
      dryRun: e.RETENTION_DRY_RUN,
    }),
    logLevel: e.LOG_LEVEL,
  });
}
