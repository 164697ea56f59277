// Configuration: every setting comes from the environment, is validated once at start-up, and a bad
// value stops the process with a message naming the variable (SPEC §6).
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
  MAX_UPLOAD_BYTES: byteSize.default(parseByteSize("10Gi")),
  /** Upper bound on the expanded size of one `?archive=tar.gz` upload (decompression bombs). */
  MAX_ARCHIVE_EXPANDED_BYTES: byteSize.default(parseByteSize("20Gi")),
  MIN_FREE_BYTES: byteSize.default(parseByteSize("256Mi")),
  /** 0 means no quota. */
  NAMESPACE_QUOTA_BYTES: byteSize.default(0),
  SHUTDOWN_GRACE_SECONDS: positiveInt(0, 3600).default(25),
  /** A request that sends or receives nothing for this long is aborted (slow clients). */
  IDLE_TIMEOUT_SECONDS: positiveInt(1, 3600).default(60),
  /** Durable writes (fsync file and directory). Turn off only for benchmarks or scratch volumes. */
  FSYNC: boolean.default(true),
  NODE_NAME: z.string().default(""),
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
  maxUploadBytes: number;
  maxArchiveExpandedBytes: number;
  minFreeBytes: number;
  namespaceQuotaBytes: number;
  shutdownGraceMs: number;
  idleTimeoutMs: number;
  fsync: boolean;
  nodeName: string;
  logLevel: "debug" | "info" | "warn" | "error";
}>;

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
    maxUploadBytes: e.MAX_UPLOAD_BYTES,
    maxArchiveExpandedBytes: e.MAX_ARCHIVE_EXPANDED_BYTES,
    minFreeBytes: e.MIN_FREE_BYTES,
    namespaceQuotaBytes: e.NAMESPACE_QUOTA_BYTES,
    shutdownGraceMs: e.SHUTDOWN_GRACE_SECONDS * 1000,
    idleTimeoutMs: e.IDLE_TIMEOUT_SECONDS * 1000,
    fsync: e.FSYNC,
    nodeName: e.NODE_NAME,
    logLevel: e.LOG_LEVEL,
  });
}
