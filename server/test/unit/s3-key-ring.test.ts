// The S3 key ring's answers: namespace keys derived under the master key (and kept, by key id, so that
// a request does not derive again), the static key, and key ids that resolve to nothing.
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { deriveSecretKey, S3KeyRing } from "../../src/s3/credentials.js";

const MASTER = "master-key-0123456789-0123456789-0123456789";

function keyRing(env: Record<string, string>): S3KeyRing {
  return new S3KeyRing(loadConfig({ AUTH_MODE: "none", ...env }).s3, "kubernetes");
}

describe("S3KeyRing", () => {
  it("derives each namespace key's own secret and identity, the same on every lookup", () => {
    const ring = keyRing({ S3_MASTER_KEY: MASTER });
    const first = ring.resolve("kfp.team-a");
    expect(first?.secretAccessKey).toBe(deriveSecretKey(MASTER, "kfp.team-a"));
    expect(first?.identity.user).toBe("system:serviceaccount:team-a:default-editor");
    expect(ring.resolve("kfp.team-a")).toEqual(first);
    const other = ring.resolve("kfp.team-b.runner");
    expect(other?.secretAccessKey).toBe(deriveSecretKey(MASTER, "kfp.team-b.runner"));
    expect(other?.secretAccessKey).not.toBe(first?.secretAccessKey);
    expect(other?.identity.user).toBe("system:serviceaccount:team-b:runner");
    // Looked up again after the other: still its own.
    expect(ring.resolve("kfp.team-a")?.secretAccessKey).toBe(deriveSecretKey(MASTER, "kfp.team-a"));
  });

  it("keeps answering after more namespace keys than it keeps", () => {
    const ring = keyRing({ S3_MASTER_KEY: MASTER });
    for (let index = 0; index < 5000; index += 1) ring.resolve(`kfp.team-${index}`);
    expect(ring.resolve("kfp.team-0")?.secretAccessKey).toBe(deriveSecretKey(MASTER, "kfp.team-0"));
    expect(ring.resolve("kfp.team-4999")?.secretAccessKey).toBe(deriveSecretKey(MASTER, "kfp.team-4999"));
  });

  it("resolves nothing for a key id that is not a namespace key, asked twice", () => {
    const ring = keyRing({ S3_MASTER_KEY: MASTER });
    for (const id of ["AKIAEXAMPLE", "kfp.", "kfp.Team-A", "kfp.team-a.", "kfp.-a"]) {
      expect(ring.resolve(id), id).toBeUndefined();
      expect(ring.resolve(id), id).toBeUndefined();
    }
  });

  it("resolves the static key as its user, and derives namespace keys under its secret when there is no master key", () => {
    const ring = keyRing({ S3_ACCESS_KEY: "system-key", S3_SECRET_KEY: "system-secret-0123456789", S3_ACCESS_KEY_USER: "kfp-system" });
    const system = ring.resolve("system-key");
    expect(system).toMatchObject({ secretAccessKey: "system-secret-0123456789", isSystemKey: true, identity: { user: "kfp-system", groups: ["system:authenticated"] } });
    expect(ring.resolve("system-key")).toEqual(system);
    expect(ring.resolve("kfp.team-a")?.secretAccessKey).toBe(deriveSecretKey("system-secret-0123456789", "kfp.team-a"));
  });

  it("resolves nothing without any key", () => {
    const ring = keyRing({});
    expect(ring.verifiesSignatures).toBe(false);
    expect(ring.resolve("kfp.team-a")).toBeUndefined();
  });
});
