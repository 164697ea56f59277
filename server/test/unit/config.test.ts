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

  it("parses every SPEC §6 variable", () => {
    const config = loadConfig({
      PORT: "9000",
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
      port: 9000,
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
  ])("refuses %s=%s with a message naming the variable", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(name));
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
