import { describe, expect, it } from "vitest";
import { readCredentials } from "../../src/auth/request-credentials.js";
import { HttpError } from "../../src/errors.js";

const off = { header: undefined, prefix: "" };
const on = { header: "kubeflow-userid", prefix: "accounts.google.com:" };

describe("readCredentials", () => {
  it("reads a Bearer token, scheme case-insensitive", () => {
    expect(readCredentials(new Headers({ authorization: "bearer abc.def" }), off)).toEqual({ kind: "token", token: "abc.def" });
    expect(readCredentials(new Headers(), off)).toEqual({ kind: "none" });
  });

  it("rejects other schemes with a 401 that never echoes the credential", () => {
    try {
      readCredentials(new Headers({ authorization: "Basic c2VjcmV0LXZhbHVl" }), off);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(HttpError);
      expect((error as HttpError).status).toBe(401);
      expect((error as HttpError).message).not.toContain("c2VjcmV0LXZhbHVl");
    }
  });

  it("prefers the trusted header when configured, and ignores an empty one", () => {
    const both = new Headers({ "kubeflow-userid": "accounts.google.com:ann", authorization: "Bearer t" });
    expect(readCredentials(both, on)).toEqual({ kind: "trusted-header", user: "ann" });
    expect(readCredentials(both, off)).toEqual({ kind: "token", token: "t" });
    expect(readCredentials(new Headers({ "kubeflow-userid": "", authorization: "Bearer t" }), on)).toEqual({
      kind: "token",
      token: "t",
    });
  });
});
