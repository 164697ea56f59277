import { describe, expect, it } from "vitest";
import { HttpError } from "../../src/errors.js";
import { MAX_KEY_BYTES, parseKey, parseSegment, validateNamespace } from "../../src/storage/names.js";

describe("validateNamespace", () => {
  it.each(["a", "team-a", "kubeflow-user-example-com", "a".repeat(63), "0abc"])("accepts %s", (ns) =>
    expect(validateNamespace(ns)).toBe(ns),
  );
  it.each(["", "A", "team_a", "-a", "a-", "a".repeat(64), ".kfp-artifacts", "..", "a/b", "a.b"])("refuses %j", (ns) =>
    expect(() => validateNamespace(ns)).toThrow(HttpError),
  );
});

describe("parseKey", () => {
  it("splits into segments", () => {
    expect(parseKey("pipeline/run/node/model.pkl").segments).toEqual(["pipeline", "run", "node", "model.pkl"]);
    expect(parseKey("ünïcödé/名前.txt").segments).toEqual(["ünïcödé", "名前.txt"]);
    expect(parseKey("...").segments).toEqual(["..."]);
  });
  it.each([
    ["", "empty"],
    ["/a", "empty segments"],
    ["a/", "empty segments"],
    ["a//b", "empty segments"],
    [".", "'.' or '..'"],
    ["a/../b", "'.' or '..'"],
    ["a/./b", "'.' or '..'"],
    ["a\0b", "control"],
    ["a\nb", "control"],
    ["a\u007fb", "control"],
    ["a\\b", "backslash"],
    ["x".repeat(256), "segment longer"],
    [`${"x/".repeat(600)}x`, "longer than"],
    ["a\ud800b", "UTF-8"],
  ])("refuses %j (%s)", (key, reason) => {
    expect(() => parseKey(key)).toThrow(HttpError);
    expect(() => parseKey(key)).toThrow(new RegExp(reason.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  });
  it("enforces the byte limit in UTF-8 bytes, not characters", () => {
    const segment = "é".repeat(127); // 254 bytes
    const key = Array.from({ length: Math.floor(MAX_KEY_BYTES / 255) + 1 }, () => segment).join("/");
    expect(() => parseKey(key)).toThrow(/longer than/);
  });
  it("parseSegment refuses '/'", () => {
    expect(parseSegment("run-1", "run id")).toBe("run-1");
    expect(() => parseSegment("a/b", "run id")).toThrow(/run id must not contain/);
  });
});
