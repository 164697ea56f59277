import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseByteSize } from "../../src/config.js";

describe("loadConfig", () => {
  it("applies the documented defaults", () => {
    const config = loadConfig({});
    expect(config.port).toBe(8080);
    expect(config.host).toBe("0.0.0.0");
    expect(config.artifactsRoot).toBe("/artifacts");
    expect(config.authMode).toBe("kubernetes");
    expect(config.authAudiences).toEqual(["pipelines.kubeflow.org"]);
    expect(config.trustedUserHeader).toBeUndefined();
    expect(config.namespaceQuotaBytes).toBe(0);
    expect(config.fsync).toBe(true);
    expect(config.shutdownDelayMs).toBe(5000);
    expect(config.shutdownGraceMs).toBe(25_000);
  });

  it("parses every documented variable", () => {
    const config = loadConfig({
      PORT: "9090",
      HOST: "127.0.0.1",
      ARTIFACTS_ROOT: "/data",
      AUTH_MODE: "none",
      AUTH_AUDIENCES: "a, b",
      AUTH_TRUSTED_USER_HEADER: "Kubeflow-UserID",
      AUTH_TRUSTED_USER_PREFIX: "accounts.google.com:",
      SCOPE_NAMESPACE: "team-a",
      MAX_UPLOAD_BYTES: "1Gi",
      MIN_FREE_BYTES: "512Mi",
      NAMESPACE_QUOTA_BYTES: "10G",
      SHUTDOWN_DELAY_SECONDS: "7",
      SHUTDOWN_GRACE_SECONDS: "30",
      NODE_NAME: "worker-1",
      LOG_LEVEL: "debug",
    });
    expect(config).toMatchObject({
      port: 9090,
      host: "127.0.0.1",
      artifactsRoot: "/data",
      authMode: "none",
      authAudiences: ["a", "b"],
      trustedUserHeader: "kubeflow-userid",
      trustedUserPrefix: "accounts.google.com:",
      scopeNamespace: "team-a",
      maxUploadBytes: 2 ** 30,
      minFreeBytes: 512 * 2 ** 20,
      namespaceQuotaBytes: 10e9,
      shutdownDelayMs: 7000,
      shutdownGraceMs: 30_000,
      nodeName: "worker-1",
      logLevel: "debug",
    });
  });

  it.each([
    ["PORT", "http"],
    ["PORT", "70000"],
    ["AUTH_MODE", "open"],
    ["SCOPE_NAMESPACE", "Team_A"],
    ["MAX_UPLOAD_BYTES", "ten gigs"],
    ["MIN_FREE_BYTES", "-1"],
    ["LOG_LEVEL", "verbose"],
    ["FSYNC", "sometimes"],
    ["AUTH_TRUSTED_USER_HEADER", "bad header:"],
    ["S3_PORT", "99999"],
    ["S3_ENABLED", "maybe"],
    ["S3_KUBEFLOW_BUCKET", "Bad_Bucket"],
    ["S3_SYSTEM_NAMESPACE", "Kubeflow"],
    ["S3_ACCESS_KEY", "has space"],
    ["S3_MASTER_KEY", "too-short"],
    ["S3_NAMESPACE_SERVICE_ACCOUNT", "Not/AnAccount"],
    ["S3_MULTIPART_EXPIRY_HOURS", "0"],
  ])("refuses %s=%s with a message naming the variable", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(name));
  });

  it("parses the S3 settings, and derives namespace keys from the static secret when no master key is set", () => {
    const config = loadConfig({ AUTH_MODE: "none", S3_PORT: "9100", S3_ACCESS_KEY: "minio", S3_SECRET_KEY: "minio123", S3_REGION: "minio" });
    expect(config.s3).toMatchObject({
      enabled: true,
      port: 9100,
      kubeflowBucket: "mlpipeline",
      systemNamespace: "kubeflow",
      region: "minio",
      staticKey: { accessKeyId: "minio", secretAccessKey: "minio123" },
      masterKey: "minio123",
      namespaceServiceAccount: "default-editor",
    });
    expect(loadConfig({}).s3).toMatchObject({ enabled: true, port: 9000, staticKey: undefined, masterKey: undefined });
  });

  it.each([
    [{ S3_ACCESS_KEY: "minio" }, /S3_ACCESS_KEY and S3_SECRET_KEY/],
    [{ S3_ACCESS_KEY: "minio", S3_SECRET_KEY: "minio123" }, /S3_ACCESS_KEY_USER/],
    [{ PORT: "9000" }, /S3_PORT: must differ from PORT/],
  ])("refuses inconsistent S3 settings %o", (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  it("treats an empty variable as unset", () => {
    expect(loadConfig({ PORT: "", SCOPE_NAMESPACE: "" })).toMatchObject({ port: 8080, scopeNamespace: undefined });
  });
});

describe("parseByteSize", () => {
  it.each([
    ["0", 0],
    ["1048576", 1048576],
    ["1Ki", 1024],
    ["10Gi", 10 * 2 ** 30],
    ["2G", 2e9],
    ["3m", 3e6],
  ])("%s → %d", (text, bytes) => expect(parseByteSize(text)).toBe(bytes));

  it.each(["", "1.5Gi", "Gi", "1Pi", "99999999999Ti"])("refuses %j", (text) => expect(() => parseByteSize(text)).toThrow());
});
